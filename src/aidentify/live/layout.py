"""Where the overlay's labels and bars go: inside the frame, never over each other.

A pure function of boxes and sizes (pixels), so it is tested without drawing, and the
serve page's ``placeLabels`` (``serve/static/app.js``) follows the same rules:

1. Faces are served largest first (a greedy placement: the nearest, most visible faces
   get the best spots; ties keep the detector's order).
2. Each rectangle first tries its anchors in order (labels: above the box, below it,
   inside its top edge; bars: right of the box, left of it, below it), moved sideways into
   the frame. The first anchor that lies inside the frame and covers no rectangle already
   placed and no other face's box is taken.
3. Otherwise it is shifted: candidate spots are the anchors and the spots beside, above and
   below every rectangle already placed (their edges), all moved into the frame; among
   those that cover no placed rectangle, the one with the least cost wins, where cost =
   distance from the first anchor (|dx| + |dy|, pixels) + the area of other faces it hides
   divided by its height (the width of face it hides, pixels).
4. A rectangle with no free spot at all is left out (``None``): the box is still drawn in
   its class's colour. Rectangles touching at an edge do not overlap.

The shift step is the candidate-position search of point-feature label placement
(Christensen, Marks and Shieber 1995, "An empirical study of algorithms for point-feature
label placement"), greedy rather than annealed so each frame costs well under a millisecond.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

Box = tuple[int, int, int, int]  # x, y, width, height in frame pixels
Anchors = Callable[[Box, int, int, int], list[tuple[int, int]]]


class Rect(NamedTuple):
    """An axis-aligned rectangle in frame pixels: it covers columns x..x+w-1 and rows y..y+h-1."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def overlaps(self, other: Sequence[int]) -> bool:
        """Whether the two share any pixel (touching edges do not)."""
        x, y, w, h = other
        return self.x < x + w and x < self.right and self.y < y + h and y < self.bottom

    def inside(self, width: int, height: int) -> bool:
        """Whether it lies wholly inside a ``width`` x ``height`` frame."""
        return self.x >= 0 and self.y >= 0 and self.right <= width and self.bottom <= height


def label_anchors(box: Box, w: int, h: int, gap: int) -> list[tuple[int, int]]:
    """A label's spots (top-left corners), best first: above the box, below it, inside its top edge."""
    x, y, bw, bh = box
    return [(x, y - h), (x, y + bh), (x, y)]


def bars_anchors(box: Box, w: int, h: int, gap: int) -> list[tuple[int, int]]:
    """Bars' spots, best first: right of the box, left of it, below it (``gap`` pixels away)."""
    x, y, bw, bh = box
    return [(x + bw + gap, y), (x - w - gap, y), (x, y + bh + gap)]


def place_rects(boxes: Sequence[Box], sizes: Sequence[tuple[int, int]], frame_size: tuple[int, int],
                anchors: Anchors = label_anchors, taken: Sequence[Rect] = (), gap: int = 4) -> list[Rect | None]:
    """Place one ``(w, h)`` rectangle per face box inside a ``(width, height)`` frame (pixels).

    Returns one :class:`Rect` per box, in the boxes' order, none overlapping another or any
    of ``taken`` (rectangles already drawn, e.g. the labels when placing bars), or ``None``
    where no free spot exists. The rules are the module docstring's.
    """
    width, height = frame_size
    order = sorted(range(len(boxes)), key=lambda i: (-boxes[i][2] * boxes[i][3], i))
    placed = list(taken)
    result: list[Rect | None] = [None] * len(boxes)
    for i in order:
        w, h = min(int(sizes[i][0]), width), min(int(sizes[i][1]), height)
        others = [boxes[j] for j in range(len(boxes)) if j != i]
        rect = _place_one(boxes[i], w, h, (width, height), anchors(boxes[i], w, h, gap), placed, others)
        result[i] = rect
        if rect is not None:
            placed.append(rect)
    return result


def _place_one(box: Box, w: int, h: int, frame_size: tuple[int, int], spots: list[tuple[int, int]],
               placed: list[Rect], others: list[Box]) -> Rect | None:
    """Rule 2 (the first free anchor), else rule 3 (the cheapest free shifted spot), else None."""
    width, height = frame_size
    for x, y in spots:
        rect = Rect(_clamp(x, width - w), y, w, h)
        if rect.inside(width, height) and not any(rect.overlaps(r) for r in (*placed, *others)):
            return rect
    x0, y0 = _clamp(spots[0][0], width - w), _clamp(spots[0][1], height - h)
    xs = {x for x, _ in spots} | {v for r in placed for v in (r.x - w, r.right, r.x, r.right - w)}
    ys = {y for _, y in spots} | {v for r in placed for v in (r.y - h, r.bottom)}
    xs_ = np.array(sorted({_clamp(x, width - w) for x in xs}))
    ys_ = np.array(sorted({_clamp(y, height - h) for y in ys}))
    cx, cy = (a.ravel() for a in np.meshgrid(xs_, ys_))
    free = ~_overlap_any(cx, cy, w, h, placed)
    if not free.any():
        return None
    cx, cy = cx[free], cy[free]
    cost = np.abs(cx - x0) + np.abs(cy - y0) + _covered_area(cx, cy, w, h, others) / h
    best = int(np.argmin(cost))  # the first of equal costs: lowest y, then lowest x
    return Rect(int(cx[best]), int(cy[best]), w, h)


def _clamp(value: int, upper: int) -> int:
    """``value`` moved into ``0..upper`` (``upper`` is the frame size minus the rectangle's)."""
    return int(max(0, min(value, upper)))


def _overlap_any(cx: np.ndarray, cy: np.ndarray, w: int, h: int, rects: Sequence[Sequence[int]]) -> np.ndarray:
    """``(C,) bool``: whether the ``w`` x ``h`` rectangle at each candidate corner overlaps any of ``rects``."""
    if not rects:
        return np.zeros(cx.shape, bool)
    r = np.asarray(rects, np.int64)  # (R, 4) x, y, w, h
    return ((cx[:, None] < r[:, 0] + r[:, 2]) & (r[:, 0] < cx[:, None] + w)
            & (cy[:, None] < r[:, 1] + r[:, 3]) & (r[:, 1] < cy[:, None] + h)).any(axis=1)


def _covered_area(cx: np.ndarray, cy: np.ndarray, w: int, h: int, boxes: Sequence[Box]) -> np.ndarray:
    """``(C,) int64``: pixels of ``boxes`` that the rectangle at each candidate corner hides (summed)."""
    if not boxes:
        return np.zeros(cx.shape, np.int64)
    b = np.asarray(boxes, np.int64)
    dx = np.minimum(cx[:, None] + w, b[:, 0] + b[:, 2]) - np.maximum(cx[:, None], b[:, 0])
    dy = np.minimum(cy[:, None] + h, b[:, 1] + b[:, 3]) - np.maximum(cy[:, None], b[:, 1])
    return (np.clip(dx, 0, None) * np.clip(dy, 0, None)).sum(axis=1)
