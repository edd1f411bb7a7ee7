"""Face tracks across frames: IoU matching, optical-flow following, smoothing.

A track keeps one id for one face while it stays in view, so the timeline can
say "face 2 was happy 60% of the time" and the label can be smoothed over
frames instead of flickering with every noisy prediction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from aidentify.config import LiveSmoothing, LiveTracking


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ax1, ay1, ax2, ay2 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx1, by1, bx2, by2 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Track:
    """One face followed over time; ``box`` is ``(x, y, w, h)`` in frame pixels (floats)."""

    id: int
    box: np.ndarray
    eyes: np.ndarray | None = None  # (2, 2) eye points in frame pixels when the detector gives them
    keypoints: np.ndarray | None = None  # (K, 2) all the detector's keypoints, frame pixels (followed too)
    missed: int = 0
    probs: np.ndarray | None = None  # smoothed probabilities
    history: deque = field(default_factory=deque)

    def observe(self, probs: np.ndarray, smoothing: LiveSmoothing) -> np.ndarray:
        """Fold this frame's probabilities into the smoothed ones and return them."""
        probs = np.asarray(probs, dtype=np.float64)
        if smoothing.method == "none" or self.probs is None and smoothing.method == "ema":
            self.probs = probs
        elif smoothing.method == "ema":
            self.probs = smoothing.alpha * probs + (1 - smoothing.alpha) * self.probs
        else:
            self.history.append(probs)
            while len(self.history) > smoothing.window:
                self.history.popleft()
            self.probs = np.mean(self.history, axis=0)
        return self.probs


class Tracker:
    """Matches each detector pass to the existing tracks and follows them in between."""

    def __init__(self, settings: LiveTracking):
        self.settings = settings
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: np.ndarray, eyes: np.ndarray | None = None,
               keypoints: np.ndarray | None = None) -> list[Track]:
        """Match fresh detections to tracks by IoU (greedy, best overlap first).

        Matched tracks jump to the detected box (and ``eyes``, ``(N, 2, 2)``, and
        ``keypoints``, ``(N, K, 2)`` frame pixels, when given); unmatched detections
        start new tracks; tracks unmatched for more than ``max_missed`` passes end.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        eyes_of = (lambda i: None) if eyes is None else (lambda i: np.array(eyes[i], dtype=np.float64))
        points_of = ((lambda i: None) if keypoints is None
                     else (lambda i: np.array(keypoints[i], dtype=np.float64)))
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)),
                       reverse=True)
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < self.settings.iou:
                break
            if ti in used_tracks or bi in used_boxes:
                continue
            used_tracks.add(ti)
            used_boxes.add(bi)
            self.tracks[ti].box = boxes[bi].copy()
            self.tracks[ti].eyes = eyes_of(bi)
            self.tracks[ti].keypoints = points_of(bi)
            self.tracks[ti].missed = 0
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.settings.max_missed]
        for bi, box in enumerate(boxes):
            if bi not in used_boxes:
                self.tracks.append(Track(self._next_id, box.copy(), eyes_of(bi), points_of(bi)))
                self._next_id += 1
        self.tracks.sort(key=lambda t: t.id)
        return self.tracks

    def follow(self, previous: np.ndarray, current: np.ndarray, scale: float) -> None:
        """Shift every track by the median optical flow of corners inside its box.

        ``previous`` and ``current`` are the shrunk grayscale frames the
        detector sees; ``scale`` maps frame pixels to their pixels. Costs about
        a millisecond for a handful of faces, against tens for a detector pass.
        """
        if not self.settings.follow or not self.tracks:
            return
        for track in self.tracks:
            x, y, w, h = track.box * scale
            x0, y0 = max(int(x), 0), max(int(y), 0)
            x1, y1 = min(int(x + w), previous.shape[1]), min(int(y + h), previous.shape[0])
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            corners = cv2.goodFeaturesToTrack(previous[y0:y1, x0:x1], maxCorners=20, qualityLevel=0.01,
                                              minDistance=3)
            if corners is None:
                continue
            corners = corners.reshape(-1, 1, 2) + np.float32([x0, y0])
            moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, None, winSize=(15, 15),
                                                        maxLevel=2)
            ok = status.reshape(-1) == 1
            if ok.sum() >= 3:
                shift = np.median((moved - corners).reshape(-1, 2)[ok], axis=0) / scale
                track.box[:2] += shift
                if track.eyes is not None:
                    track.eyes += shift
                if track.keypoints is not None:
                    track.keypoints += shift
