"""What a face detector finds, and the interface every backend implements.

A detector maps an image to :class:`Faces`: boxes ``(x, y, w, h)`` in the
image's own pixels, a score per face, and keypoints where the backend gives
them. Boxes follow one convention whichever backend made them (see
``BOX_CALIBRATION`` in :mod:`aidentify.faces.crop`), so a crop margin learnt
with one detector holds for the others. The backends import this module; the
factory that picks one (:mod:`aidentify.faces.detector`) imports the backends,
so imports run one way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Keypoint order of the backends that give them (image pixels, x then y).
BLAZEFACE_KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear")
MTCNN_KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
KEYPOINT_NAMES = {"blazeface": BLAZEFACE_KEYPOINTS, "mtcnn": MTCNN_KEYPOINTS}  # Haar gives none


@dataclass(frozen=True)
class Faces:
    """Faces found in one image.

    - ``boxes``: ``(N, 4) float64`` ``(x, y, w, h)``, image pixels, top-left origin;
    - ``scores``: ``(N,) float64``, the backend's confidence in [0, 1] (Haar: 1.0);
    - ``keypoints``: ``(N, K, 2) float64`` image pixels, or None when the backend has none
      (names in ``BLAZEFACE_KEYPOINTS`` / ``MTCNN_KEYPOINTS``; "right" is the person's right).
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None

    @classmethod
    def empty(cls, keypoints: int = 0) -> Faces:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, keypoints, 2)) if keypoints else None)

    def __len__(self) -> int:
        return len(self.boxes)

    def take(self, index: np.ndarray | list[int]) -> Faces:
        """The faces at ``index``, in that order."""
        index = np.asarray(index, dtype=np.int64)
        points = self.keypoints[index] if self.keypoints is not None else None
        return Faces(self.boxes[index], self.scores[index], points)

    def largest_first(self, limit: int | None = None) -> Faces:
        """The faces sorted by box area, largest first, at most ``limit`` of them."""
        order = np.argsort(-(self.boxes[:, 2] * self.boxes[:, 3]), kind="stable")
        return self.take(order[:limit])

    def shifted(self, dx: float, dy: float) -> Faces:
        """The same faces with every coordinate moved by ``(dx, dy)`` pixels (a region back to its image)."""
        boxes = self.boxes + np.array([dx, dy, 0.0, 0.0])
        points = self.keypoints + np.array([dx, dy]) if self.keypoints is not None else None
        return Faces(boxes, self.scores, points)

    @staticmethod
    def concat(parts: list[Faces]) -> Faces:
        """All faces of ``parts`` in one :class:`Faces` (keypoints only when every part has them)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Faces.empty()
        points = None
        if all(p.keypoints is not None for p in parts) and len({p.keypoints.shape[1] for p in parts}) == 1:
            points = np.concatenate([p.keypoints for p in parts])
        return Faces(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]), points)


class FaceDetector(Protocol):
    """Anything that finds faces in an image.

    ``detect`` takes a ``(H, W, 3) uint8`` BGR or ``(H, W) uint8`` grayscale image
    and returns :class:`Faces` in that image's pixels, boxes in the shared
    convention. Implementations load their model once, in ``__init__``, and are
    not thread-safe (give each thread or process its own).
    """

    name: str

    def detect(self, image: np.ndarray) -> Faces: ...
