"""Saving and loading models together with what is needed to use them.

A ``.keras`` file is a zip archive; AIdentify adds one entry, ``aidentify.json``,
holding the class names (in output order), the input size and how faces were
cropped for training. Anything that loads a model (evaluate, live, export)
reads the class names from here, never from a hard-coded list.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from aidentify.errors import DataError

METADATA_ENTRY = "aidentify.json"


def resolve_model_path(path: Path) -> Path:
    """Accept a ``.keras`` file or a run folder (its ``weights/best.keras``)."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "weights" / "best.keras", path / "weights" / "last.keras", path / "best.keras"):
            if candidate.is_file():
                return candidate
        raise DataError(f"{path} is a folder without weights/best.keras; pass a .keras file or a run folder")
    if not path.is_file():
        raise DataError(f"model not found: {path}")
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
    import keras

    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as exc:  # Keras raises many types for a damaged file
        raise DataError(f"cannot load model {path}: {exc}") from None
    return model, metadata
