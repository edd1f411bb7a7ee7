"""What ``live --output`` writes, fitted to the input: a video, an image or a folder of images.

A video source (file, camera, stream) writes an annotated video (.mp4 or .avi);
one image writes one annotated image in the format its suffix names; a folder
of images writes a folder of annotated images under the same names and
formats. The choice is checked before any work, so a mismatch is one error
line, and so is a folder that cannot be written (a path through a file, no
permission, a full disk). A writer that fails later says its real cause: a
frame too small for the codec, a full disk, or no encoder. A ``.mp4`` is H.264 where
PyAV's FFmpeg has libx264, else OpenCV's ``mp4v`` (:mod:`aidentify.live.encode`).
A folder holding videos writes each video as ``<name>.mp4`` in the output folder.
The video writer is constant-rate: a video file source is written at its
own (average) frame rate, each frame at its media time, so a frame the source
holds longer is repeated until the next is due. No frame is dropped: in a burst
faster than that rate the video runs a few frames late and catches up at the
next hold. A constant-rate file gives every frame once. A video is written under a
temporary name and renamed when the run ends
(an error discards it); each image is written atomically as soon as it is done,
so a stopped or failed run keeps every image it finished.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.files import PendingFile, atomic_write_bytes, check_output_folder, os_error_cause, unwritable_cause
from aidentify.imagefile import IMAGE_SUFFIXES
from aidentify.live.encode import FOURCC_BY_SUFFIX, codec_for, encoder_name, open_encoder
IMAGE_NAMES = ".jpg, .png, .webp or .bmp"
PROBE_SIZE = (64, 48)  # a frame size every encoder takes: what a failing size is compared with


def plan_output(output: Path, kind: str, source: str | None = None) -> VideoOutput | ImageOutput | FolderOutput:
    """The writer for ``--output`` given the source kind (see ``capture.source_kind``).

    Nothing is written yet; a mismatch raises a :class:`DataError` that says what to give.
    """
    output = Path(output)
    writer = _writer_for(output, kind, source)
    check_writable(output if isinstance(writer, FolderOutput) else output.parent, output)
    return writer


def _writer_for(output: Path, kind: str, source: str | None) -> VideoOutput | ImageOutput | FolderOutput:
    suffix = output.suffix.lower()
    if kind in ("camera", "stream", "video"):
        if suffix not in FOURCC_BY_SUFFIX:
            raise DataError(f"--output {output}: a video source writes an annotated video; "
                            "use a .mp4 or .avi file name")
        return VideoOutput(output)
    if kind == "image":
        if output.is_dir():
            writer: ImageOutput | FolderOutput = FolderOutput(output)
        elif suffix in IMAGE_SUFFIXES:
            writer = ImageOutput(output)
        else:
            raise DataError(f"--output {output}: an image source writes an annotated image; "
                            f"use an image file name ({IMAGE_NAMES})")
        target = output / Path(source).name if output.is_dir() else output
        if source and target.resolve() == Path(source).resolve():
            raise DataError(f"--output {output} would overwrite the source image; give another name")
        return writer
    if output.exists() and not output.is_dir():
        raise DataError(f"--output {output}: a folder of images writes a folder of annotated images, "
                        "and this is a file; give a folder name")
    if not output.is_dir() and (suffix in FOURCC_BY_SUFFIX or suffix in IMAGE_SUFFIXES):
        raise DataError(f"--output {output}: a folder of images writes a folder of annotated images "
                        f"with the same names; give a folder name (no {suffix})")
    if source and output.resolve() == Path(source).resolve():
        raise DataError(f"--output {output} is the source folder and would overwrite its images; "
                        "give another folder")
    return FolderOutput(output)


def check_writable(folder: Path, output: Path) -> None:
    """Refuse ``--output`` before any work when ``folder`` cannot take files."""
    check_output_folder(folder, f"--output {output}")


def _size(frame: np.ndarray) -> str:
    return f"{frame.shape[1]}x{frame.shape[0]}"


def _write_image(path: Path, frame: np.ndarray) -> None:
    """Encode by the suffix of ``path`` and write it atomically, saying the real cause of a failure."""
    suffix = path.suffix.lower()
    encoded = _encode(suffix, frame)
    if encoded is None:
        probe = np.zeros((PROBE_SIZE[1], PROBE_SIZE[0], 3), np.uint8)
        if _encode(suffix, probe) is not None:
            raise DataError(f"cannot write {path}: OpenCV's {suffix} encoder does not take a "
                            f"{_size(frame)} image; use another format ({IMAGE_NAMES})")
        raise DataError(f"cannot write {path}: OpenCV has no {suffix} encoder here; use {IMAGE_NAMES}")
    try:
        atomic_write_bytes(path, encoded.tobytes())
    except OSError as exc:
        raise DataError(f"cannot write {path}: {os_error_cause(exc, path.parent)}") from None


def _encode(suffix: str, frame: np.ndarray) -> np.ndarray | None:
    try:
        ok, encoded = cv2.imencode(suffix, frame)
    except cv2.error:
        return None
    return encoded if ok else None


class ImageOutput:
    """One annotated image, written when its frame is done."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.frames = 0

    def write(self, frame: np.ndarray, fps: float, name: Path | None = None,
              time_s: float | None = None, video: bool = False) -> None:
        _write_image(self.path, frame)
        self.frames += 1

    def release(self) -> None:
        """Nothing open between frames."""

    def commit(self) -> Path:
        return self.path

    def discard(self) -> None:
        """Finished images are complete files: they stay."""


