"""Helpers for the server tests: real photos as files, a decompression bomb, a free port, a real server."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest


def encode(image: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok, ext
    return buffer.tobytes()


def six_face_photo() -> np.ndarray:
    """A 640x480 photo of six real faces: scikit-image's astronaut and five LFW faces, composed."""
    from aidentify.live.demo import demo_frames

    return next(iter(demo_frames(faces=6, seconds=1 / 30, fps=30.0, size=(640, 480))))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 20000) -> bytes:
    """A valid ``side`` x ``side`` 1-bit PNG of zeros: a few tens of KB on disk, 400 MP decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health(port: int) -> dict:
    """``GET /api/health`` of the server on ``port`` (raises OSError while nothing listens)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/api/health")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


@contextlib.contextmanager
def serve_process(arguments: list[str], folder: Path, env: dict | None = None,
                  start_timeout_s: float = 120.0) -> Iterator[tuple[int, Path]]:
    """``python -m aidentify serve --port P *arguments`` in ``folder``, a real uvicorn server in its own
    process; yields ``(P, its log file)`` once /api/health says ready, and stops it at the end. A server
    that exits or does not get ready in ``start_timeout_s`` fails the test with its log."""
    port = free_port()
    log_path = folder / "server.log"
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "aidentify", "serve", "--port", str(port), *arguments],
                               cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + start_timeout_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {log_path.read_text()}")
            with contextlib.suppress(OSError, ValueError):
                if health(port).get("status") == "ready":
                    break
            if time.time() > deadline:
                pytest.fail(f"the server did not start: {log_path.read_text()}")
            time.sleep(0.2)
        yield port, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
