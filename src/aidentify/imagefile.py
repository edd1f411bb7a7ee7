"""One rule for every image input, decided by what the file holds, not by its name.

``live``, ``serve`` and the data stages all read images through this module:

- :func:`probe_image` says what a file holds from its header (Pillow's ``Image.open``
  reads the header only): a format, and how many frames. Pillow knows the photo
  formats OpenCV reads, plus GIF, APNG, AVIF (Pillow >= 11.2) and HEIC/HEIF (with
  ``pillow-heif``, registered here). A file Pillow does not recognise is not an image
  (a video, or not media at all).
- An image with more than one frame of GIF, WebP, PNG (APNG), AVIF or TIFF is an
  *animation*: :func:`image_frames` gives every frame at its own time (each frame's
  ``duration``; frames that carry none, the pages of a TIFF, one second apart). The
  extra images of an MPO (a phone's depth or stereo picture) or a HEIF burst are not
  frames of a scene: those files are photos, read from their primary image.
- :func:`read_image` gives a photo (the first frame of an animation): OpenCV decodes
  what it reads (``cv2.imread`` applies the EXIF rotation), Pillow the rest
  (``ImageOps.exif_transpose`` does the same).

OpenCV decodes a JPEG cut short as a half-grey picture, with only a libjpeg line
on stderr ("Premature end of JPEG file"); a PNG cut short may decode too. The
bytes tell for certain: a complete JPEG reaches its end-of-image marker (FFD9)
and a complete PNG its IEND chunk. Pillow says "truncated" for the other formats.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

UNREADABLE = "cannot read it"
TRUNCATED = "truncated"
# Formats whose extra frames are frames of one scene in time (or pages, for TIFF).
ANIMATED_FORMATS = {"GIF", "WEBP", "PNG", "AVIF", "TIFF"}
# Formats OpenCV decodes itself (cv2.imread applies the EXIF rotation); Pillow decodes the others.
OPENCV_FORMATS = {"JPEG", "PNG", "BMP", "TIFF", "WEBP", "MPO", "PPM", "JPEG2000"}
# What a GIF frame of 0 or 10 ms is shown for: browsers show such frames for 100 ms
# (a GIF "duration 0" means "as fast as you can", which every browser caps).
MIN_FRAME_MS, SHORT_FRAME_MS = 20, 100
PAGE_SECONDS = 1.0  # a frame without a duration (a TIFF page) lasts one second, like a photo in a folder
# File names that name an image format (for a path that is not there yet, and for the data stages' scans).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".heic", ".heif", ".avif"}


@dataclass(frozen=True)
class ImageKind:
    """What an image file holds: Pillow's format name (``"JPEG"``, ``"WEBP"``, ``"HEIF"``...) and its frames."""

    format: str
    frames: int = 1

    @property
    def animated(self) -> bool:
        """More than one frame of a format whose frames are a scene in time (see the module docstring)."""
        return self.frames > 1 and self.format in ANIMATED_FORMATS


def pillow_image():
    """Pillow's ``Image`` with HEIC/HEIF opening registered (``pillow-heif``, when installed)."""
    from PIL import Image

    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # pragma: no cover - a base dependency; without it HEIC is "not an image"
        pass
    else:
        register_heif_opener()
    return Image


def _open(source):
    """``Image.open`` without Pillow's decompression-bomb warning (callers set their own limits)."""
    Image = pillow_image()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source)


def probe_image(source: Path | bytes) -> ImageKind | None:
    """What a file (a path, or its bytes) holds, from its header; None when it is not an image Pillow knows."""
    try:
        with _open(io.BytesIO(source) if isinstance(source, bytes) else Path(source)) as image:
            return ImageKind(str(image.format), int(getattr(image, "n_frames", 1) or 1))
    except Exception:  # Pillow raises many types for what is not an image or has a broken header
        return None


