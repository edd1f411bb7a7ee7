"""Drawing the overlay: a box and label per face, optional bars, a frames/s readout."""

from __future__ import annotations

import cv2
import numpy as np

from aidentify.inference.results import FaceResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR colours, one per canonical class; unknown class names fall back to grey.
CLASS_COLOURS = {
    "neutral": (200, 200, 200),
    "happiness": (60, 200, 60),
    "surprise": (0, 200, 255),
    "sadness": (200, 120, 40),
    "anger": (40, 40, 230),
    "disgust": (40, 140, 100),
    "fear": (180, 60, 180),
    "contempt": (120, 90, 160),
}


def colour_for(label: str) -> tuple[int, int, int]:
    return CLASS_COLOURS.get(label, (160, 160, 160))


def draw_faces(frame: np.ndarray, faces: list[FaceResult], classes: list[str], bars: bool = False) -> np.ndarray:
    """Draw every face onto ``frame`` (in place) and return it."""
    scale = max(0.4, min(1.0, frame.shape[0] / 720))
    for face in faces:
        x, y, w, h = face.box
        colour = colour_for(face.label)
        cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
        text = f"{face.label} {face.confidence:.0%}  #{face.track_id}"
        (tw, th), base = cv2.getTextSize(text, FONT, 0.6 * scale, 1)
        top = max(y - th - base - 4, 0)
        cv2.rectangle(frame, (x, top), (x + tw + 4, top + th + base + 4), colour, -1)
        cv2.putText(frame, text, (x + 2, top + th + 2), FONT, 0.6 * scale, (0, 0, 0), 1, cv2.LINE_AA)
        if bars:
            _draw_bars(frame, face, classes, x + w + 6, y, scale)
    return frame


def _draw_bars(frame: np.ndarray, face: FaceResult, classes: list[str], left: int, top: int, scale: float) -> None:
    """One bar per class, longest for the most likely, to the right of the face."""
    row = int(16 * scale) + 2
    width = int(90 * scale)
    for i, (name, p) in enumerate(zip(classes, face.probs)):
        y = top + i * row
        if y + row > frame.shape[0] or left + width > frame.shape[1]:
            break
        cv2.rectangle(frame, (left, y), (left + int(width * float(p)), y + row - 3), colour_for(name), -1)
        cv2.putText(frame, f"{name[:4]} {p:.0%}", (left + 2, y + row - 5), FONT, 0.35 * scale, (255, 255, 255), 1,
                    cv2.LINE_AA)


def draw_fps(frame: np.ndarray, fps: float) -> np.ndarray:
    """A frames/s readout in the top-left corner."""
    cv2.putText(frame, f"{fps:.1f} fps", (8, 22), FONT, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(frame, f"{fps:.1f} fps", (8, 22), FONT, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return frame
