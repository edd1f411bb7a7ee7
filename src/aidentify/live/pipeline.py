"""The live pipeline as a pure callable: ``frame -> (annotated frame, result)``.

It knows nothing about cameras, windows or files, so it is tested on still
images and reused by the player, the benchmark and the demo. It owns the
loaded cascade and model (loaded once), the tracker and the per-stage timings.
"""

from __future__ import annotations

import time
import cv2
import numpy as np

from aidentify.config import LiveConfig
from aidentify.faces.crop import DetectorSettings, detect_faces, load_cascade, square_crop
from aidentify.inference.classify import Classifier, TestTimeViews
from aidentify.inference.results import FaceResult, FrameResult
from aidentify.live.draw import draw_faces
from aidentify.live.track import Tracker

# Haar boxes on FER+'s 48 px images cover a median 83% of the image side
# (measured on 874 Valid images where the cascade fires), i.e. FER+ crops are
# the Haar box grown by about 10% per side. Models trained on FER+'s own crops
# (no detection in `prepare`) see live faces cut the same way.
FERPLUS_CROP_MARGIN = 0.1
STAGES = ("detect", "classify", "draw")


class LivePipeline:
    """Detect (every N frames) → follow → crop → classify in one batch → smooth → draw."""

    def __init__(self, classifier: Classifier, config: LiveConfig):
        self.classifier = classifier
        self.config = config
        self.views = TestTimeViews.from_settings(config)
        self.classes = classifier.info.classes
        self.cascade = load_cascade()
        self.tracker = Tracker(config.track)
        margin = config.crop_margin
        if margin == "auto":
            margin = classifier.info.crop_margin if classifier.info.crop_margin is not None else FERPLUS_CROP_MARGIN
        self.margin = float(margin)
        self.settings = DetectorSettings(scale_factor=config.detect.scale_factor,
                                         min_neighbors=config.detect.min_neighbors,
                                         min_size=config.detect.min_size, max_side=10**9)
        self._index = 0
        self._previous_small: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, draw: bool = True) -> tuple[np.ndarray, FrameResult]:
        """Process one BGR (or grayscale) frame; returns the annotated copy and the faces."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, self.config.detect.width / gray.shape[1])
        small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        detect_now = self._index % self.config.detect.every == 0 or not self.tracker.tracks
        if detect_now:
            boxes = detect_faces(self.cascade, small, self.settings)[: self.config.detect.max_faces]
            self.tracker.update(boxes / scale)
        elif self._previous_small is not None and self._previous_small.shape == small.shape:
            self.tracker.follow(self._previous_small, small, scale)
        self._previous_small = small
        now = time.perf_counter()
        timings["detect"], start = (now - start) * 1000, now

        faces = self._classify(gray)
        now = time.perf_counter()
        timings["classify"], start = (now - start) * 1000, now

        annotated = frame
        if draw:
            annotated = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            draw_faces(annotated, faces, self.classes, bars=self.config.draw.bars)
        timings["draw"] = (time.perf_counter() - start) * 1000
        result = FrameResult(self._index, faces, detect_now, timings)
        self._index += 1
        return annotated, result

    def _classify(self, gray: np.ndarray) -> list[FaceResult]:
        """Crop every tracked face, classify them in one batch, smooth per track."""
        tracks = self.tracker.tracks
        if not tracks:
            return []
        size = self.classifier.info.input_size
        crops = np.stack([square_crop(gray, np.round(t.box).astype(int), self.margin, size) for t in tracks])
        probs = self.views.predict(self.classifier, crops)
        faces = []
        for track, p in zip(tracks, probs):
            smoothed = track.observe(p, self.config.smoothing)
            best = int(np.argmax(smoothed))
            box = tuple(int(round(v)) for v in track.box)
            faces.append(FaceResult(track.id, box, smoothed, self.classes[best], float(smoothed[best])))
        return faces
