"""Batched, compiled emotion inference for face crops.

Every face of a frame goes through one call (never ``model.predict`` per
face). Two backends give the same interface, ``classifier(crops) -> probs``:

- ``LiteRTClassifier`` runs a ``.tflite`` file with LiteRT's XNNPACK CPU
  kernels; it needs no TensorFlow at all, so the live view starts quickly.
- ``KerasClassifier`` wraps a ``.keras`` model in a ``tf.function`` with an
  unknown batch dimension, traced once.

Crops are uint8 grayscale squares of the model's input size; preprocessing
(scaling, channel replication) lives inside the model itself.

``TestTimeViews`` (test-time augmentation) is shared by ``live`` and
``evaluate``: each crop is also classified mirrored and/or zoomed in, and the
probabilities are averaged, in the same single batched call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.faces.crop import recorded_face_settings
from aidentify.native_logs import import_tensorflow, native_stderr_silenced
from aidentify.inference.modelfile import load_model, read_metadata, resolve_model_path

# Batch sizes a LiteRT interpreter is prepared for; a batch is padded up to the next
# one, so that changing face counts do not re-plan the graph each time. Every size
# up to 8 has its own interpreter: a live frame's faces are few, and padding six
# faces to eight cost a third more time (2 threads: 5.0 against 3.6 ms at 64 px).
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 32)


class Classifier(Protocol):
    """Anything that maps a batch of crops to class probabilities."""

    info: ModelInfo

    def __call__(self, crops: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelInfo:
    """What the live view needs to know about a model, read from its metadata."""

    path: Path
    classes: list[str]
    input_size: int
    channels: int
    crop_margin: float | None  # prepare's margin around reference boxes when training crops were detected, else None
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)  # everything the model file says

    @classmethod
    def from_metadata(cls, path: Path, metadata: dict[str, Any]) -> ModelInfo:
        try:
            classes = [str(c) for c in metadata["classes"]]
            size = int(metadata["input_size"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: its metadata lacks class names or an input size; "
                            "use a model trained or exported by AIdentify") from None
        faces = metadata.get("faces") or {}
        margin = recorded_face_settings(faces).margin if metadata.get("crops") == "detected" else None
        return cls(path, classes, size, int(metadata.get("channels", 1)), margin, metadata)


@dataclass(frozen=True)
class TestTimeViews:
    """Test-time augmentation: classify every crop in several views and average the probabilities.

    ``zooms`` are centre crops, each a fraction of the side, enlarged back to the
    input size; ``flip`` adds the mirror image of every view (faces are near-symmetric).
    Views cost one model call each, so ``count`` views multiply classification time.
    The model was trained with random zoom and flips, so these views are faces it knows;
    averaging over them cancels part of each view's error.
    """

    __test__ = False  # a name that starts with "Test", but not a pytest test class

    flip: bool = False
    zooms: tuple[float, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> TestTimeViews:
        """The views a config section asks for (``tta_flip`` and ``tta_zooms``: evaluate, live, distill)."""
        return cls(flip=settings.tta_flip, zooms=tuple(settings.tta_zooms))

    @property
    def count(self) -> int:
        return (1 + len(self.zooms)) * (2 if self.flip else 1)

    def expand(self, crops: np.ndarray) -> np.ndarray:
        """(n, s, s[, c]) crops -> (count * n, ...) views, view-major (all crops of view 1 first)."""
        crops = np.asarray(crops, dtype=np.uint8)
        views = [crops] + [_zoom_in(crops, zoom) for zoom in self.zooms]
        if self.flip:
            views += [np.ascontiguousarray(view[:, :, ::-1]) for view in views]
        return np.concatenate(views) if len(views) > 1 else crops

    def predict(self, classify: Classifier, crops: np.ndarray) -> np.ndarray:
        """The mean of ``classify``'s probabilities over every view of each crop, in one call."""
        if self.count == 1 or len(crops) == 0:
            return classify(crops)
        probs = classify(self.expand(crops))
        return probs.reshape(self.count, len(crops), -1).mean(axis=0)


def _zoom_in(crops: np.ndarray, zoom: float) -> np.ndarray:
    """The centre ``zoom`` fraction of each crop, enlarged back to the crop's size (bilinear)."""
    size = crops.shape[1]
    margin = round(size * (1.0 - zoom) / 2)
    if margin == 0:
        return crops
    inner = crops[:, margin:size - margin, margin:size - margin]
    zoomed = [cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR) for c in inner]
    return np.stack(zoomed).reshape(crops.shape)


