"""Small real inputs for the API tests: scikit-image's astronaut as a photo and as a moving-face clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (Eileen Collins, public domain), ``(512, 512, 3) uint8`` BGR."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def write_photo(path: Path) -> Path:
    assert cv2.imwrite(str(path), astronaut_bgr())
    return path


def write_clip(path: Path, frames: int = 50, fps: float = 25.0, size: tuple[int, int] = (320, 240)) -> Path:
    """A ``size`` video (MJPG .avi or mp4v .mp4) of the astronaut's head drifting right on a grey wall
    (back to the left once it reaches the right edge)."""
    head = astronaut_bgr()[20:240, 130:320]
    head = cv2.resize(head, (95, 110), interpolation=cv2.INTER_AREA)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 120, np.uint8)
        x, y = 40 + (i * 2) % max(size[0] - head.shape[1] - 40, 1), 60
        frame[y:y + head.shape[0], x:x + head.shape[1]] = head
        writer.write(frame)
    writer.release()
    return path