class FolderOutput(ImageOutput):
    """Annotated images in a folder, each under its source image's name and format; a video or
    animation of the source folder becomes a video of the same stem there (``clip.mov`` ->
    ``clip.mp4``; an ``.avi`` stays ``.avi``), a :class:`VideoOutput` each, renamed into place
    when the next file starts or the run ends."""

    def __init__(self, path: Path):
        super().__init__(path)
        self._video: VideoOutput | None = None
        self._video_name: Path | None = None
        self.videos: list[Path] = []

    def write(self, frame: np.ndarray, fps: float, name: Path | None = None,
              time_s: float | None = None, video: bool = False) -> None:
        if name is None:
            raise DataError("a folder output needs the name of each image")
        if self._video is not None and Path(name) != self._video_name:
            self._finish_video()
        if not video:
            _write_image(self.path / Path(name).name, frame)
        else:
            if self._video is None:
                self._video, self._video_name = VideoOutput(self.path / video_name(Path(name))), Path(name)
            self._video.write(frame, fps, time_s=time_s)
        self.frames += 1

    def _finish_video(self) -> None:
        video, self._video = self._video, None
        video.release()
        if video.frames:
            self.videos.append(video.commit())
        else:
            video.discard()

    def release(self) -> None:
        if self._video is not None:
            self._video.release()

    def commit(self) -> Path:
        if self._video is not None:
            self._finish_video()
        return self.path

    def discard(self) -> None:
        """Finished images and videos stay; the video being written is discarded."""
        if self._video is not None:
            self._video.discard()
            self._video = None


def video_name(source: Path) -> str:
    """The annotated video's name for a video or animation of a source folder: its stem, ``.mp4``
    (``.avi`` for an ``.avi``, the container OpenCV writes Motion-JPEG in)."""
    return f"{source.stem}{'.avi' if source.suffix.lower() == '.avi' else '.mp4'}"


def _video_writer_opens(path: Path, codec: str, fps: float, size: tuple[int, int]) -> bool:
    """Whether a writer for ``codec`` opens at ``size`` in ``path``'s folder (the probe file is removed)."""
    probe = path.with_name(f".aidentify-probe-{os.getpid()}{path.suffix}")
    writer = open_encoder(probe, codec, fps or 30.0, size)
    opened = writer.is_opened()
    writer.release()
    with contextlib.suppress(FileNotFoundError):
        probe.unlink()
    return opened


class VideoOutput:
    """An annotated video written under a temporary name, sized by its first frame.

    Given each frame's media time, the writer's constant-rate grid follows it: the
    previous frame is repeated until this one is due, and a frame that is due before a
    free slot (a burst) goes in the next one, so none is dropped. Without times, one
    frame each.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.pending: PendingFile | None = None
        self._writer = None  # the encoder (aidentify.live.encode), opened by the first frame
        self._size: tuple[int, int] | None = None
        self._fps = 0.0
        self._t0: float | None = None
        self._last: np.ndarray | None = None
        self.frames = 0  # frames in the video, repeats included

    def write(self, frame: np.ndarray, fps: float, name: Path | None = None,
              time_s: float | None = None, video: bool = True) -> None:
        if self._writer is None:
            self.pending = PendingFile(self.path)
            self._size = (frame.shape[1], frame.shape[0])
            self._fps = fps
            self.codec = codec_for(self.path)
            self._writer = open_encoder(self.pending.path, self.codec, fps, self._size)
            if not self._writer.is_opened():
                raise DataError(f"cannot write video {self.path}: {self._why_not_opened(fps)}")
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        if time_s is not None:
            if self._t0 is None:
                self._t0 = time_s
            due = round((time_s - self._t0) * self._fps)
            while self._last is not None and self.frames < due:
                self._writer.write(self._last)
                self.frames += 1
            self._last = frame.copy()  # the window draws on the frame after it is written
        self._writer.write(frame)
        self.frames += 1

    def _why_not_opened(self, fps: float) -> str:
        """Why OpenCV's writer did not open: the folder, the frame size, or no encoder at all."""
        suffix = self.path.suffix.lower()
        codec, other = self.codec, ".avi" if suffix == ".mp4" else ".mp4"
        cause = unwritable_cause(self.path.parent)
        if cause:
            return cause
        if self._size != PROBE_SIZE and _video_writer_opens(self.path, codec, fps, PROBE_SIZE):
            width, height = self._size
            fit = "small" if width * height < PROBE_SIZE[0] * PROBE_SIZE[1] else "large"
            return (f"frames of {width}x{height} are too {fit} for {encoder_name(codec)} ({suffix}); "
                    f"try {other}, or a {'larger' if fit == 'small' else 'smaller'} input")
        return f"{encoder_name(codec).replace(' encoder', '')} cannot write {suffix} here; try {other}" if codec == "h264" \
            else f"OpenCV has no {codec} encoder for {suffix} here; try {other}"

    def release(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def commit(self) -> Path:
        """Rename the finished video into place; an empty or vanished file is an error, not a video."""
        written = self.pending.path
        if not written.is_file() or written.stat().st_size == 0:
            self.discard()
            cause = unwritable_cause(self.path.parent) or "the encoder wrote nothing"
            raise DataError(f"cannot write video {self.path}: {cause}")
        return self.pending.commit()

    def discard(self) -> None:
        if self.pending is not None:
            self.pending.discard()
