"""Small image helpers shared by the data stages (OpenCV, no TensorFlow)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from aidentify.files import atomic_write_bytes


def read_gray(path: Path) -> np.ndarray | None:
    """Read an image as 8-bit grayscale; None if it is missing or unreadable.

    OpenCV decodes what it reads; HEIC, AVIF and GIF go through the one rule of
    :mod:`aidentify.imagefile` (an animation: its first frame).
    """
    data = np.fromfile(str(path), dtype=np.uint8) if os.path.isfile(path) else None
    if data is None or data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None or not image.size:
        colour = _decoded_elsewhere(data)
        image = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY) if colour is not None else None
    return image if image is not None and image.size else None


def _decoded_elsewhere(data: np.ndarray) -> np.ndarray | None:
    """A file OpenCV cannot decode, through Pillow (:func:`aidentify.imagefile.decode_image_bytes`)."""
    from aidentify.imagefile import decode_image_bytes

    image, _ = decode_image_bytes(data.tobytes())
    return image


def header_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from an image file's header, without decoding its pixels.

    None when Pillow does not know the format (the decoder then decides). Pillow's
    own decompression-bomb refusal is not applied: callers compare with their limit.
    """
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as image:  # lazy: reads the header only
                    return image.size
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except (OSError, ValueError, SyntaxError):
        return None


def read_image(path: Path) -> np.ndarray | None:
    """Read an image as ``(H, W, 3) uint8`` BGR (grayscale files replicated); None if unreadable.

    Face detectors want colour; crops are cut from its grayscale conversion. Formats
    OpenCV does not read (HEIC, AVIF, GIF) are decoded as :func:`read_gray` says.
    """
    data = np.fromfile(str(path), dtype=np.uint8) if os.path.isfile(path) else None
    if data is None or data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or not image.size:
        image = _decoded_elsewhere(data)
    return image if image is not None and image.size else None


def write_png(path: Path, image: np.ndarray) -> None:
    """Encode and write a PNG atomically (no half-written image after a crash)."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path}")
    atomic_write_bytes(Path(path), encoded.tobytes())


def perceptual_hash(gray: np.ndarray) -> int:
    """64-bit DCT perceptual hash: near-identical images differ in few bits.

    The image is shrunk to 32x32, transformed with a DCT, and the 8x8 lowest
    frequencies are compared with their median (the DC term excluded).
    """
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def worker_count(requested: int) -> int:
    """``0`` means every core this process may use."""
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
