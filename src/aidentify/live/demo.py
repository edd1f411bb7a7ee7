"""A demo video built from real photos that ship with scikit-image.

So that ``aidentify live --demo`` works on a machine with no webcam and no
download: scikit-image bundles the astronaut photo (Eileen Collins) and a
subset of Labeled Faces in the Wild (100 small face crops). We place a few of
these faces on a 640x480 canvas and move each one slowly along its own path,
in its own part of the frame, so detection, tracking and the timeline all have
real work to do. The same video drives the tests and the live benchmark.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.faces.samples import face_sprites
from aidentify.files import PendingFile

def _background(width: int, height: int) -> np.ndarray:
    """A calm, slightly textured backdrop (a soft vertical gradient)."""
    ramp = np.linspace(70, 140, height, dtype=np.float32)[:, None]
    ramp = np.repeat(ramp, width, axis=1)
    return cv2.merge([ramp * 0.9, ramp * 0.95, ramp]).astype(np.uint8)


def demo_frames(faces: int = 4, seconds: float = 6.0, fps: float = 30.0, size: tuple[int, int] = (640, 480)):
    """Yield the demo's BGR frames: ``faces`` faces drifting in a grid of cells."""
    width, height = size
    sprites = face_sprites(faces)
    columns = min(faces, 3)
    rows = math.ceil(faces / columns)
    cell_w, cell_h = width // columns, height // rows
    side = min(120, int(min(cell_w, cell_h) * 0.7))
    sprites = [cv2.resize(s, (side, side), interpolation=cv2.INTER_AREA) for s in sprites]
    backdrop = _background(width, height)
    for index in range(int(round(seconds * fps))):
        t = index / fps
        frame = backdrop.copy()
        for k, sprite in enumerate(sprites):
            cx = (k % columns) * cell_w + cell_w / 2
            cy = (k // columns) * cell_h + cell_h / 2
            room_x, room_y = (cell_w - side) / 2 - 2, (cell_h - side) / 2 - 2
            x = int(cx - side / 2 + room_x * 0.8 * math.sin(0.6 * t + k))
            y = int(cy - side / 2 + room_y * 0.8 * math.sin(0.45 * t + 2 * k))
            frame[y:y + side, x:x + side] = sprite
        yield frame


def write_demo_video(path: Path, faces: int = 4, seconds: float = 6.0, fps: float = 30.0,
                     size: tuple[int, int] = (640, 480)) -> Path:
    """Write the demo video (mp4v .mp4 or MJPG .avi) and return its path."""
    pending = PendingFile(Path(path))
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if pending.final.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(pending.path), fourcc, fps, size)
    if not writer.isOpened():
        raise DataError(f"cannot write the demo video {path}")
    try:
        for frame in demo_frames(faces, seconds, fps, size):
            writer.write(frame)
    except BaseException:
        writer.release()
        pending.discard()
        raise
    writer.release()
    return pending.commit()
