"""The live pipeline as a pure callable: ``frame -> (annotated frame, result)``.

It knows nothing about cameras, windows or files, so it is tested on still
images and reused by the player, the benchmark and the demo. It owns the face
detector and model (loaded once), the tracker and the per-stage timings.

Video frames go to the video detector (``auto``: MTCNN, searching faces
from ``detect.video_min_face`` px) every ``detect.every`` frames, and tracks
are followed by optical flow in between. Stills (photos, folders of photos)
are independent: each one gets the photo detector (``auto``: MTCNN, from
``detect.min_face`` px), fresh track ids and no smoothing. A frame keeps its
``detect.max_faces`` largest faces (a photo its ``photo_max_faces``); how
many the cap cut is reported in ``FrameResult.faces_cut``.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from aidentify.config import LiveConfig, LiveDetection
from aidentify.faces.crop import eyes_of, face_crops, model_crop_margin
from aidentify.faces.detector import FaceDetector, make_detector
from aidentify.inference.classify import Classifier, TestTimeViews
from aidentify.inference.results import FaceResult, FrameResult
from aidentify.live.draw import draw_faces
from aidentify.live.track import Tracker

STAGES = ("detect", "classify", "draw")
# Optical flow runs on frames shrunk to this width (following needs no detail; cost grows with pixels).
FLOW_WIDTH = 320


class LivePipeline:
    """Detect (every N frames) → follow → crop → classify in one batch → smooth → draw.

    ``stills=True`` treats every frame as an unrelated photo (see the module docstring).
    ``detector`` replaces the one the config names (the benchmark and tests share one).
    """

    def __init__(self, classifier: Classifier, config: LiveConfig, stills: bool = False,
                 detector: FaceDetector | None = None):
        self.classifier = classifier
        self.config = config
        self.stills = stills
        self.views = TestTimeViews.from_settings(config)
        self.classes = classifier.info.classes
        self.detector = detector or make_detector(video_settings(config.detect) if not stills else config.detect,
                                                  "still" if stills else "video")
        self.tracker = Tracker(config.track)
        self.margin = model_crop_margin(classifier.info.crop_margin, config.crop_margin)
        self._index = 0
        self._previous_small: np.ndarray | None = None
        self._frame_size: tuple[int, int] | None = None

    def __call__(self, frame: np.ndarray, draw: bool = True) -> tuple[np.ndarray, FrameResult]:
        """Process one ``(H, W, 3) uint8`` BGR (or ``(H, W)`` gray) frame.

        Returns the annotated copy (the frame itself when ``draw`` is False) and
        a :class:`FrameResult` with faces in frame pixels and stage times in ms.
        """
        timings: dict[str, float] = {}
        start = time.perf_counter()
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        detect_now, cut = self._detect_or_follow(frame, gray)
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
        result = FrameResult(self._index, faces, detect_now, timings, faces_cut=cut)
        self._index += 1
        return annotated, result

    def _detect_or_follow(self, frame: np.ndarray, gray: np.ndarray) -> tuple[bool, int]:
        """Run the detector (True) or move the tracks by optical flow (False); and how many faces the cap cut."""
        if self.stills or (self._frame_size is not None and frame.shape[:2] != self._frame_size):
            # A photo shares nothing with the one before; nor does a frame of a new size (a phone turned,
            # a camera switching resolution): the old boxes are in other pixels, so the tracks start again.
            self.tracker = Tracker(self.config.track)
            self._previous_small = None
        self._frame_size = frame.shape[:2]
        detect_now = self.stills or self._index % self.config.detect.every == 0 or not self.tracker.tracks
        scale = min(1.0, FLOW_WIDTH / gray.shape[1])
        small = None
        if not self.stills and self.config.track.follow:
            small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale,
                                                         interpolation=cv2.INTER_AREA)
        cut = 0
        if detect_now:
            found = self.detector.detect(frame)
            cap = self.config.detect.photo_max_faces if self.stills else self.config.detect.max_faces
            faces = found.largest_first(cap)
            cut = len(found) - len(faces)
            self.tracker.update(faces.boxes, eyes_of(faces, self.config.align), faces.keypoints)
        elif small is not None and self._previous_small is not None and self._previous_small.shape == small.shape:
            self.tracker.follow(self._previous_small, small, scale)
        self._previous_small = small
        return detect_now, cut

    def _classify(self, gray: np.ndarray) -> list[FaceResult]:
        """Crop every tracked face, classify them in one batch, smooth per track."""
        tracks = [t for t in self.tracker.tracks if t.missed == 0]  # only faces the last detector pass saw
        if not tracks:
            return []
        size = self.classifier.info.input_size
        boxes = np.array([t.box for t in tracks])
        eyes = None
        if self.config.align and any(t.eyes is not None for t in tracks):
            eyes = np.array([t.eyes if t.eyes is not None else np.full((2, 2), np.nan) for t in tracks])
        crops = face_crops(gray, boxes, self.detector.name, self.margin, size, eyes)
        probs = self.views.predict(self.classifier, crops)
        faces = []
        height, width = gray.shape[:2]
        for track, p in zip(tracks, probs):
            smoothed = track.observe(p, self.config.smoothing)
            best = int(np.argmax(smoothed))
            faces.append(FaceResult(track.id, _clipped(track.box, width, height), smoothed, self.classes[best],
                                    float(smoothed[best]), track.keypoints))
        return faces


def video_settings(detect: LiveDetection) -> LiveDetection:
    """The detector section for video frames: ``video_min_face`` is their smallest face (speed)."""
    return detect.model_copy(update={"min_face": detect.video_min_face})


def _clipped(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A track's float box as ints inside the frame (a face at the edge is not drawn off it)."""
    x0, y0 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x1, y1 = min(width, int(round(box[0] + box[2]))), min(height, int(round(box[1] + box[3])))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)
