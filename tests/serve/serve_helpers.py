"""Helpers for the server tests: real photos as files, a decompression bomb, a free port."""

from __future__ import annotations

import socket
import struct
import zlib

import cv2
import numpy as np


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
