"""Frame sources: a camera, a stream URL, a video file, an image, an animation or a folder.

What a file is comes from what it holds, not its name (:mod:`aidentify.imagefile`): an image of one
frame is a photo; an image of several (an animated GIF, WebP, APNG or AVIF, a multi-page TIFF) is a
short video read frame by frame at its own timing; anything else is given to the video decoder. A
folder follows the same rule file by file (:mod:`aidentify.live.folder`).

Cameras and streams are read on their own thread that keeps only the newest frame: when inference is
slower than the camera, old frames are dropped instead of queueing up (the overlay stays current).
Files are read in order, every frame, because their annotated copy and timeline must be complete, and
each frame is timed by the decoder's presentation timestamp (media time), so a variable-frame-rate
video gets its true times. An ``http(s)://`` URL whose container declares a frame count is a finite
file and is read like one; an ``http(s)://`` URL without one, and any other URL (``rtsp://``,
``rtmp://``, ``udp://``…), is a stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.imagefile import (IMAGE_SUFFIXES, TRUNCATED, UNREADABLE, frame_durations, image_frames, probe_image,
                                 read_image)
from aidentify.live.folder import PHOTO, VIDEO_SUFFIXES, frames_hint, list_folder
from aidentify.native_logs import native_stderr_silenced, opencv_log_silenced

# OpenCV takes a camera index as a C int; above this no system numbers its cameras (V4L2 allows 64,
# Media Foundation and AVFoundation list fewer), and a larger number is a typo, not a device.
MAX_CAMERA_INDEX = 9999
FIRST_FRAME_TIMEOUT_S = 10.0
SkipFn = Callable[[Path, str], None]  # (file, why) for an image a folder source skips


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
    folder: bool = False  # a folder: rows name their file, each file starts afresh
    new_file: bool = False  # the frame last read is the first of its file (folder sources)
    current_still: bool = False  # the frame last read is a photo (folder sources)

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

    A frame's time is its presentation timestamp from the decoder (``CAP_PROP_POS_MSEC`` after
    ``read``), so a variable-frame-rate video keeps its true times. Where the decoder gives none (a
    timestamp that does not move forward), the frame is placed one nominal frame after the previous one.
    """

    def __init__(self, path: Path | str, capture: cv2.VideoCapture | None = None):
        self.name = str(path)
        if capture is None:
            with native_stderr_silenced():  # FFmpeg's own lines ("moov atom not found"): we say it in one
                capture = cv2.VideoCapture(str(path))
        self._capture = capture
        if not self._capture.isOpened():
            self._capture.release()
            raise DataError(f"cannot read video {path}: {_why_no_video(str(path))}")
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


def _why_no_video(name: str) -> str:
    """Why FFmpeg (through OpenCV) opened nothing: a damaged file where the name says video, else the format."""
    if Path(name.split("?")[0]).suffix.lower() in VIDEO_SUFFIXES:
        return ("it is truncated or damaged, or its codec is one OpenCV's FFmpeg lacks "
                "(check that it plays; re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)")
    return "not a video OpenCV can decode (try .mp4 or .avi)"


class ImageSource(FrameSource):
    """One photo (an image of one frame) as a single frame at time 0; it must be readable."""

    stills = True

    def __init__(self, path: Path):
        self.name = str(path)
        self._path = Path(path)
        self.fps = 1.0
        self.frame_count = 1
        self._done = False

    def read(self) -> tuple[np.ndarray, float] | None:
        if self._done:
            return None
        self._done = True
        frame, problem = read_image(self._path)
        if problem is not None:
            why = "the file is truncated" if problem == TRUNCATED else "not an image this version can decode"
            raise DataError(f"cannot read image {self._path}: {why}")
        self.current = self._path
        return frame, 0.0


class AnimationSource(FrameSource):
    """Every frame of a multi-frame image (animated GIF/WebP/APNG/AVIF, multi-page TIFF) at its own time.

    A frame's time is the sum of the durations of the frames before it (see
    :func:`aidentify.imagefile.image_frames`); ``fps`` is the average rate, which the
    annotated video is written at (each frame held for its own duration).
    """

    def __init__(self, path: Path):
        self.name = str(path)
        self.current = Path(path)
        try:
            durations = frame_durations(path)
        except Exception as exc:  # Pillow raises OSError, EOFError, SyntaxError... for a damaged file
            raise DataError(f"cannot read {path}: {exc}") from None
        self.frame_count = len(durations)
        total = sum(durations)
        self.fps = self.frame_count / total if total > 0 else 1.0
        self._frames = image_frames(path)
        self._index = 0

    def read(self) -> tuple[np.ndarray, float] | None:
        try:
            item = next(self._frames)
        except StopIteration:
            return None
        except Exception as exc:  # a frame Pillow cannot decode
            raise DataError(f"cannot read frame {self._index + 1} of {self.name}: {exc}") from None
        self._index += 1
        return item

    def close(self) -> None:
        self._frames.close()


class LatestFrameSource(FrameSource):
    """A camera or stream read on a background thread that keeps only the newest frame."""

    live = True

    def __init__(self, capture: cv2.VideoCapture, name: str):
        self.name = name
        self._capture = capture
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._lock = threading.Condition()
        self._frame: np.ndarray | None = None
        self._serial = self._taken = 0  # frames read from the device, and handed out
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


