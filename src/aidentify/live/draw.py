"""Drawing the overlay: a box and label per face, optional bars, a frames/s readout.

Where labels and bars go is decided first, by :func:`layout_overlay` (rules in
:mod:`aidentify.live.layout`: inside the frame, never over each other), then painted,
so tests can check the rectangles without reading pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from aidentify.inference.results import FaceResult
from aidentify.live.layout import Rect, bars_anchors, label_anchors, place_rects

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
# Text is at least this tall (pixels, capital letters) at any frame size: 12 px reads at arm's length
# on a laptop screen showing 640x480 at 1:1; larger frames get 1/40 of their height.
MIN_TEXT_PX = 12
PAD = 2  # pixels between text and the edge of its label or bar row
BARS_BACKGROUND = (32, 32, 32)
BAR_PX = 4  # height of a probability bar under its class name, pixels (one dark pixel below it)


def colour_for(label: str) -> tuple[int, int, int]:
    return CLASS_COLOURS.get(label, (160, 160, 160))


@dataclass(frozen=True)
class TextStyle:
    """Hershey-simplex text of a given height: ``scale`` and ``thickness`` for cv2, ``height`` in pixels."""

    scale: float
    thickness: int
    height: int

    @classmethod
    def for_frame(cls, frame_height: int) -> TextStyle:
        """Text ``max(12, frame_height / 40)`` pixels tall (Hershey simplex capitals are 22 px at scale 1)."""
        height = max(MIN_TEXT_PX, round(frame_height / 40))
        scale = height / 22
        return cls(scale, 1 if scale < 0.9 else 2, cv2.getTextSize("H", FONT, scale, 1 if scale < 0.9 else 2)[0][1])

    def size(self, text: str) -> tuple[int, int, int]:
        """Width, height above the baseline and depth below it of ``text``, in pixels."""
        (width, height), baseline = cv2.getTextSize(text, FONT, self.scale, self.thickness)
        return width, height, baseline


@dataclass(frozen=True)
class OverlayLayout:
    """Where each face's label and bars go (frame pixels), in the faces' order; ``None`` = left out."""

    labels: list[Rect | None]
    bars: list[Rect | None]
    style: TextStyle


def label_text(face: FaceResult) -> str:
    """A face's label: class, confidence and track id, e.g. ``neutral 77% #4``."""
    return f"{face.label} {face.confidence:.0%} #{face.track_id}"


def label_size(text: str, style: TextStyle) -> tuple[int, int]:
    """A label's ``(w, h)`` in pixels: the text with :data:`PAD` pixels all round."""
    width, height, baseline = style.size(text)
    return width + 2 * PAD, height + baseline + 2 * PAD


def bars_size(classes: list[str], style: TextStyle) -> tuple[int, int]:
    """The bars block's ``(w, h)`` in pixels: one row per class, wide enough for ``<class> 100%``."""
    width = max(style.size(f"{name} 100%")[0] for name in classes)
    return width + 2 * PAD, len(classes) * bar_row_height(style) + 2 * PAD


def bar_row_height(style: TextStyle) -> int:
    """One bar's row in pixels: the text, its descenders and :data:`BAR_PX` for the bar beneath."""
    _, height, baseline = style.size("Hg")
    return height + baseline + BAR_PX


def layout_overlay(faces: list[FaceResult], classes: list[str], frame_size: tuple[int, int],
                   bars: bool = False) -> OverlayLayout:
    """Place every label (above, below or inside the top of its box), then every bars block
    (right, left or below), in a ``(width, height)`` frame; see :mod:`aidentify.live.layout`."""
    style = TextStyle.for_frame(frame_size[1])
    boxes = [tuple(int(v) for v in face.box) for face in faces]
    labels = place_rects(boxes, [label_size(label_text(face), style) for face in faces], frame_size, label_anchors)
    blocks: list[Rect | None] = [None] * len(faces)
    if bars and classes:
        taken = [rect for rect in labels if rect is not None]
        blocks = place_rects(boxes, [bars_size(classes, style)] * len(faces), frame_size, bars_anchors, taken)
    return OverlayLayout(labels, blocks, style)


def draw_faces(frame: np.ndarray, faces: list[FaceResult], classes: list[str], bars: bool = False) -> np.ndarray:
    """Draw every face's box, label (and bars) onto the ``(H, W, 3) uint8`` BGR ``frame`` in place; return it."""
    layout = layout_overlay(faces, classes, (frame.shape[1], frame.shape[0]), bars)
    line = max(2, layout.style.thickness + 1)
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), colour_for(face.label), line)
    for face, rect in zip(faces, layout.labels):
        if rect is not None:
            _draw_label(frame, rect, label_text(face), colour_for(face.label), layout.style)
    for face, rect in zip(faces, layout.bars):
        if rect is not None:
            _draw_bars(frame, rect, face, classes, layout.style)
    return frame


def _draw_label(frame: np.ndarray, rect: Rect, text: str, colour: tuple[int, int, int], style: TextStyle) -> None:
    """Black text on a box of the class's colour filling ``rect``."""
    cv2.rectangle(frame, (rect.x, rect.y), (rect.right - 1, rect.bottom - 1), colour, -1)
    _, height, _ = style.size(text)
    cv2.putText(frame, text, (rect.x + PAD, rect.y + PAD + height), FONT, style.scale, (0, 0, 0), style.thickness,
                cv2.LINE_AA)


def _draw_bars(frame: np.ndarray, rect: Rect, face: FaceResult, classes: list[str], style: TextStyle) -> None:
    """One row per class on a dark block filling ``rect``: ``<class> NN%`` in white, and beneath it a
    bar in the class's colour as long as the probability. (Text drawn over the bar would need an
    outline to read on light bars, which costs ten times the drawing time.)"""
    cv2.rectangle(frame, (rect.x, rect.y), (rect.right - 1, rect.bottom - 1), BARS_BACKGROUND, -1)
    row = bar_row_height(style)
    inner = rect.w - 2 * PAD
    _, height, _ = style.size("H")
    for i, (name, p) in enumerate(zip(classes, face.probs)):
        top = rect.y + PAD + i * row
        cv2.putText(frame, f"{name} {float(p):.0%}", (rect.x + PAD, top + height), FONT, style.scale, (255, 255, 255),
                    style.thickness, cv2.LINE_AA)
        length = int(round(inner * float(p)))
        if length > 0:
            cv2.rectangle(frame, (rect.x + PAD, top + row - BAR_PX), (rect.x + PAD + length - 1, top + row - 2),
                          colour_for(name), -1)


def draw_fps(frame: np.ndarray, fps: float) -> np.ndarray:
    """A frames/s readout in the top-left corner."""
    cv2.putText(frame, f"{fps:.1f} fps", (8, 22), FONT, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(frame, f"{fps:.1f} fps", (8, 22), FONT, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return frame
