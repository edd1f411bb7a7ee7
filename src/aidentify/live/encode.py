"""Video encoders for ``live --output``: H.264 through PyAV where its FFmpeg has libx264, else OpenCV.

OpenCV's pip wheels write MPEG-4 Part 2 (``mp4v``) into ``.mp4``: about 2 Mbit/s for
a 640x480 overlay, 165 MB for a 10-minute phone video. Their FFmpeg has no H.264
encoder (``avc1`` writers do not open). PyAV's wheels bundle an FFmpeg built with
libx264, which writes the same frames several times smaller at CRF 23, FFmpeg's
default quality (measured in docs/benchmarks.md, "Annotated video size").
:func:`h264_available` checks for it at run time; without it ``.mp4`` falls back to
``mp4v``. ``.avi`` is Motion-JPEG through OpenCV, as before.

Both encoders take ``(H, W, 3) uint8`` BGR frames of one size, at a constant rate.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".avi": "MJPG"}  # OpenCV's codec per container
H264_CRF = 23  # x264's default constant-rate factor: its "visually transparent for most content" point
H264_PRESET = "veryfast"  # x264 speed preset: see docs/benchmarks.md for its cost per frame against mp4v


@functools.cache
def h264_available() -> bool:
    """Whether PyAV is installed and its FFmpeg has the libx264 encoder."""
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


def codec_for(path: Path) -> str:
    """The codec ``path``'s suffix gets here: ``"h264"`` (PyAV), ``"mp4v"`` or ``"MJPG"`` (OpenCV)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".mp4" and h264_available():
        return "h264"
    return FOURCC_BY_SUFFIX[suffix]


def encoder_name(codec: str) -> str:
    """How messages name the encoder of ``codec``: ``"OpenCV's mp4v encoder"``, ``"PyAV's libx264 encoder"``."""
    return "PyAV's libx264 encoder" if codec == "h264" else f"OpenCV's {codec} encoder"


class OpenCvEncoder:
    """OpenCV's ``VideoWriter`` (``mp4v`` or ``MJPG``)."""

    def __init__(self, path: Path, codec: str, fps: float, size: tuple[int, int]):
        self.codec = codec
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)

    def is_opened(self) -> bool:
        return self._writer.isOpened()

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)

    def release(self) -> None:
        self._writer.release()


class H264Encoder:
    """libx264 through PyAV into an MP4, ``yuv420p`` (what every player decodes).

    4:2:0 chroma needs an even width and height: an odd frame gets one pixel column
    or row repeated at its right or bottom edge. ``container`` is given explicitly
    (``format="mp4"``) because the path is a temporary name.
    """

    codec = "h264"

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        import av

        self._size = size
        self._even = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        self._container = None
        try:
            self._container = av.open(str(path), mode="w", format="mp4")
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = self._even
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(H264_CRF), "preset": H264_PRESET}
        except (OSError, ValueError, av.FFmpegError):
            self.release()
            self._container = None

    def is_opened(self) -> bool:
        return self._container is not None

    def write(self, frame: np.ndarray) -> None:
        import av

        if self._even != self._size:
            frame = cv2.copyMakeBorder(frame, 0, self._even[1] - self._size[1], 0, self._even[0] - self._size[0],
                                       cv2.BORDER_REPLICATE)
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
            self._container.mux(packet)

    def release(self) -> None:
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            if hasattr(self, "_stream"):
                for packet in self._stream.encode():  # flush the frames x264 holds back
                    container.mux(packet)
        finally:
            container.close()


def open_encoder(path: Path, codec: str, fps: float, size: tuple[int, int]) -> OpenCvEncoder | H264Encoder:
    """An encoder for ``codec`` (see :func:`codec_for`) writing ``size`` = (width, height) frames at ``fps``."""
    if codec == "h264":
        return H264Encoder(path, fps, size)
    return OpenCvEncoder(path, codec, fps, size)
