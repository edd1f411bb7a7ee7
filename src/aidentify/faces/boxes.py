"""Box arithmetic shared by every detector: IoU, non-maximum suppression, letterbox mapping.

Boxes are ``(x, y, w, h)`` in pixels, x and y the top-left corner, as float
arrays of shape ``(N, 4)``. Nothing here knows which detector made them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` ``(N, 4)`` with every box in ``b`` ``(M, 4)``.

    Returns ``(N, M) float64`` in [0, 1]; boxes of zero area have IoU 0 with everything.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    inter = (np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
             * np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None))
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    A box is dropped when its IoU with an already kept, higher-scoring box is
    above ``iou_threshold`` (the classic rule of Neubeck and Van Gool, 2006).
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        overlaps = iou_matrix(boxes[best:best + 1], boxes[order[1:]])[0]
        order = order[1:][overlaps <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
                 points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Non-maximum suppression that averages each cluster instead of keeping one member.

    The highest-scoring box claims every box overlapping it by more than
    ``iou_threshold``; the cluster's box (and keypoints, ``(N, K, 2)``) is the
    score-weighted mean of its members, its score the best member's. This is
    MediaPipe's "weighted" overlap handling for BlazeFace, which steadies boxes
    that several anchors (or several tiles) see. Returns ``(boxes, scores, points)``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_scores, out_points = [], [], []
    while order.size:
        overlaps = iou_matrix(boxes[order[:1]], boxes[order])[0]
        members = order[overlaps > iou_threshold]
        members = members if members.size else order[:1]
        weights = scores[members] / max(scores[members].sum(), 1e-12)
        out_boxes.append(weights @ boxes[members])
        out_scores.append(scores[order[0]])
        if points is not None:
            out_points.append(np.tensordot(weights, points[members], axes=1))
        order = order[~np.isin(order, members)]
    stacked_points = None
    if points is not None:
        stacked_points = np.array(out_points).reshape(-1, *points.shape[1:])
    return np.array(out_boxes).reshape(-1, 4), np.array(out_scores), stacked_points


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection of each pair over the smaller box's area ("IoMin").

    Near 1 when one box lies inside the other, as a second detection of the same
    face often does (a chin-to-brow box inside a whole-head box), where IoU stays low.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter = (np.clip(np.minimum(a[:, 0:1] + a[:, 2:3], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0:1], b[:, 0]), 0, None)
             * np.clip(np.minimum(a[:, 1:2] + a[:, 3:4], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1:2], b[:, 1]), 0,
                       None))
    smaller = np.minimum(a[:, 2:3] * a[:, 3:4], b[:, 2] * b[:, 3])
    return np.where(smaller > 0, inter / np.where(smaller > 0, smaller, 1), 0.0)


def drop_nested(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.6) -> np.ndarray:
    """Indices of the boxes to keep, best score first, dropping any box that overlaps a better-scoring
    kept box by more than ``threshold`` of the smaller one's area (see :func:`overlap_of_smaller`)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    keep: list[int] = []
    for index in order:
        if not keep or overlap_of_smaller(boxes[index:index + 1], boxes[keep]).max() <= threshold:
            keep.append(int(index))
    return np.array(keep, dtype=np.int64)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes cut to the image ``width`` x ``height``; a box wholly outside gets zero size."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1 = np.clip(boxes[:, 0], 0, width)
    y1 = np.clip(boxes[:, 1], 0, height)
    x2 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y2 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)


@dataclass(frozen=True)
class Letterbox:
    """How an image was scaled and padded into a square network input, and the way back.

    ``scale`` is input pixels per image pixel; ``pad_x`` and ``pad_y`` are the
    input pixels of border added left and top. The image keeps its aspect ratio,
    so a face is not squashed (the "letterbox" of YOLO and MediaPipe).
    """

    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Network-input pixel coordinates ``(..., 2)`` back to image pixels."""
        xy = np.asarray(xy, dtype=np.float64)
        return (xy - np.array([self.pad_x, self.pad_y])) / self.scale


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Scale ``image`` ``(H, W, C) uint8`` to fit a ``size`` x ``size`` square, centred, zero-padded.

    Returns the ``(size, size, C) uint8`` input and the :class:`Letterbox` that maps back.
    Shrinking uses area averaging (no aliasing of small faces), enlarging bilinear.
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size, *image.shape[2:]), dtype=image.dtype)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    return canvas, Letterbox(new_w / width, pad_x, pad_y)
