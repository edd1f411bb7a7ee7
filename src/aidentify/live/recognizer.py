"""The Python API (re-exported by ``aidentify``): one object that labels faces in a photo, a video, a folder or a camera.

``aidentify.load()`` returns a :class:`Recognizer`; ``predict(image)`` gives the faces of one
photo as :class:`Face` dataclasses, ``stream(source)`` yields one :class:`Frame` per frame of a
video, camera, stream, folder or image, lazily. It is the same detect → crop → classify path that
``live`` runs (:class:`aidentify.live.pipeline.LivePipeline`): the CLI's ``live --json``, the
server's JSON and ``analyze`` all turn its results into dictionaries through :meth:`Face.to_dict`
and :meth:`Frame.to_dict`, so every surface reports the same fields.

Nothing here imports TensorFlow: a ``.tflite`` model runs on LiteRT (a ``.keras`` model needs the
``train`` extra). Like the detectors it holds, a Recognizer is not thread-safe: give each thread
or process its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from aidentify.config import LiveConfig, load_config
from aidentify.errors import DataError
from aidentify.faces.detector import KEYPOINT_NAMES, FaceDetector, make_detector
from aidentify.inference.classify import Classifier, load_classifier
from aidentify.inference.results import FaceResult, FrameResult
from aidentify.live.capture import FrameSource, SkipFn, open_source
from aidentify.live.pipeline import LivePipeline, video_settings

ImageLike = Union[str, Path, np.ndarray, Any]  # a path, an (H, W, 3) BGR / (H, W) uint8 array, or a PIL image


@dataclass(frozen=True)
class Face:
    """One face: where it is and what the model reads in it.

    - ``box``: ``(x, y, w, h)`` ints, pixels of the input image, top-left origin, inside the image;
    - ``label`` and ``confidence``: the most probable class and its probability (0-1);
    - ``probabilities``: ``{class: probability}`` in the model's class order, summing to 1
      (smoothed over a track's frames in :meth:`Recognizer.stream`, raw for photos);
    - ``keypoints``: ``{name: (x, y)}`` float pixels from the detector (MTCNN: eyes, nose, mouth
      corners; BlazeFace: eyes, nose tip, mouth, ears; Haar: None). "right" is the person's right;
    - ``track_id``: the face's id across a stream's frames (photos: 1, 2, … within the photo).
    """

    box: tuple[int, int, int, int]
    label: str
    confidence: float
    probabilities: dict[str, float]
    keypoints: dict[str, tuple[float, float]] | None = None
    track_id: int = 0

    @classmethod
    def from_result(cls, face: FaceResult, classes: list[str], detector: str) -> Face:
        """The public form of a pipeline's :class:`FaceResult` (``detector`` names its keypoints)."""
        names = KEYPOINT_NAMES.get(detector)
        points = None
        if face.keypoints is not None and names is not None:
            points = {name: (float(x), float(y)) for name, (x, y) in zip(names, face.keypoints)}
        return cls(box=tuple(int(v) for v in face.box), label=face.label, confidence=float(face.confidence),
                   probabilities={c: float(p) for c, p in zip(classes, face.probs)}, keypoints=points,
                   track_id=int(face.track_id))

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """The face as JSON-ready types, the fields of ``POST /api/predict``; probabilities and
        keypoints rounded to ``digits`` and 1 decimal place."""
        answer: dict[str, Any] = {
            "box": list(self.box), "label": self.label, "confidence": round(self.confidence, digits),
            "probabilities": {c: round(p, digits) for c, p in self.probabilities.items()},
            "track": self.track_id,
        }
        if self.keypoints is not None:
            answer["keypoints"] = {name: [round(x, 1), round(y, 1)] for name, (x, y) in self.keypoints.items()}
        return answer


@dataclass
class Frame:
    """What a stream found in one frame.

    ``index`` counts frames from 0; ``time_s`` is the frame's media time in seconds (a photo's
    place in a folder for stills, seconds since start for a camera); ``file`` names the photo for
    a folder or an image; ``faces`` are largest first; ``timings_ms`` holds the ``detect`` and
    ``classify`` cost of this frame in ms; ``image`` is the ``(H, W, 3) uint8`` BGR frame itself
    (not copied: keep a copy if you keep it past the next frame).
    """

    index: int
    time_s: float
    faces: list[Face]
    image: np.ndarray = field(repr=False)
    detected: bool = True
    file: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    model: str = ""
    classes: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``frame``, ``time_s``, ``file`` (photos), and the fields of ``POST /api/predict``
        (``model``, ``classes``, ``image`` size, ``faces``, ``timings_ms``)."""
        answer: dict[str, Any] = {"frame": self.index, "time_s": round(self.time_s, 3)}
        if self.file is not None:
            answer["file"] = self.file
        answer.update({
            "model": self.model, "classes": list(self.classes),
            "image": {"width": int(self.image.shape[1]), "height": int(self.image.shape[0])},
            "faces": [face.to_dict() for face in self.faces],
            "timings_ms": {stage: round(ms, 2) for stage, ms in self.timings_ms.items()},
        })
        return answer

    def plot(self, bars: bool = False) -> np.ndarray:
        """A copy of the frame with each face's box and label drawn, ``(H, W, 3) uint8`` BGR."""
        from aidentify.live.draw import draw_faces

        canvas = self.image.copy() if self.image.ndim == 3 else np.repeat(self.image[..., None], 3, axis=-1)
        results = [FaceResult(f.track_id, f.box, np.array(list(f.probabilities.values())), f.label, f.confidence)
                   for f in self.faces]
        return draw_faces(canvas, results, self.classes, bars=bars)


class Recognizer:
    """A model and face detectors, loaded once, behind ``predict`` (photos) and ``stream`` (video).

    Build it with :func:`load`. ``config`` is the ``live`` settings (detector, crop margin,
    tracking, smoothing, test-time views): the same keys as ``configs/live.yaml``.
    """

    def __init__(self, config: LiveConfig, classifier: Classifier | None = None):
        self.config = config
        self.classifier = classifier or load_classifier(config.model, config.backend, config.threads)
        self._detectors: dict[str, FaceDetector] = {}

    @property
    def classes(self) -> list[str]:
        """The model's class names, in the order of its outputs."""
        return list(self.classifier.info.classes)

    @property
    def model_name(self) -> str:
        """The model file's name without suffix (``default`` for the shipped model)."""
        return self.classifier.info.path.stem

    @property
    def detector(self) -> str:
        """The detector photos go to (``mtcnn``, ``blazeface`` or ``haar``)."""
        return self._detector(stills=True).name

    def _detector(self, stills: bool) -> FaceDetector:
        """The photo or video detector, each built once, on first use."""
        kind = "still" if stills else "video"
        if kind not in self._detectors:
            settings = self.config.detect if stills else video_settings(self.config.detect)
            self._detectors[kind] = make_detector(settings, kind)
        return self._detectors[kind]

    def predict(self, image: ImageLike) -> list[Face]:
        """The faces of one photo, largest first.

        ``image``: a path to an image file, an ``(H, W, 3) uint8`` BGR array (OpenCV's order), an
        ``(H, W) uint8`` grayscale array, or a PIL image. Every face is searched down to
        ``detect.min_face`` pixels with the photo detector, with no tracking or smoothing.
        Raises :class:`~aidentify.errors.DataError` for a file that is missing or not an image,
        or an array of another shape or type.
        """
        image = as_bgr(image)
        _, result = self.pipeline_for(stills=True)(image, draw=False)
        return self.to_frame(result, image, 0.0).faces

    def stream(self, source: str | Path | int, max_frames: int | None = None,
               on_skip: SkipFn | None = None) -> Iterator[Frame]:
        """One :class:`Frame` per frame of ``source``, lazily, faces tracked across frames.

        ``source``: a video file, an image, a folder of images, a stream URL (``rtsp://``…) or
        a camera index (int). Video frames use the video detector every ``detect.every``
        frames (faces followed by optical flow between) and smoothed probabilities; photos of
        a folder are independent (fresh ids, no smoothing). ``on_skip(file, why)`` hears of
        each unreadable image a folder skips. Raises :class:`~aidentify.errors.DataError` for a
        source that cannot be opened. The source is closed when the iterator ends or is closed.
        """
        camera = source if isinstance(source, int) and not isinstance(source, bool) else None
        frames = open_source(camera, None if camera is not None else str(source), on_skip)
        try:
            pipelines = Pipelines(self, frames.stills)
            for image, time_s in _read(frames, max_frames):
                pipeline = pipelines.for_frame(frames)
                _, result = pipeline(image, draw=False)
                yield self.to_frame(result, image, time_s, frames.current_name or None, pipeline.detector.name)
        finally:
            frames.close()

    def pipeline_for(self, stills: bool) -> LivePipeline:
        """A fresh live pipeline (its own tracker and smoothing) over this Recognizer's model and
        detectors: ``stills`` for independent photos, else for the frames of one video or camera."""
        return LivePipeline(self.classifier, self.config, stills=stills, detector=self._detector(stills))

    def to_frame(self, result: FrameResult, image: np.ndarray, time_s: float, file: str | None = None,
                 detector: str | None = None) -> Frame:
        """The public :class:`Frame` of a pipeline's result for ``image`` (faces largest first);
        ``detector`` names the backend that found them (default: the photo detector)."""
        detector = detector or self._detector(stills=True).name
        faces = sorted((Face.from_result(f, self.classes, detector) for f in result.faces),
                       key=lambda f: -(f.box[2] * f.box[3]))
        timings = {k: v for k, v in result.timings.items() if k != "draw"}
        return Frame(result.index, float(time_s), faces, image, result.detected, file, timings,
                     self.model_name, self.classes)


class Pipelines:
    """The live pipeline for each frame of a source: one for its whole run, or (a folder holding
    videos) a fresh one for each file, so every file gets its own tracks, frame numbers and
    smoothing. The detectors are the Recognizer's, loaded once."""

    def __init__(self, recognizer: Recognizer, stills: bool):
        self.recognizer = recognizer
        self.current = recognizer.pipeline_for(stills)

    def for_frame(self, source: FrameSource) -> LivePipeline:
        """The pipeline for the frame ``source`` read last (a new one at each file of a folder of videos)."""
        if source.folder and not source.stills and source.new_file:
            self.current = self.recognizer.pipeline_for(stills=source.current_still)
        return self.current


def _read(frames: FrameSource, max_frames: int | None) -> Iterator[tuple[np.ndarray, float]]:
    """The source's ``(frame, time_s)`` pairs until it ends or ``max_frames`` were read."""
    count = 0
    while max_frames is None or count < max_frames:
        item = frames.read()
        if item is None:
            return
        count += 1
        yield item


def as_bgr(image: ImageLike) -> np.ndarray:
    """An ``(H, W, 3)`` or ``(H, W)`` uint8 array from a path, an array or a PIL image (RGB → BGR).

    Raises :class:`~aidentify.errors.DataError` for a missing or unreadable file or an array
    that is not 2-D gray or 3-channel uint8.
    """
    if isinstance(image, (str, Path)):
        from aidentify.imagefile import TRUNCATED, read_image

        path = Path(image)
        if not path.is_file():
            raise DataError(f"{path}: no such image file")
        frame, problem = read_image(path)
        if frame is None:
            why = "the file is truncated" if problem == TRUNCATED else "not an image OpenCV can decode"
            raise DataError(f"cannot read image {path}: {why}")
        return frame
    if not isinstance(image, np.ndarray) and hasattr(image, "convert") and hasattr(image, "size"):
        rgb = np.asarray(image.convert("RGB"))  # a PIL image
        return np.ascontiguousarray(rgb[..., ::-1])
    array = np.asarray(image)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise DataError(f"an image array must be (H, W, 3) BGR or (H, W) gray uint8, not {array.shape} {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 4:
        array = np.ascontiguousarray(array[..., :3])  # BGRA as OpenCV reads it: drop alpha
    if min(array.shape[:2]) < 1:
        raise DataError(f"an image array must not be empty, not {array.shape}")
    return array


def load(model: str | Path | None = None, detector: str | None = None, config: str | Path | None = None,
         **settings: Any) -> Recognizer:
    """Load a model and the face detectors once; return a :class:`Recognizer`.

    ``model``: a ``.tflite`` or ``.keras`` file or a run folder (``runs/cnn/exp``); None is the
    model shipped in the package (int8 LiteRT, FER+ classes). ``detector``: ``auto`` (MTCNN),
    ``mtcnn``, ``blazeface`` or ``haar``. ``config``: a live YAML file (as ``configs/live.yaml``);
    without it the built-in defaults are used (the current folder's configs are not read).
    ``settings``: further live keys, dotted keys written with ``__`` (``detect__min_face=40``,
    ``tta_flip=True``). Raises :class:`~aidentify.errors.ConfigError` for an unknown key or
    value and :class:`~aidentify.errors.DataError` for a model that is missing or broken.
    """
    options: dict[str, Any] = {key.replace("__", "."): value for key, value in settings.items()}
    options.update({"model": None if model is None else str(model), "detect.detector": detector})
    cfg, _ = load_config(LiveConfig, Path(config) if config is not None else None, None, options,
                         options_from="a keyword argument of aidentify.load() (dots written __)")
    return Recognizer(cfg)
