"""What ``live --output`` writes, fitted to the input: a video, an image or a folder of images.

A video source (file, camera, stream) writes an annotated video (.mp4 or .avi);
one image writes one annotated image in the format its suffix names; a folder
of images writes a folder of annotated images under the same names and
formats. The choice is checked before any work, so a mismatch is one error
line. OpenCV's video writer is constant-rate: a video file source is written at its
own (average) frame rate, each frame at its media time, so a frame the source
holds longer is repeated until the next is due. No frame is dropped: in a burst
faster than that rate the video runs a few frames late and catches up at the
next hold. A constant-rate file gives every frame once. A video is written under a
temporary name and renamed when the run ends
(an error discards it); each image is written atomically as soon as it is done,
so a stopped or failed run keeps every image it finished.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.files import PendingFile, atomic_write_bytes
from aidentify.live.capture import IMAGE_SUFFIXES

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".avi": "MJPG"}
IMAGE_NAMES = ".jpg, .png, .webp or .bmp"


def plan_output(output: Path, kind: str, source: str | None = None) -> VideoOutput | ImageOutput | FolderOutput:
    """The writer for ``--output`` given the source kind (see ``capture.source_kind``).

    Nothing is written yet; a mismatch raises a :class:`DataError` that says what to give.
    """
    output = Path(output)
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


def _write_image(path: Path, frame: np.ndarray) -> None:
    """Encode by the suffix of ``path`` and write it atomically, saying the real cause of a failure."""
    try:
        ok, encoded = cv2.imencode(path.suffix.lower(), frame)
    except cv2.error:
        ok = False
    if not ok:
        raise DataError(f"cannot write {path}: OpenCV cannot encode {path.suffix} images here; "
                        f"use {IMAGE_NAMES}")
    try:
        atomic_write_bytes(path, encoded.tobytes())
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None


class ImageOutput:
    """One annotated image, written when its frame is done."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.frames = 0

    def write(self, frame: np.ndarray, fps: float, name: Path | None = None,
              time_s: float | None = None) -> None:
        _write_image(self.path, frame)
        self.frames += 1

    def release(self) -> None:
        """Nothing open between frames."""

    def commit(self) -> Path:
        return self.path

    def discard(self) -> None:
        """Finished images are complete files: they stay."""


class FolderOutput(ImageOutput):
    """Annotated images in a folder, each under its source image's name and format."""

    def write(self, frame: np.ndarray, fps: float, name: Path | None = None,
              time_s: float | None = None) -> None:
        if name is None:
            raise DataError("a folder output needs the name of each image")
        _write_image(self.path / Path(name).name, frame)
        self.frames += 1


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
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._fps = 0.0
        self._t0: float | None = None
        self._last: np.ndarray | None = None
        self.frames = 0  # frames in the video, repeats included

    def write(self, frame: np.ndarray, fps: float, name: Path | None = None,
              time_s: float | None = None) -> None:
        if self._writer is None:
            self.pending = PendingFile(self.path)
            self._size = (frame.shape[1], frame.shape[0])
            self._fps = fps
            fourcc = cv2.VideoWriter_fourcc(*FOURCC_BY_SUFFIX[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.pending.path), fourcc, fps, self._size)
            if not self._writer.isOpened():
                raise DataError(f"cannot write video {self.path}: OpenCV has no encoder for it here")
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

    def release(self) -> None:
        if self._writer is not None:
            self._writer.release()

    def commit(self) -> Path:
        return self.pending.commit()

    def discard(self) -> None:
        if self.pending is not None:
            self.pending.discard()
