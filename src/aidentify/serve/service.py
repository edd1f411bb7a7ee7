"""What the server holds for its whole life: the models by name, the worker processes, the one predict path.

Everything is loaded once, when the app is created: each model's metadata
here (names, classes, input size, accuracy for ``/api/models``), and every
model and face detector in each worker process (:mod:`aidentify.serve.workers`).
Photos go through the live pipeline with ``stills=True`` (the one
detect-crop-classify path of ``live``) inside a worker; camera frames over the
WebSocket and the server's stream get a pipeline of their own (own tracker
and smoothing) whose detector and classifier calls run in the workers.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aidentify.config import ServeConfig
from aidentify.faces.detector import make_detector, resolve_detector_name
from aidentify.inference.classify import ModelInfo
from aidentify.inference.modelfile import default_model_path, read_metadata, resolve_model_path
from aidentify.inference.results import FrameResult
from aidentify.live.pipeline import LivePipeline
from aidentify.live.recognizer import Face
from aidentify.serve.errors import ApiError
from aidentify.serve.workers import RemoteClassifier, RemoteDetector, WorkerPool, predict_photo

DEFAULT_NAME = "default"


@dataclass
class ServedModel:
    """A model clients can pick by ``name``; its path never leaves the server."""

    name: str
    path: Path
    classifier: RemoteClassifier

    @property
    def info(self) -> ModelInfo:
        return self.classifier.info

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "classes": list(self.info.classes), "input_size": self.info.input_size,
                "format": self.path.suffix.lstrip("."), "accuracy": model_accuracy(self.info.metadata)}


def model_accuracy(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """FER+ Valid accuracy and macro F1 from a model's metadata, where it records them.

    The shipped model records its scores under ``provenance.fer_plus_valid``, one
    entry per file kind (``float32``, ``int8``); the kind of this file
    (``tflite`` in the metadata) is the one reported.
    """
    provenance = metadata.get("provenance") or {}
    scores = provenance.get("fer_plus_valid")
    if not isinstance(scores, dict) or not scores:
        return None
    kind = metadata.get("tflite") or provenance.get("shipped")
    entry = scores.get(kind) if kind in scores else next(iter(scores.values()))
    if not isinstance(entry, dict) or "accuracy" not in entry:
        return None
    result = {"dataset": "FER+ Valid", "accuracy": round(float(entry["accuracy"]), 4)}
    if "macro_f1" in entry:
        result["macro_f1"] = round(float(entry["macro_f1"]), 4)
    if "n" in entry:
        result["images"] = int(entry["n"])
    return result


def model_names(paths: list[Path]) -> dict[str, Path]:
    """``{name: path}`` for the shipped model and each of ``paths``, names unique, the default first.

    The shipped model is ``default``; another is named by its file stem (a run
    folder by the folder's name; see :func:`readable_name`), with ``-2``,
    ``-3``... added only where two names are the same.
    """
    entries = {DEFAULT_NAME: default_model_path()}
    for given in paths:
        if str(given) == DEFAULT_NAME:
            continue
        path = resolve_model_path(Path(given))
        if path in entries.values():
            continue
        stem = Path(given).name if Path(given).is_dir() else path.stem
        base = readable_name(stem)
        name, n = base, 2
        while name in entries:
            name, n = f"{base}-{n}", n + 1
        entries[name] = path
    return entries


# Characters a name cannot keep: whitespace, controls and what has a meaning in a URL or a query
# string (a name travels as ?model=NAME and in form fields). Letters, digits, marks and symbols of
# any script stay: JSON and the page carry Unicode as it is.
UNSAFE_IN_NAME = re.compile(r"""[\s\x00-\x1f\x7f-\x9f/\\?#%&=+:;,"'<>`|^{}\[\]]+""")


def readable_name(stem: str) -> str:
    """A model's name from its file stem: the stem as a person wrote it, minus what a URL cannot carry.

    NFC-normalised (the same name typed on macOS, which stores NFD file names,
    and elsewhere is one name); runs of whitespace and URL-reserved characters
    become one ``-``. ``модель``, ``顔`` and ``glück 😀`` become ``модель``,
    ``顔`` and ``glück-😀``; a stem with nothing left is ``model``.
    """
    name = UNSAFE_IN_NAME.sub("-", unicodedata.normalize("NFC", stem)).strip("-.")
    invisible = ("Cc", "Cf", "Cs", "Co", "Cn")  # controls, bidi overrides, unassigned; the emoji joiner stays
    return "".join(ch for ch in name if ch == "\u200d" or unicodedata.category(ch) not in invisible) or "model"


class Service:
    """The server's models, worker processes and limits (see the module docstring)."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.live_config = config.live_config()
        self.max_megapixels = config.limits.max_megapixels
        paths = model_names(list(config.models))
        infos = {name: ModelInfo.from_metadata(path, read_metadata(path)) for name, path in paths.items()}
        # Build the detector once here too: a bad setting fails now, in one line, and MTCNN's
        # networks are converted into the cache (once per install) before the workers read them.
        make_detector(self.live_config.detect, "still")
        self.pool = WorkerPool(config, paths)
        self.models = {name: ServedModel(name, path, RemoteClassifier(self.pool, name, infos[name]))
                       for name, path in paths.items()}
        detect = self.live_config.detect
        self.still_detector = RemoteDetector(self.pool, "still", resolve_detector_name(detect.detector, "still"))
        self.video_detector = RemoteDetector(self.pool, "video", resolve_detector_name(detect.detector, "video"))
        self.started = time.time()

    def model(self, name: str | None) -> ServedModel:
        """The model a client named (None or empty: the default); ``ApiError`` 404 for an unknown name."""
        if not name:
            return self.models[DEFAULT_NAME]
        if name not in self.models:
            raise ApiError(404, f"unknown model {name!r}; GET /api/models lists the names: "
                                f"{', '.join(self.models)}")
        return self.models[name]

    def still_pipeline(self, model: ServedModel) -> LivePipeline:
        """A pipeline for independent photos whose detector and model run in the workers."""
        return LivePipeline(model.classifier, self.live_config, stills=True, detector=self.still_detector)

    def video_pipeline(self, model: ServedModel) -> LivePipeline:
        """A pipeline for one stream of frames: its own tracker and smoothing, detection in the workers."""
        return LivePipeline(model.classifier, self.live_config, stills=False, detector=self.video_detector)

    async def predict(self, data: bytes, model_name: str | None) -> dict[str, Any]:
        """The answer of ``POST /api/predict`` for an uploaded file (decoded and labelled in a worker)."""
        model = self.model(model_name)
        start = time.perf_counter()
        result, shape, decode_ms, note = await self.pool.run(predict_photo, data, model.name,
                                                             queue_timeout=self.config.limits.queue_timeout_s)
        answer = frame_answer(result, model, shape, self.still_detector.name)
        if note:
            answer["note"] = note  # an animation: only its first frame was labelled
        answer["timings_ms"] = {"decode": round(decode_ms, 2), **answer["timings_ms"],
                                "total": round((time.perf_counter() - start) * 1000, 2)}
        return answer

    def describe(self) -> dict[str, Any]:
        return {"detector": self.still_detector.name, "video_detector": self.video_detector.name,
                "workers": self.pool.size, "models": list(self.models)}

    def close(self) -> None:
        self.pool.close()


def frame_answer(result: FrameResult, model: ServedModel, shape: tuple[int, ...],
                 detector: str | None = None) -> dict[str, Any]:
    """A frame's faces as the API's JSON: boxes in image pixels, largest face first.

    Each face is the Python API's :meth:`aidentify.Face.to_dict` (``detector`` names the keypoints),
    so ``/api/predict``, the WebSocket, ``live --json`` and ``aidentify.load().predict`` agree.
    """
    classes = list(model.info.classes)
    faces = sorted((Face.from_result(face, classes, detector or "") for face in result.faces),
                   key=lambda f: -(f.box[2] * f.box[3]))
    return {
        "model": model.name,
        "classes": classes,
        "image": {"width": int(shape[1]), "height": int(shape[0])},
        "faces": [face.to_dict() for face in faces],
        "timings_ms": {stage: round(ms, 2) for stage, ms in result.timings.items() if stage != "draw"},
    }
