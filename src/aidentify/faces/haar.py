"""The Haar-cascade backend: OpenCV's frontal-face cascade (Viola and Jones, 2001).

The seed's detector, kept for comparison and for machines where speed matters
more than recall: it misses turned, tilted and small faces (see docs/detectors.md's
detector table). Resolution-independent: the image is shrunk only as far as
keeps the smallest wanted face (``min_face`` pixels) at the cascade's 24 px
window, so a face is found or missed by its own size, not the frame's.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.faces.found import Faces

CASCADE_FILE = "haarcascade_frontalface_default.xml"
WINDOW = 24  # haarcascade_frontalface_default's detection window, pixels


def load_cascade(path: Path | None = None) -> cv2.CascadeClassifier:
    """Load the frontal-face cascade that ships with opencv-python (once per detector).

    Raises ``DataError`` when the file is missing (opencv-python 5.x ships none).
    """
    path = Path(path) if path else Path(cv2.data.haarcascades) / CASCADE_FILE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise DataError(
            f"could not load the Haar cascade {path}; install opencv-python>=4.8,<5 "
            "(5.x ships no cascades)"
        )
    return cascade


class HaarDetector:
    """``detectMultiScale`` behind the :class:`~aidentify.faces.detector.FaceDetector` interface.

    ``settings`` is a :class:`aidentify.config.HaarSettings` (``scale_factor``,
    ``min_neighbors``); ``min_face`` is the smallest face side in image pixels;
    images over ``max_megapixels`` are shrunk first (cost grows with pixels).
    Scores are 1.0: the cascade gives no calibrated confidence.
    """

    name = "haar"

    def __init__(self, settings, min_face: int = 20, max_megapixels: float = 4.0):
        self.settings = settings
        self.min_face = int(min_face)
        self.max_megapixels = float(max_megapixels)
        self.cascade = load_cascade()

    def detect(self, image: np.ndarray) -> Faces:
        """Faces in a ``(H, W[, 3]) uint8`` image (BGR or gray), largest first."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        scale = detection_scale(gray.shape, self.min_face, WINDOW, self.max_megapixels)
        small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_side = max(WINDOW, int(round(self.min_face * scale)))
        found = self.cascade.detectMultiScale(small, scaleFactor=self.settings.scale_factor,
                                              minNeighbors=self.settings.min_neighbors,
                                              minSize=(min_side, min_side))
        if len(found) == 0:
            return Faces.empty()
        boxes = np.asarray(found, dtype=np.float64) / scale
        return Faces(boxes, np.ones(len(boxes))).largest_first()


def detection_scale(shape: tuple[int, ...], min_face: int, window: int, max_megapixels: float) -> float:
    """How far to shrink an image of ``shape`` before a detector whose smallest face is ``window`` px.

    Shrinking until ``min_face`` becomes ``window`` pixels loses no wanted face
    and saves time on large photos; ``max_megapixels`` caps the cost of huge
    ones (there the smallest face found grows with the photo, which docs/detectors.md says).
    Returns a factor in (0, 1].
    """
    height, width = shape[:2]
    scale = min(1.0, window / max(min_face, 1))
    pixels = height * width * scale * scale
    if pixels > max_megapixels * 1e6:
        scale *= (max_megapixels * 1e6 / pixels) ** 0.5
    return scale
