"""Export a trained ``.keras`` model to ``.tflite`` for fast CPU inference.

Two files: float32 (same numbers as Keras) and dynamic-range int8 (weights
stored as int8, about 4x smaller, computed in float). Each is checked against
the Keras model on real face crops before it is kept: a file whose outputs
drift beyond the tolerance is not written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aidentify.faces.crop import resize_square
from aidentify.errors import DataError
from aidentify.files import atomic_write_bytes, check_output_folder
from aidentify.inference.modelfile import embed_tflite_metadata, load_model, resolve_model_path

# Largest allowed difference of any class probability, Keras vs TFLite.
TOLERANCE = {"float32": 1e-4, "int8": 0.05}


@dataclass
class ExportedModel:
    kind: str
    path: Path
    size_bytes: int
    max_difference: float
    top1_agreement: float
    checked_on: int


def check_crops(size: int) -> np.ndarray:
    """Real face crops for the output check: the demo's faces, mirrored and shifted."""
    import cv2

    from aidentify.faces.samples import MAX_FACES, face_sprites

    crops = []
    for sprite in face_sprites(MAX_FACES, side=96):
        gray = cv2.cvtColor(sprite, cv2.COLOR_BGR2GRAY)
        for variant in (gray, gray[:, ::-1], gray[6:, 6:], gray[:-6, :-6]):
            crops.append(resize_square(np.ascontiguousarray(variant), size))
    return np.stack(crops)[..., None]


def export_model(model_path: Path, out_dir: Path | None = None) -> list[ExportedModel]:
    """Write ``<stem>.tflite`` (float32) and ``<stem>.int8.tflite`` next to the model (or in ``out_dir``)."""
    from aidentify.inference.classify import LiteRTClassifier, ModelInfo, keras_to_tflite

    path = resolve_model_path(model_path)
    if path.suffix.lower() != ".keras":
        raise DataError(f"{path} is already a .tflite file; export takes a .keras model or a run folder")
    out_dir = Path(out_dir) if out_dir else path.parent
    check_output_folder(out_dir)
    model, metadata = load_model(path)
    info = ModelInfo.from_metadata(path, metadata)
    crops = check_crops(info.input_size)
    if info.channels != 1:
        crops = np.repeat(crops, info.channels, axis=-1)
    reference = model(crops, training=False).numpy()
    results = []
    for kind, suffix in (("float32", ".tflite"), ("int8", ".int8.tflite")):
        try:
            flatbuffer = keras_to_tflite(model, dynamic_int8=kind == "int8")
        except Exception as exc:  # the converter raises many types
            raise DataError(f"cannot convert {path} to TFLite ({kind}): {exc}") from None
        flatbuffer = embed_tflite_metadata(flatbuffer, {**metadata, "tflite": kind, "source_model": path.name})
        probs = LiteRTClassifier(flatbuffer, info)(crops)
        difference = float(np.abs(probs - reference).max())
        agreement = float((probs.argmax(1) == reference.argmax(1)).mean())
        if difference > TOLERANCE[kind]:
            raise DataError(f"{kind} TFLite outputs differ from Keras by {difference:.2g} "
                            f"(> {TOLERANCE[kind]:g}); the file was not written")
        target = out_dir / f"{path.stem}{suffix}"
        atomic_write_bytes(target, flatbuffer)
        results.append(ExportedModel(kind, target, len(flatbuffer), difference, agreement, len(crops)))
    return results
