"""Saving and loading models together with what is needed to use them.

A ``.keras`` file is a zip archive; AIdentify adds one entry, ``aidentify.json``,
holding the class names (in output order), the input size and how faces were
cropped for training. A ``.tflite`` file (``aidentify export``) carries the same
JSON in its flatbuffer's metadata table under the name ``aidentify``. Anything
that loads a model (evaluate, live, export) reads the class names from here,
never from a hard-coded list.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from aidentify.errors import DataError
from aidentify.native_logs import import_tensorflow

METADATA_ENTRY = "aidentify.json"
TFLITE_METADATA_NAME = "aidentify"
MODEL_SUFFIXES = (".keras", ".tflite")
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default.tflite"


def default_model_path() -> Path:
    """The model shipped inside the package (used when no ``--model`` is given)."""
    if not DEFAULT_MODEL.is_file():
        raise DataError(f"the default model {DEFAULT_MODEL} is missing from this install; "
                        "reinstall aidentify or pass --model PATH")
    return DEFAULT_MODEL


DEFAULT_MODEL_NAME = "default"  # --model default, init_weights=default: the shipped model


def resolve_model_path(path: Path | None) -> Path:
    """Accept a ``.keras`` or ``.tflite`` file, a run folder (its ``weights/best.keras``),
    or None or the name ``default`` (the shipped default model, unless a file or folder of
    that name is in the working directory).

    Raises :class:`DataError` when nothing usable is at ``path``.
    """
    if path is None or (str(path) == DEFAULT_MODEL_NAME and not Path(path).exists()):
        return default_model_path()
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "weights" / "best.keras", path / "weights" / "last.keras", path / "best.keras"):
            if candidate.is_file():
                return candidate
        raise DataError(f"{path} is a folder without weights/best.keras; pass a .keras file or a run folder")
    if not path.is_file():
        raise DataError(f"model not found: {path}; pass a .keras or .tflite file, a run folder, or default "
                        "(the shipped model)")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise DataError(f"{path} is not a model; pass a .keras or .tflite file or a run folder")
    return path


def save_model(model: Any, path: Path, metadata: dict[str, Any]) -> None:
    """Save ``model`` with its metadata atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.keras")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=2))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata stored in a model file by :func:`save_model`."""
    path = resolve_model_path(path)
    if path.suffix.lower() == ".tflite":
        return read_tflite_metadata(path.read_bytes(), path)
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(METADATA_ENTRY))
    except KeyError:
        raise DataError(f"{path} has no class names inside; it was not saved by AIdentify") from None
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not a readable .keras model ({exc})") from None


def load_model(path: Path, compile: bool = False) -> tuple[Any, dict[str, Any]]:
    """Load a Keras model and its metadata. Imports TensorFlow."""
    path = resolve_model_path(path)
    metadata = read_metadata(path)
    import_tensorflow()
    import keras

    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as exc:  # Keras raises many types for a damaged file
        raise DataError(f"cannot load model {path}: {exc}") from None
    if not compile:
        model = computing_in_float32(model)
    return model, metadata


def computing_in_float32(model: Any) -> Any:
    """``model`` itself, or, for one trained in mixed precision, a float32 copy with the same weights.

    A model trained under ``mixed_float16`` or ``mixed_bfloat16`` keeps float32
    weights but saves each layer's policy, so loaded as it is it would still
    compute in 16 bits: a little less exact, and not exportable (TFLite has no
    bfloat16 convolution; the converter asks for TensorFlow's flex ops, which
    LiteRT lacks, and both exports fail). Inference (evaluate, live, export)
    therefore gets the float32 network; training (``--resume``) loads the file as saved.
    """
    import keras

    config = model.get_config()
    if not _float32_policies(config):
        return model
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # for layers whose config names no policy
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.mixed_precision.set_global_policy(before)
    copy.set_weights(model.get_weights())
    return copy


def _float32_policies(config: Any) -> bool:
    """Replace every mixed dtype policy in a Keras config by float32, in place; whether any was found."""
    found = False
    if isinstance(config, dict):
        name = config.get("config", {}).get("name") if config.get("class_name") == "DTypePolicy" else None
        if isinstance(name, str) and name.startswith("mixed_"):
            config["config"]["name"] = "float32"
            return True
        for value in config.values():
            found = _float32_policies(value) or found
    elif isinstance(config, list):
        for value in config:
            found = _float32_policies(value) or found
    return found


def embed_tflite_metadata(flatbuffer: bytes, metadata: dict[str, Any]) -> bytes:
    """A copy of a TFLite flatbuffer with ``metadata`` added as a named buffer.

    Uses the flatbuffer schema that ships with ``ai-edge-litert``, so neither
    writing nor reading needs TensorFlow.
    """
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    data = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    existing = [m for m in (model.metadata or []) if m.name == TFLITE_METADATA_NAME.encode()]
    if existing:  # replace the old JSON in its own buffer rather than leave it behind
        model.buffers[existing[0].buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = TFLITE_METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_tflite_metadata(flatbuffer: bytes, path: Path | str = "model") -> dict[str, Any]:
    """The metadata :func:`embed_tflite_metadata` stored in a ``.tflite`` file."""
    from ai_edge_litert import schema_py_generated as schema

    if bytes(flatbuffer[4:8]) != b"TFL3":  # the TFLite file identifier
        raise DataError(f"{path} is not a readable .tflite model (no TFLite file identifier)")
    try:
        model = schema.Model.GetRootAs(flatbuffer, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == TFLITE_METADATA_NAME.encode():
                return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except Exception as exc:  # a damaged flatbuffer fails in many ways
        raise DataError(f"{path} is not a readable .tflite model ({exc})") from None
    raise DataError(f"{path} has no class names inside; export it with `aidentify export`")
