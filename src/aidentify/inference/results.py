"""What the live pipeline and the server report for a frame: faces, tracks and timings.

Kept apart from the pipeline so that drawing, the timeline and the server can
use the types without importing the pipeline (and the pipeline can import them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FaceResult:
    """One face in one frame.

    ``box`` is ``(x, y, w, h)`` in frame pixels (ints, clipped to the frame);
    ``probs`` is the ``(n_classes,) float64`` smoothed probability vector;
    ``label`` and ``confidence`` are its arg-max and that probability;
    ``keypoints`` is ``(K, 2) float64`` frame pixels in the detector's keypoint order
    (``faces.detector.KEYPOINT_NAMES``), or None when the detector gives none.
    """

    track_id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray
    label: str
    confidence: float
    keypoints: np.ndarray | None = None


@dataclass
class FrameResult:
    """What the pipeline found in a frame, and how long each stage took (ms)."""

    index: int
    faces: list[FaceResult]
    detected: bool  # the detector ran on this frame (otherwise boxes were followed)
    timings: dict[str, float] = field(default_factory=dict)
    faces_cut: int = 0  # faces the detector found beyond the cap (detect.max_faces / photo_max_faces), left out
