"""The emotion timeline: one CSV row per face per frame, and a per-face summary.

Rows for frames without a face are written too (with empty face columns), so
the CSV accounts for every processed frame and gaps are visible. Where a run
reads several files (photos, a folder), a ``file`` column names each row's file.
The chart is drawn from the summary by :mod:`aidentify.live.chart`.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from aidentify.files import PendingFile
from aidentify.inference.results import FrameResult


def timeline_columns(classes: list[str], files: bool = False) -> list[str]:
    """The CSV header; photos and folders get a ``file`` column after ``frame`` (each row names its file)."""
    where = ["time_s", "frame", *(["file"] if files else [])]
    return [*where, "track_id", "x", "y", "w", "h", *[f"p_{c}" for c in classes], "label", "confidence"]


class TimelineWriter:
    """Streams rows to a temporary CSV that becomes ``path`` on :meth:`commit`."""

    def __init__(self, path: Path, classes: list[str], files: bool = False):
        self.classes = classes
        self.files = files
        self._pending = PendingFile(path)
        self._handle: TextIO = open(self._pending.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._handle)
        self._csv.writerow(timeline_columns(classes, files))
        self.rows = 0

    def add(self, time_s: float, result: FrameResult, photo: str = "") -> None:
        """One row per face of the frame (or one empty row); ``photo`` names the file (``files`` runs)."""
        where = [f"{time_s:.3f}", result.index, *([photo] if self.files else [])]
        if not result.faces:
            self._csv.writerow(where + [""] * (len(self.classes) + 7))
            self.rows += 1
        for face in result.faces:
            self._csv.writerow([*where, face.track_id, *face.box,
                                *[f"{p:.4f}" for p in face.probs], face.label, f"{face.confidence:.4f}"])
            self.rows += 1

    def commit(self) -> Path:
        self._handle.close()
        return self._pending.commit()

    def discard(self) -> None:
        self._handle.close()
        self._pending.discard()


@dataclass
class TrackSummary:
    """One face: a track of a video, or (for photos) one face of one photo."""

    track_id: int
    first_s: float = 0.0
    last_s: float = 0.0
    photo: str = ""  # the file it was found in, for photos
    labels: Counter = field(default_factory=Counter)
    # (position in EmotionSummary.times, smoothed probabilities) for every frame the face was seen in
    samples: list[tuple[int, np.ndarray]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.samples)

    @property
    def name(self) -> str:
        return f"{self.photo} #{self.track_id}" if self.photo else f"#{self.track_id}"

    def shares(self) -> dict[str, float]:
        return {label: n / self.frames for label, n in self.labels.most_common()}


class EmotionSummary:
    """Share of frames each tracked face spent under each (smoothed) label, and its probabilities over time.

    For photos (``stills``) every photo's faces are their own rows: track ids restart
    on each photo, so ``add`` is given the photo's file name. In a folder holding
    videos (``files``) track ids restart on each file too, and faces are keyed by file.
    """

    def __init__(self, classes: list[str], stills: bool = False, files: bool = False):
        self.classes = classes
        self.stills = stills
        self.files = files or stills
        self.tracks: dict[tuple[str, int], TrackSummary] = {}
        self.times: list[float] = []  # media time of every frame added
        self.photos: list[str] = []  # for stills: every photo added, in order
        self.photos_without_face: list[str] = []
        self.frames_without_face = 0
        self.capped_frames = 0  # frames (photos) where the face cap left faces out
        self.most_cut = 0  # the most faces it left out of one frame

    @property
    def frames(self) -> int:
        return len(self.times)

    def add(self, time_s: float, result: FrameResult, photo: str = "") -> None:
        position = len(self.times)
        self.times.append(time_s)
        photo = photo if self.files else ""
        if self.stills:
            self.photos.append(photo)
        if result.faces_cut:
            self.capped_frames += 1
            self.most_cut = max(self.most_cut, result.faces_cut)
        if not result.faces:
            self.frames_without_face += 1
            if self.stills:
                self.photos_without_face.append(photo)
        for face in result.faces:
            key = (photo, face.track_id)
            track = self.tracks.get(key)
            if track is None:
                track = self.tracks[key] = TrackSummary(face.track_id, first_s=time_s, photo=key[0])
            track.samples.append((position, np.asarray(face.probs, dtype=np.float32)))
            track.last_s = time_s
            track.labels[face.label] += 1

    def cap_note(self, cap: int) -> str:
        """What the face cap left out, or "" when it cut none: ``"in 1 photo the detector found more
        faces than the 256 kept (up to 744 more were left out)"``."""
        if not self.capped_frames:
            return ""
        unit = "photo" if self.stills else "frame"
        return (f"in {plural(self.capped_frames, unit)} the detector found more faces than the {cap} kept "
                f"(up to {self.most_cut} more were left out)")

    def without_face_where(self) -> str:
        """Where no face was found, when none was: the photo's name for one photo, else
        ``3 photos`` or ``120 frames`` (for ``no face found in ...``)."""
        if self.stills and len(self.photos) == 1:
            return self.photos[0]
        return plural(self.frames, "photo" if self.stills else "frame")

    def rows(self) -> list[TrackSummary]:
        """Videos: by track id; photos and folders: in file order, then by track id."""
        if self.files:
            return list(self.tracks.values())
        return sorted(self.tracks.values(), key=lambda t: t.track_id)


def plural(n: int, word: str) -> str:
    """``1 frame``, ``2 frames``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
