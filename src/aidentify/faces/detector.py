"""The factory that picks a face detector backend by name (``auto`` by kind of input).

The types every backend shares (:class:`Faces`, the :class:`FaceDetector`
interface, keypoint names) live in :mod:`aidentify.faces.found`, which the
backends import; this module imports the backends (only when asked for one),
so imports run one way. ``Faces`` and ``FaceDetector`` are re-exported here.
"""

from __future__ import annotations

from typing import Any

from aidentify.errors import ConfigError
from aidentify.faces.found import BLAZEFACE_KEYPOINTS, KEYPOINT_NAMES, MTCNN_KEYPOINTS, FaceDetector, Faces

__all__ = ["AUTO_DETECTOR", "BLAZEFACE_KEYPOINTS", "DETECTOR_NAMES", "KEYPOINT_NAMES", "MTCNN_KEYPOINTS", "FaceDetector", "Faces",
           "make_detector", "resolve_detector_name"]

# Which detector "auto" means, by kind of input. Chosen by measurement (docs/detectors.md): MTCNN leads
# on photos (recall 0.82 at precision 0.99 for faces >= 32 px, against 0.76 and 0.93 for tiled BlazeFace)
# and on video (0.10 false faces a frame against 0.76 on the group-photo video) at a similar cost per
# 640x480 frame when faces of 40 px and more are searched. Kept per kind so either can change alone.
AUTO_DETECTOR = {"still": "mtcnn", "video": "mtcnn"}
DETECTOR_NAMES = ("haar", "blazeface", "mtcnn")


def resolve_detector_name(name: str, kind: str) -> str:
    """The backend that ``name`` means for ``kind`` (``"still"`` photos or ``"video"`` frames)."""
    if name == "auto":
        return AUTO_DETECTOR[kind]
    if name not in DETECTOR_NAMES:
        raise ConfigError(f"unknown face detector {name!r}; use one of auto, {', '.join(DETECTOR_NAMES)}")
    return name


def make_detector(settings: Any, kind: str = "still") -> FaceDetector:
    """Build the detector a config's face section asks for.

    ``settings`` is a :class:`aidentify.config.FaceDetectorSettings` (``detector``,
    ``min_face`` and one sub-section per backend); ``kind`` resolves ``auto``.
    Raises ``ConfigError`` for an unknown name and ``DataError`` when a backend's
    model file is missing.
    """
    name = resolve_detector_name(settings.detector, kind)
    if name == "haar":
        from aidentify.faces.haar import HaarDetector

        return HaarDetector(settings.haar, settings.min_face, settings.max_megapixels)
    if name == "blazeface":
        from aidentify.faces.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(settings.blazeface, settings.min_face, settings.max_megapixels)
    from aidentify.faces.mtcnn import MtcnnDetector

    return MtcnnDetector(settings.mtcnn, settings.min_face, settings.max_megapixels)
