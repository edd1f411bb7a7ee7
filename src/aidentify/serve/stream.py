"""``/stream.mjpg``: the annotated feed of ``--camera`` or ``--source`` as an MJPEG stream.

One background thread owns the source (a camera, a stream URL, a video file,
an image or a folder of them) and the one live pipeline that labels it; it
keeps only the newest annotated frame as a JPEG, and every viewer is sent
each new one (``multipart/x-mixed-replace``, which browsers show in an
``<img>``). The thread works only while someone watches. A video file is
played at its own frame rate (frames are skipped when labelling is slower)
and starts again at its end when ``stream.loop`` is set.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable

import cv2
import numpy as np

from aidentify.config import ServeStream
from aidentify.inference.results import FrameResult
from aidentify.live.capture import FrameSource, open_source
from aidentify.live.draw import draw_fps
from aidentify.live.pipeline import LivePipeline

BOUNDARY = "frame"
MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
POLL_S = 0.02  # how often a viewer looks for a newer frame
IDLE_WAIT_S = 0.5  # how long the reader sleeps between checks when nobody watches


class StreamFeed:
    """The shared reader of one frame source; ``start``/``stop`` it with the server."""

    def __init__(self, open_frames: Callable[[], FrameSource], make_pipeline: Callable[[bool], LivePipeline],
                 settings: ServeStream, show_fps: bool = True):
        self._open_frames = open_frames
        self._make_pipeline = make_pipeline
        self.settings = settings
        self.show_fps = show_fps
        self.source = open_frames()  # a missing file or camera fails now, at start-up
        self.name = self.source.name
        self.serial = 0
        self.jpeg: bytes | None = None
        self.result: FrameResult | None = None
        self.error: str | None = None
        self.ended = False
        self.fps = 0.0
        self._viewers = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closing = threading.Event()  # the server is shutting down: viewers' streams end
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, camera: int | None, source: str | None, make_pipeline: Callable[[bool], LivePipeline],
             settings: ServeStream, show_fps: bool = True) -> StreamFeed:
        return cls(lambda: open_source(camera, source), make_pipeline, settings, show_fps)

    @property
    def viewers(self) -> int:
        return self._viewers

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"stream {self.name}", daemon=True)
        self._thread.start()

    def end_viewers(self) -> None:
        """End every ``/stream.mjpg`` response now (the server is stopping and waits for open responses)."""
        self._closing.set()

    def stop(self) -> None:
        self._closing.set()
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.source.close()

    def _run(self) -> None:
        try:
            self._play()
        except Exception as exc:  # a camera unplugged, a broken file: viewers are told, the server stays up
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended = True

    def _play(self) -> None:
        pipeline = self._make_pipeline(self.source.stills)
        min_step = 1.0 / self.settings.max_fps
        clock0, shown_t, last_wall = time.monotonic(), -1e9, None
        while not self._stop.is_set():
            if self._viewers == 0:
                self._wake.wait(IDLE_WAIT_S)
                self._wake.clear()
                clock0 = time.monotonic() - max(shown_t, 0.0)  # a paused file resumes where it stopped
                continue
            item = self.source.read()
            if item is None:
                if not self.settings.loop or self.source.live:
                    return
                self.source.close()
                self.source = self._open_frames()
                pipeline = self._make_pipeline(self.source.stills)
                clock0, shown_t = time.monotonic(), -1e9
                continue
            frame, t = item
            if self.source.live:
                if last_wall is not None:
                    time.sleep(max(0.0, min_step - (time.monotonic() - last_wall)))
            else:
                elapsed = time.monotonic() - clock0
                if t + 0.5 / max(self.source.fps, 1e-3) < elapsed or t < shown_t + min_step:
                    continue  # behind the file's clock, or over max_fps: skip without labelling
                if t > elapsed:
                    self._stop.wait(t - elapsed)
            shown_t = t
            self._publish(*pipeline(frame), last_wall)
            last_wall = time.monotonic()

    def _publish(self, annotated: np.ndarray, result: FrameResult, last_wall: float | None) -> None:
        now = time.monotonic()
        if last_wall is not None:
            rate = 1.0 / max(now - last_wall, 1e-6)
            self.fps = rate if self.fps == 0 else 0.8 * self.fps + 0.2 * rate
        if self.show_fps and self.fps:
            draw_fps(annotated, self.fps)
        ok, buffer = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality])
        if ok:
            with self._lock:
                self.jpeg, self.result, self.serial = buffer.tobytes(), result, self.serial + 1

    async def mjpeg(self) -> AsyncIterator[bytes]:
        """Every new annotated frame as one part of a ``multipart/x-mixed-replace`` body."""
        with self._lock:
            self._viewers += 1
        self._wake.set()
        try:
            seen = -1
            while not self._closing.is_set():
                with self._lock:
                    jpeg, serial = self.jpeg, self.serial
                if jpeg is not None and serial != seen:
                    seen = serial
                    yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                           .encode() + jpeg + b"\r\n")
                elif self.ended:
                    return
                await asyncio.sleep(POLL_S)
        finally:
            with self._lock:
                self._viewers -= 1

    def describe(self) -> dict:
        return {"source": self.name, "frames": self.serial, "viewers": self._viewers,
                "fps": round(self.fps, 1), "ended": self.ended, "error": self.error}
