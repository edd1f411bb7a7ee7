"""The one face-crop path: detect, pick, cut a square margin-padded crop (or the whole image, or drop).

``prepare`` (training crops), ``evaluate`` (external folders), ``live`` and
``serve`` all cut faces here, so a model always sees faces cut exactly the way
its training faces were cut. Detector boxes differ in how much of the head
they cover; :func:`reference_boxes` maps every backend's boxes to one
reference box (the tight box FER+'s own crops are grown from) before the
margin is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from aidentify.config import FaceDetection
from aidentify.faces.found import FaceDetector, Faces

# A small image whose face fills the frame is a face crop already (FER2013, FER+, CK+ crops are
# 48 px; AffectNet-HQ's are larger photos): in ``auto`` mode it is used whole, never dropped.
FACE_CROP_MAX_SIDE = 128

# A "reference" box is the face box that FER+'s own crop is grown from by FERPLUS_CROP_MARGIN per side:
# FER+ crops are tight, brow to chin. A model trained on FER+'s crops (no detection in `prepare`) is
# fed faces cut the same way by growing every backend's reference box by this margin.
FERPLUS_CROP_MARGIN = 0.1

# Each backend's box as a reference box: (side scale, centre shift x, centre shift y), shifts in units
# of the backend's box side. Measured on 1,500 FER+ Valid faces enlarged 3x and framed, where the right
# crop is the original image (benchmarks/box_calibration.py): medians over the faces each backend found
# (Haar 1,152, BlazeFace 1,317, MTCNN 1,295); the scale's quartiles are 0.81-0.92, 0.84-1.04, 0.72-0.88.
# The default model's FER+ Valid accuracy on MTCNN's crops peaks for scales 0.76-0.84 (0.79 chosen here
# by geometry), against 0.835 with the raw box (docs/detectors.md).
BOX_CALIBRATION: dict[str, tuple[float, float, float]] = {
    "haar": (0.851, -0.003, 0.0),
    "blazeface": (0.924, 0.002, -0.040),
    "mtcnn": (0.792, 0.006, -0.005),
}


def reference_margin(margin: float, detector: str) -> float:
    """A margin that was applied to ``detector``'s raw boxes, restated for its reference boxes.

    Models trained before boxes were calibrated recorded a margin around raw
    Haar boxes; this keeps their crops the same size: ``(1 + 2m) / scale = 1 + 2m'``.
    """
    scale = BOX_CALIBRATION.get(detector, (1.0, 0.0, 0.0))[0]
    return ((1 + 2 * margin) / scale - 1) / 2


def recorded_face_settings(recorded: dict[str, Any] | None) -> FaceDetection:
    """The face settings a model's metadata recorded (``prepare``'s ``faces`` section).

    Models trained before the detector interface recorded Haar's knobs at the top
    level (``scale_factor``, ``min_neighbors``, ``min_size``, ``max_side``): they
    are read as ``detector: haar`` with those knobs, and their margin (grown around
    raw Haar boxes) is restated for reference boxes, so such a model is still fed
    crops of the size it was trained on. Unknown keys are ignored.
    """
    recorded = dict(recorded or {})
    legacy = {key: recorded.pop(key) for key in ("scale_factor", "min_neighbors", "min_size", "max_side")
              if key in recorded}
    if legacy and "detector" not in recorded:
        recorded["detector"] = "haar"
        recorded["haar"] = {k: legacy[k] for k in ("scale_factor", "min_neighbors") if k in legacy}
        if "min_size" in legacy:
            recorded["min_face"] = legacy["min_size"]
        if "margin" in recorded:  # it was grown around raw Haar boxes
            recorded["margin"] = reference_margin(float(recorded["margin"]), "haar")
        recorded["align"] = False  # Haar gives no eyes; these crops were never turned
    known = {key: value for key, value in recorded.items() if key in FaceDetection.model_fields}
    return FaceDetection.model_validate(known)


def reference_boxes(boxes: np.ndarray, detector: str) -> np.ndarray:
    """``(N, 4)`` boxes of backend ``detector`` as square reference ``(x, y, w, h)`` boxes (floats).

    Backends box the same face differently (MTCNN's box reaches below the
    chin, BlazeFace's sits higher); mapping each to the reference first makes a
    margin mean the same crop whichever backend found the face.
    """
    scale, shift_x, shift_y = BOX_CALIBRATION.get(detector, (1.0, 0.0, 0.0))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = boxes[:, 2:4].max(axis=1)
    cx = boxes[:, 0] + boxes[:, 2] / 2 + shift_x * side
    cy = boxes[:, 1] + boxes[:, 3] / 2 + shift_y * side
    new_side = side * scale
    return np.stack([cx - new_side / 2, cy - new_side / 2, new_side, new_side], axis=1)


def model_crop_margin(trained_margin: float | None, override: float | str = "auto") -> float:
    """The margin per side to cut a model's faces with.

    ``override`` (a number) wins; ``"auto"`` gives ``trained_margin``, the margin
    ``prepare`` used for a model trained on detected crops (its metadata), or
    ``FERPLUS_CROP_MARGIN`` for a model trained on FER+'s own crops (None).
    """
    if override != "auto":
        return float(override)
    return float(trained_margin) if trained_margin is not None else FERPLUS_CROP_MARGIN


@dataclass(frozen=True)
class FaceCut:
    """The outcome of cutting one image: ``crop`` ``(size, size) uint8`` or None when dropped.

    ``outcome`` is ``face`` (the largest detected face), ``whole`` (used whole by
    request, or as a face crop already), ``fallback_whole`` (no face found,
    whole image kept) or ``no_face`` (dropped); ``faces`` is what the detector found.
    """

    crop: np.ndarray | None
    outcome: str
    faces: Faces
    box: tuple[int, int, int, int] | None = None


def is_face_crop(image: np.ndarray) -> bool:
    """Whether an image is small enough to be a face crop already (at most ``FACE_CROP_MAX_SIDE`` px a side).

    Detectors need context around a face; a 48 px crop whose face fills the
    frame is often missed (Haar dropped 228 of 981 CK+ crops), so such images
    are used whole instead of dropped.
    """
    return max(image.shape[:2]) <= FACE_CROP_MAX_SIDE


def cut_face(image: np.ndarray, detector: FaceDetector | None, mode: str, margin: float, size: int,
             crops_whole: bool = False, align: bool = False) -> FaceCut:
    """Cut the face a model should see from one ``(H, W[, 3]) uint8`` image (BGR or gray).

    ``mode``: ``always`` (the largest face; drop the image without one),
    ``never`` (the whole image: it is a face crop already) or ``fallback`` (the
    largest face, else the whole image). With ``crops_whole``, an image that
    :func:`is_face_crop` is used whole whatever the mode. With ``align``, a face
    whose detector gives eye keypoints is turned so the eyes are level. ``detector``
    may be None only when no detection is needed. Returns a :class:`FaceCut`.
    """
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if mode == "never" or (crops_whole and is_face_crop(gray)):
        return FaceCut(whole_image(gray, size), "whole", Faces.empty())
    if detector is None:
        raise ValueError(f"mode {mode!r} needs a face detector")
    faces = detector.detect(image).largest_first()
    if len(faces):
        crop = face_crops(gray, faces.boxes[:1], detector.name, margin, size, eyes_of(faces, align, 1))[0]
        return FaceCut(crop, "face", faces, tuple(int(round(v)) for v in faces.boxes[0]))
    if mode == "always":
        return FaceCut(None, "no_face", faces)
    return FaceCut(whole_image(gray, size), "fallback_whole", faces)


def eyes_of(faces: Faces, align: bool, limit: int | None = None) -> np.ndarray | None:
    """The ``(N, 2, 2)`` eye points of the first ``limit`` faces when aligning and the detector gives them.

    Every backend with keypoints lists the person's right eye, then left eye, first.
    """
    if not align or faces.keypoints is None or faces.keypoints.shape[1] < 2:
        return None
    return faces.keypoints[:limit, :2]


def face_crops(gray: np.ndarray, boxes: np.ndarray, detector: str, margin: float, size: int,
               eyes: np.ndarray | None = None) -> np.ndarray:
    """``(N, size, size) uint8`` crops of ``gray`` around backend ``detector``'s ``(N, 4)`` boxes.

    With ``eyes`` (``(N, 2, 2)`` image pixels: the person's right eye, then left eye;
    a NaN row for a face without them), each crop is turned about its centre so
    that the eyes are level (:func:`aligned_crop`).
    """
    reference = reference_boxes(boxes, detector)
    if len(reference) == 0:
        return np.zeros((0, size, size), dtype=np.uint8)
    if eyes is None:
        return np.stack([square_crop(gray, box, margin, size) for box in reference])
    return np.stack([square_crop(gray, box, margin, size) if np.isnan(pair).any()
                     else aligned_crop(gray, box, pair, margin, size) for box, pair in zip(reference, eyes)])


def eye_angle(eyes: np.ndarray) -> float:
    """Degrees the face is turned clockwise in the image, from ``(2, 2)`` eye points (person's right eye first).

    The person's right eye is on the image's left; level eyes give 0.
    """
    (rx, ry), (lx, ly) = np.asarray(eyes, dtype=np.float64)
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


def aligned_crop(gray: np.ndarray, box, eyes: np.ndarray, margin: float, size: int) -> np.ndarray:
    """Like :func:`square_crop`, but turned about the box centre so that the ``(2, 2)`` ``eyes`` are level.

    Returns ``(size, size) uint8``. The square is cut at the face's own scale
    with one affine warp (bilinear, edges replicated) and then resized like
    every other crop, so level eyes give exactly the pixels of ``square_crop``.
    """
    x, y, w, h = (float(v) for v in box)
    side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
    centre = (x + w / 2, y + h / 2)
    corner = (int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2)))  # as square_crop rounds it
    rotation = cv2.getRotationMatrix2D(centre, eye_angle(eyes), 1.0)
    rotation[:, 2] -= np.array(corner, dtype=np.float64)
    crop = cv2.warpAffine(gray, rotation, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return resize_square(crop, size)


def square_crop(gray: np.ndarray, box, margin: float, size: int) -> np.ndarray:
    """A ``size``x``size`` crop centred on ``box``, grown by ``margin`` on each side.

    Parts of the square outside the image are filled by replicating the edge,
    so faces near the border stay centred instead of being stretched.
    """
    x, y, w, h = (float(v) for v in box)
    side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = max(0, -x0, -y0, x0 + side - gray.shape[1], y0 + side - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = gray[y0:y0 + side, x0:x0 + side]
    return resize_square(crop, size)


def whole_image(gray: np.ndarray, size: int) -> np.ndarray:
    """The whole image as a square crop (centre square if it is not square)."""
    h, w = gray.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return resize_square(gray[y0:y0 + side, x0:x0 + side], size)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bicubic when enlarging.

    Shrinking gives the same pixels as the training loader
    (``tf.image.resize(method="area")`` then ``tf.round``): averages in float,
    rounded half to even. OpenCV's uint8 area resize rounds halves up when the
    factor is a whole number (96 to 48 px), which made 12% of a face's pixels
    one grey level brighter than in training and cost the default model 0.3
    points of FER+ Valid accuracy outside Keras.
    """
    if image.shape[0] == size and image.shape[1] == size:
        return image
    if image.shape[0] < size:
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)
    averaged = cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(averaged), 0, 255).astype(np.uint8)
