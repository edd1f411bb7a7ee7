"""Read one image file and say plainly why it cannot be used: unreadable or truncated.

OpenCV decodes a JPEG cut short as a half-grey picture, with only a libjpeg line
on stderr ("Premature end of JPEG file"); a PNG cut short may decode too. The
bytes tell for certain: a complete JPEG reaches its end-of-image marker (FFD9)
and a complete PNG its IEND chunk. Other formats are trusted to OpenCV.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

UNREADABLE = "cannot read it"
TRUNCATED = "truncated"


def read_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """The image as BGR, or None and why not (:data:`UNREADABLE` or :data:`TRUNCATED`)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None, UNREADABLE
    if is_truncated(data):
        return None, TRUNCATED
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)  # imread, not imdecode: it applies EXIF rotation
    if frame is None:
        return None, UNREADABLE
    return frame, None


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