def read_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """A photo as ``(H, W, 3) uint8`` BGR (an animation's first frame), or None and why not
    (:data:`UNREADABLE` or :data:`TRUNCATED`)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None, UNREADABLE
    if is_truncated(data):
        return None, TRUNCATED
    kind = probe_image(data)
    if kind is None or kind.format in OPENCV_FORMATS:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)  # imread, not imdecode: it applies EXIF rotation
        if frame is not None or kind is None:
            return frame, None if frame is not None else UNREADABLE
    return decode_first_frame(data)


def decode_first_frame(data: bytes) -> tuple[np.ndarray | None, str | None]:
    """The first frame of an image file's bytes, decoded by Pillow with its EXIF rotation applied."""
    from PIL import ImageOps

    try:
        with _open(io.BytesIO(data)) as image:
            return _to_bgr(ImageOps.exif_transpose(image)), None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for a damaged file
        return None, TRUNCATED if "truncated" in str(exc).lower() else UNREADABLE


def decode_image_bytes(data: bytes) -> tuple[np.ndarray | None, ImageKind | None]:
    """An uploaded file's bytes as ``(H, W, 3) uint8`` BGR (its first frame) and what it holds.

    ``(None, kind)`` when it cannot be decoded; OpenCV decodes what it reads (EXIF rotation
    applied), Pillow the rest.
    """
    kind = probe_image(data)
    if kind is not None and kind.format in OPENCV_FORMATS:
        frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if frame is not None and frame.size:
            return frame, kind
    frame, _ = decode_first_frame(data)
    return frame, kind


def image_frames(path: Path) -> Iterator[tuple[np.ndarray, float]]:
    """Every frame of an image file as ``((H, W, 3) uint8 BGR, start time in seconds)``.

    A frame starts when the one before it ends: its ``duration`` (ms) from the file,
    0-10 ms read as 100 ms as browsers show them, none (a TIFF page) as one second.
    Raises ``OSError`` (Pillow's) when a frame cannot be decoded.
    """
    from PIL import ImageSequence

    with _open(Path(path)) as image:
        start = 0.0
        for frame in ImageSequence.Iterator(image):
            bgr = _to_bgr(frame)  # decoding sets the frame's "duration" (WebP sets it only then)
            yield bgr, start
            start += frame_seconds(frame.info.get("duration"))


def frame_durations(path: Path) -> list[float]:
    """How long each frame of an image file is shown, in seconds (see :func:`image_frames`).

    Each frame is decoded: WebP says a frame's duration only then.
    """
    from PIL import ImageSequence

    durations = []
    with _open(Path(path)) as image:
        for frame in ImageSequence.Iterator(image):
            frame.load()
            durations.append(frame_seconds(frame.info.get("duration")))
    return durations


def frame_seconds(duration_ms: float | None) -> float:
    """How long an animation frame is shown, in seconds, from its ``duration`` in ms (see :func:`image_frames`)."""
    if duration_ms is None:
        return PAGE_SECONDS
    return (SHORT_FRAME_MS if duration_ms < MIN_FRAME_MS else float(duration_ms)) / 1000.0


def _to_bgr(image) -> np.ndarray:
    """A Pillow image as ``(H, W, 3) uint8`` BGR (palette, grayscale and alpha flattened)."""
    rgb = np.asarray(image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def is_truncated(data: bytes) -> bool:
    """Whether a JPEG or PNG file stops before its end marker (False for other formats)."""
    if data[:2] == b"\xff\xd8":
        return not _jpeg_complete(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return not _png_complete(data)
    return False


def _jpeg_complete(data: bytes) -> bool:
    """Walk the JPEG's segments and scans until the end-of-image marker.

    Walking (rather than looking at the last two bytes) accepts files with data
    appended after the image, as phones write (motion photos, trailers).
    """
    if data.rstrip(b"\x00")[-2:] == b"\xff\xd9":
        return True
    pos, end = 2, len(data)
    while pos + 2 <= end:
        if data[pos] != 0xFF:
            return True  # not a structure we can follow: leave the verdict to the decoder
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return True
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if pos + 4 > end:
            return False
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # entropy-coded data runs to the next marker other than FF00 or a restart
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= end:
                    return False
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    pos += 2
                elif following == 0xFF:
                    pos += 1
                else:
                    break
    return False


def _png_complete(data: bytes) -> bool:
    """Walk the PNG's chunks (length, type, data, CRC) until IEND."""
    pos, end = 8, len(data)
    while pos + 8 <= end:
        if data[pos + 4:pos + 8] == b"IEND":
            return True
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    return False