class FolderSource(FrameSource):
    """The readable files of a folder, in name order, each read as it would be alone
    (what is read and what is left out: :mod:`aidentify.live.folder`). A folder of photos only is
    ``stills``, each photo at its place among those read (0, 1, 2... s). Otherwise each file's
    first frame sets ``new_file`` (the player starts new tracks) and frames keep their file's media
    time (a photo's is 0). Unreadable files are skipped, told to ``on_skip``, kept in ``skipped``."""

    folder = True

    def __init__(self, path: Path, on_skip: SkipFn | None = None):
        self.name = str(path)
        self._on_skip = on_skip
        self.skipped = []
        items, left_out = list_folder(Path(path))
        for file, why in left_out:
            self._skip(file, why)
        if not items:
            raise DataError(f"{path} contains no images or videos live can read"
                            + (f" ({len(left_out)} other entries left out)" if left_out else ""))
        self.stills = all(kind == PHOTO for _, kind in items)
        self.frame_count = sum(frames_hint(file, kind) for file, kind in items)
        self._items = items
        self._frames = self._all_frames()
        self._sub: FrameSource | None = None
        self._photos = 0

    @property
    def fps(self) -> float:  # the file being read: each video is written at its own rate
        return self._sub.fps if self._sub is not None else 1.0

    def _skip(self, file: Path, why: str) -> None:
        self.skipped.append((file, why))
        if self._on_skip:
            self._on_skip(file, why)

    def _all_frames(self) -> Iterator[tuple[np.ndarray, float]]:
        for file, kind in self._items:
            if kind == PHOTO:
                frame, problem = read_image(file)
                if problem is not None:
                    self._skip(file, problem)
                    continue
                self.current, self.new_file, self.current_still, self._sub = file, True, True, None
                self._photos += 1
                yield frame, float(self._photos - 1) if self.stills else 0.0
                continue
            yield from self._moving_frames(file)

    def _moving_frames(self, file: Path) -> Iterator[tuple[np.ndarray, float]]:
        """Every frame of one video or animation; one that cannot be opened or read is skipped."""
        try:
            self._sub = open_file(file)
        except DataError:
            self._skip(file, UNREADABLE)
            return
        try:
            first = True
            while True:
                try:
                    item = self._sub.read()
                except DataError:
                    if first:
                        self._skip(file, UNREADABLE)
                    return  # a video broken part-way keeps the frames it gave
                if item is None:
                    return
                self.current, self.new_file, self.current_still, first = file, first, False, False
                yield item
        finally:
            self._sub.close()

    def read(self) -> tuple[np.ndarray, float] | None:
        item = next(self._frames, None)
        if item is None and self.current is None and self.skipped:
            raise DataError(f"none of the {len(self.skipped)} files in {self.name} could be read")
        return item

    def close(self) -> None:
        self._frames.close()


def source_kind(camera: int | None = None, source: str | None = None) -> str:
    """What a source is: "camera", "stream", "folder", "image" or "video".

    A file is judged by what it holds (its header): an image of one frame is "image", an animation
    or anything else "video". A path not there yet is judged by its suffix (``open_source`` says so).
    """
    if camera is not None or source is None:
        return "camera"
    if "://" in source:
        return "stream"
    path = Path(source)
    if path.is_dir():
        return "folder"
    if path.is_file():
        kind = probe_image(path)
        if kind is not None:
            return "video" if kind.animated else "image"
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


def check_camera_index(camera: int) -> int:
    """``camera`` when it can name a camera (0 to :data:`MAX_CAMERA_INDEX`), else ``DataError``.

    OpenCV segfaults on some negative indices and raises its overload error on one beyond a C int,
    so both are refused before OpenCV sees them.
    """
    if not 0 <= camera <= MAX_CAMERA_INDEX:
        raise DataError(f"--camera {camera}: a camera index is a whole number from 0 to {MAX_CAMERA_INDEX} "
                        "(0 is usually the built-in webcam)")
    return camera


def is_finite_file(url: str, capture: cv2.VideoCapture) -> bool:
    """Whether an opened URL is a finite video file: ``http(s)://`` with a known frame count. Other
    schemes (``rtsp://``, ``udp://``…) and ``http(s)://`` feeds without one (MJPEG, live HLS) are streams."""
    if url.split("://", 1)[0].lower() not in ("http", "https"):
        return False
    return (capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) > 0


def open_source(camera: int | None = None, source: str | None = None,
                on_skip: SkipFn | None = None) -> FrameSource:
    """Open exactly one of a camera index or a source path/URL (see :func:`source_kind`).

    ``on_skip(file, why)`` hears of each file a folder source leaves out. Raises ``DataError`` for a
    camera index out of range, a camera or stream that does not open, a missing path, or a file
    nothing here can read.
    """
    if (camera is None) == (source is None):
        raise DataError("give either --camera INDEX or --source PATH_OR_URL")
    if camera is not None:
        check_camera_index(camera)
        with opencv_log_silenced():
            capture = open_camera_device(camera)
        if not capture.isOpened():
            capture.release()
            raise DataError(f"cannot open camera {camera}: no camera with that index, or it is in use; "
                            "try another --camera index or --source VIDEO")
        return LatestFrameSource(capture, f"camera {camera}")
    if "://" in source:
        with opencv_log_silenced():
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
    if path.is_dir():
        return FolderSource(path, on_skip)
    return open_file(path)


def open_file(path: Path) -> FrameSource:
    """The source for one file, by what it holds: a photo, an animation or a video."""
    kind = probe_image(path)
    if kind is not None and kind.animated:
        return AnimationSource(path)
    if kind is not None or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoFileSource(path)
