"""Frame sources: a camera, a stream URL, a video file, an image or a folder of images.

Cameras and streams are read on their own thread that keeps only the newest
frame: when inference is slower than the camera, old frames are dropped
instead of queueing up (the overlay stays current). Files are read in order,
every frame, because their annotated copy and timeline must be complete, and
each frame is timed by the decoder's presentation timestamp (media time), so a
variable-frame-rate video gets its true times. An ``http(s)://`` URL whose
container declares a frame count is a finite file and is read like one; an
``http(s)://`` URL without one, and any other URL (``rtsp://``, ``rtmp://``,
``udp://``…), is a stream.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.files import is_junk_name
from aidentify.imagefile import TRUNCATED, read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
FIRST_FRAME_TIMEOUT_S = 10.0
SkipFn = Callable[[Path, str], None]  # (file, why) for an image a folder source skips


@contextlib.contextmanager
def _opencv_quiet() -> Iterator[None]:
    """Silence OpenCV's own log while probing a device: a missing camera prints a dozen
    backend warnings before ``isOpened()`` says False, and we report it in one line."""
    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def open_camera_device(index: int) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` for a camera index (a seam the tests replace with a fake camera)."""
    return cv2.VideoCapture(index)


class FrameSource:
    """Frames with their time in seconds; ``live`` sources drop frames, files do not."""

    name: str = ""
    fps: float = 0.0
    live: bool = False
    stills: bool = False  # independent photos, not a video: detect on each, no following or smoothing
    frame_count: int = 0  # frames in a file source, 0 when unknown (cameras, streams)
    current: Path | None = None  # the image file of the frame last read (image sources)
    skipped: tuple[tuple[Path, str], ...] | list[tuple[Path, str]] = ()  # (file, why) left out

    @property
    def current_name(self) -> str:
        """For stills: the file name of the photo read last ("" for other sources)."""
        return self.current.name if self.current is not None else ""

    def read(self) -> tuple[np.ndarray, float] | None:
        """The next frame and its time, or None at the end."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoFileSource(FrameSource):
    """Every frame of a video file (a path, or a finite file behind an ``http(s)://`` URL).

    A frame's time is its presentation timestamp from the decoder
    (``CAP_PROP_POS_MSEC`` after ``read``), so a variable-frame-rate video keeps its
    true times. Where the decoder gives none (a timestamp that does not move forward),
    the frame is placed one nominal frame after the previous one.
    """

    def __init__(self, path: Path | str, capture: cv2.VideoCapture | None = None):
        self.name = str(path)
        self._capture = capture if capture is not None else cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            self._capture.release()
            raise DataError(f"cannot read video {path}: not a video OpenCV can decode (try .mp4 or .avi)")
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 0 < self.fps < 1000:
            self.fps = 30.0
        self.frame_count = max(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        self._index = 0
        self._last_t: float | None = None

    def read(self) -> tuple[np.ndarray, float] | None:
        ok, frame = self._capture.read()
        if not ok:
            if self._index == 0:
                raise DataError(f"cannot read video {self.name}: no frame could be decoded")
            return None
        t = float(self._capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
        if self._last_t is not None and not t > self._last_t:
            t = self._last_t + 1.0 / self.fps
        self._last_t = t
        self._index += 1
        return frame, t

    def close(self) -> None:
        self._capture.release()


class ImageSource(FrameSource):
    """One image, or every image of a folder in name order, as frames one second apart.

    A photo's time is its place among the photos read (0, 1, 2... seconds), so it
    equals its frame number: a skipped file takes no place.

    In a folder, system clutter (``._*``, ``.DS_Store``, ``__MACOSX/``, ``Thumbs.db``) is
    not looked at, and an unreadable or truncated image is skipped, reported through
    ``on_skip`` and kept in ``skipped``; one image given on its own must be readable.
    """

    stills = True

    def __init__(self, path: Path, on_skip: SkipFn | None = None):
        self.name = str(path)
        self.folder = path.is_dir()
        if self.folder:
            self._files = sorted(p for p in path.iterdir() if not is_junk_name(p.name)
                                 and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not self._files:
                raise DataError(f"{path} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        else:
            self._files = [path]
        self.fps = 1.0
        self.frame_count = len(self._files)
        self.skipped = []
        self._on_skip = on_skip
        self._index = 0
        self._read = 0  # photos returned so far

    def read(self) -> tuple[np.ndarray, float] | None:
        while self._index < len(self._files):
            path = self._files[self._index]
            self._index += 1
            frame, problem = read_image(path)
            if problem is None:
                self.current = path
                self._read += 1
                return frame, float(self._read - 1)
            if not self.folder:
                why = "the file is truncated" if problem == TRUNCATED else "not an image OpenCV can decode"
                raise DataError(f"cannot read image {path}: {why}")
            self.skipped.append((path, problem))
            if self._on_skip:
                self._on_skip(path, problem)
        if self.current is None and self.skipped:
            raise DataError(f"none of the {len(self.skipped)} images in {self.name} could be read")
        return None


class LatestFrameSource(FrameSource):
    """A camera or stream read on a background thread that keeps only the newest frame."""

    live = True

    def __init__(self, capture: cv2.VideoCapture, name: str):
        self.name = name
        self._capture = capture
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._lock = threading.Condition()
        self._frame: np.ndarray | None = None
        self._serial = 0
        self._taken = 0
        self._ended = False
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._reader, name=f"capture {name}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        while not self._stop.is_set():
            ok, frame = self._capture.read()
            with self._lock:
                if not ok:
                    self._ended = True
                    self._lock.notify_all()
                    return
                self._frame, self._serial = frame, self._serial + 1
                self._lock.notify_all()

    def read(self) -> tuple[np.ndarray, float] | None:
        with self._lock:
            ready = self._lock.wait_for(lambda: self._serial > self._taken or self._ended,
                                        timeout=FIRST_FRAME_TIMEOUT_S)
            if self._serial > self._taken:
                self._taken = self._serial
                return self._frame, time.monotonic() - self._start
            if not ready and self._serial == 0:
                raise DataError(f"{self.name} opened but sent no frame within {FIRST_FRAME_TIMEOUT_S:.0f} s")
            return None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._capture.release()


def source_kind(camera: int | None = None, source: str | None = None) -> str:
    """What a source is: "camera", "stream", "folder", "image" or "video" (checks nothing else)."""
    if camera is not None:
        return "camera"
    if source is None:
        return "camera"
    if "://" in source:
        return "stream"
    path = Path(source)
    if path.is_dir():
        return "folder"
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


def is_finite_file(url: str, capture: cv2.VideoCapture) -> bool:
    """Whether an opened URL is a finite video file: ``http(s)://`` with a known frame count.

    Other schemes (``rtsp://``, ``rtmp://``, ``udp://``…) are streams, and so is an
    ``http(s)://`` feed whose container declares no frame count (MJPEG, a live HLS playlist).
    """
    if url.split("://", 1)[0].lower() not in ("http", "https"):
        return False
    return (capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) > 0


def open_source(camera: int | None = None, source: str | None = None,
                on_skip: SkipFn | None = None) -> FrameSource:
    """Open exactly one of a camera index or a source path/URL."""
    if (camera is None) == (source is None):
        raise DataError("give either --camera INDEX or --source PATH_OR_URL")
    if camera is not None:
        with _opencv_quiet():
            capture = open_camera_device(camera)
        if not capture.isOpened():
            capture.release()
            raise DataError(f"cannot open camera {camera}: no camera with that index, or it is in use; "
                            "try another --camera index or --source VIDEO")
        return LatestFrameSource(capture, f"camera {camera}")
    if "://" in source:
        with _opencv_quiet():
            capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            capture.release()
            raise DataError(f"cannot open stream {source}; check the URL and that the stream is up")
        if is_finite_file(source, capture):
            return VideoFileSource(source, capture)
        return LatestFrameSource(capture, source)
    path = Path(source)
    if not path.exists():
        raise DataError(f"--source {source}: no such file or folder")
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path, on_skip)
    return VideoFileSource(path)