def load_classifier(model: Path | None, backend: str = "auto", threads: int = 2) -> Classifier:
    """Open a model for inference; ``None`` is the model shipped with the package."""
    path = resolve_model_path(model)
    info = ModelInfo.from_metadata(path, read_metadata(path))
    is_tflite = path.suffix.lower() == ".tflite"
    if backend == "keras" and is_tflite:
        raise DataError(f"{path} is a .tflite model; use backend litert (or auto) for it")
    if backend == "keras" or (backend == "auto" and not is_tflite):
        return KerasClassifier(path, info)
    flatbuffer = path.read_bytes() if is_tflite else keras_to_tflite(load_model(path)[0])
    return LiteRTClassifier(flatbuffer, info, threads)


def keras_to_tflite(model: Any, dynamic_int8: bool = False) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer (float32, or dynamic-range int8 weights)."""
    import contextlib
    import io

    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if dynamic_int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its SavedModel signature
        return converter.convert()


class LiteRTClassifier:
    """A ``.tflite`` model on LiteRT, one interpreter per batch bucket."""

    def __init__(self, flatbuffer: bytes, info: ModelInfo, threads: int = 2):
        self.info = info
        self._flatbuffer = flatbuffer
        self._threads = threads
        self._interpreters: dict[int, Any] = {}
        self._interpreter(1)  # fail now, not on the first face, if the model cannot run

    def _interpreter(self, batch: int) -> Any:
        if batch not in self._interpreters:
            from ai_edge_litert.interpreter import Interpreter

            try:
                with native_stderr_silenced():  # hides LiteRT's "Created XNNPACK delegate" INFO line
                    interpreter = Interpreter(model_content=self._flatbuffer, num_threads=self._threads)
                    detail = interpreter.get_input_details()[0]
                    size, channels = self.info.input_size, self.info.channels
                    if tuple(detail["shape"][1:]) != (size, size, channels):
                        raise DataError(f"{self.info.path}: input shape {tuple(detail['shape'])} does not match "
                                        f"its metadata ({size}x{size}x{channels})")
                    interpreter.resize_tensor_input(detail["index"], [batch, size, size, channels])
                    interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise DataError(f"{self.info.path} cannot run on LiteRT: {exc}") from None
            output = interpreter.get_output_details()[0]
            if output["shape"][-1] != len(self.info.classes):
                raise DataError(f"{self.info.path}: {output['shape'][-1]} outputs but "
                                f"{len(self.info.classes)} class names")
            self._interpreters[batch] = (interpreter, detail, output)
        return self._interpreters[batch]

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = _as_batch(crops, self.info)
        results = []
        for start in range(0, len(crops), BATCH_BUCKETS[-1]):
            chunk = crops[start:start + BATCH_BUCKETS[-1]]
            bucket = next(b for b in BATCH_BUCKETS if b >= len(chunk))
            interpreter, detail, output = self._interpreter(bucket)
            batch = np.zeros((bucket, *chunk.shape[1:]), dtype=detail["dtype"])
            batch[:len(chunk)] = chunk
            interpreter.set_tensor(detail["index"], batch)
            interpreter.invoke()
            results.append(interpreter.get_tensor(output["index"])[:len(chunk)].copy())
        return np.concatenate(results) if results else np.zeros((0, len(self.info.classes)), np.float32)


class KerasClassifier:
    """A ``.keras`` model behind a ``tf.function`` traced once for any batch size."""

    def __init__(self, path: Path, info: ModelInfo):
        tf = import_tensorflow()
        self.info = info
        model, _ = load_model(path)
        shape = tuple(model.input_shape[1:])
        if shape != (info.input_size, info.input_size, info.channels):
            raise DataError(f"{path}: input shape {shape} does not match its metadata")
        if model.output_shape[-1] != len(info.classes):
            raise DataError(f"{path}: {model.output_shape[-1]} outputs but {len(info.classes)} class names")
        spec = tf.TensorSpec((None, *shape), tf.uint8)
        self._run = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = _as_batch(crops, self.info)
        if len(crops) == 0:
            return np.zeros((0, len(self.info.classes)), np.float32)
        return self._run(crops).numpy()


def _as_batch(crops: np.ndarray, info: ModelInfo) -> np.ndarray:
    """(n, s, s) or (n, s, s, c) uint8 crops as the model's (n, s, s, channels)."""
    crops = np.asarray(crops, dtype=np.uint8)
    if crops.ndim == 3:
        crops = crops[..., None]
    if crops.shape[-1] != info.channels:
        crops = np.repeat(crops[..., :1], info.channels, axis=-1)
    return crops
