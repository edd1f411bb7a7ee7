"""The face detectors' network files shipped inside the package, and the record of where they came from.

``aidentify/assets/detectors/<backend>/`` holds each backend's ``.tflite``
files beside their licence texts; ``detectors.json`` gives, per backend, the
source wheel (package, version, SHA-256), each source file's and shipped file's
SHA-256, the licence (SPDX id, notice) and how the file was made. They are
written by ``scripts/ship_detectors.py`` (which needs the full install) and read
here, so every install detects faces with the same bytes and none needs
TensorFlow, the source packages or a network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aidentify.errors import DataError

DETECTORS_DIR = Path(__file__).resolve().parents[1] / "assets" / "detectors"
PROVENANCE_FILE = DETECTORS_DIR / "detectors.json"


def shipped_file(backend: str, name: str) -> Path:
    """The shipped file ``name`` of ``backend`` (``"mtcnn"``, ``"blazeface"``).

    Raises ``DataError`` when it is missing (a damaged install or a checkout
    without the files).
    """
    path = DETECTORS_DIR / backend / name
    if not path.is_file():
        raise DataError(f"the {backend} face detector's file {path} is missing from this install; "
                        "reinstall aidentify (pip install --force-reinstall aidentify)")
    return path


def provenance() -> dict[str, Any]:
    """``detectors.json``: per backend, its source, licence and the SHA-256 of every shipped file."""
    return json.loads(PROVENANCE_FILE.read_text(encoding="utf-8"))
