"""Helpers for the live tests: reading videos back and running a virtual display."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import pytest


def count_frames(path: Path) -> int:
    """Frames OpenCV can decode from a video (decoding every one, not trusting the header)."""
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


@contextlib.contextmanager
def virtual_display():
    """Start Xvfb on a free display number and point DISPLAY at it.

    `.ci/run` installs Xvfb and sets AIDENTIFY_REQUIRE_XVFB=1, so in CI a
    missing Xvfb fails the test instead of skipping it.
    """
    if shutil.which("Xvfb") is None:
        if os.environ.get("AIDENTIFY_REQUIRE_XVFB") == "1":
            pytest.fail("Xvfb is required (apt-get install -y xvfb)")
        pytest.skip("Xvfb is not installed (apt-get install -y xvfb)")
    number = 90 + os.getpid() % 100
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    old = os.environ.get("DISPLAY")
    try:
        socket = Path(f"/tmp/.X11-unix/X{number}")
        for _ in range(100):
            if socket.exists():
                break
            time.sleep(0.05)
        os.environ["DISPLAY"] = f":{number}"
        yield f":{number}"
    finally:
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old
        server.terminate()
        server.wait(timeout=10)
