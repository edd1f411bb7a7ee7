"""The emotion timeline: one CSV row per face per frame, and a per-face summary.

Rows for frames without a face are written too (with empty face columns), so
the CSV accounts for every processed frame and gaps are visible.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from aidentify.files import PendingFile
from aidentify.inference.results import FrameResult


def timeline_columns(classes: list[str]) -> list[str]:
    return ["time_s", "frame", "track_id", "x", "y", "w", "h", *[f"p_{c}" for c in classes], "label", "confidence"]


class TimelineWriter:
    """Streams rows to a temporary CSV that becomes ``path`` on :meth:`commit`."""

    def __init__(self, path: Path, classes: list[str]):
        self.classes = classes
        self._pending = PendingFile(path)
        self._handle: TextIO = open(self._pending.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._handle)
        self._csv.writerow(timeline_columns(classes))
        self.rows = 0

    def add(self, time_s: float, result: FrameResult) -> None:
        if not result.faces:
            self._csv.writerow([f"{time_s:.3f}", result.index] + [""] * (len(self.classes) + 7))
            self.rows += 1
        for face in result.faces:
            self._csv.writerow([f"{time_s:.3f}", result.index, face.track_id, *face.box,
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
    track_id: int
    frames: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    labels: Counter = field(default_factory=Counter)

    def shares(self) -> dict[str, float]:
        return {label: n / self.frames for label, n in self.labels.most_common()}


class EmotionSummary:
    """Share of frames each tracked face spent under each (smoothed) label."""

    def __init__(self, classes: list[str]):
        self.classes = classes
        self.tracks: dict[int, TrackSummary] = {}
        self.frames = 0
        self.frames_without_face = 0

    def add(self, time_s: float, result: FrameResult) -> None:
        self.frames += 1
        self.frames_without_face += not result.faces
        for face in result.faces:
            track = self.tracks.get(face.track_id)
            if track is None:
                track = self.tracks[face.track_id] = TrackSummary(face.track_id, first_s=time_s)
            track.frames += 1
            track.last_s = time_s
            track.labels[face.label] += 1

    def rows(self) -> list[TrackSummary]:
        return sorted(self.tracks.values(), key=lambda t: t.track_id)

    def write_chart(self, path: Path) -> Path:
        """A stacked horizontal bar per face (share of frames per emotion), as PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from aidentify.files import atomic_write_bytes
        from aidentify.live.draw import colour_for

        tracks = self.rows()
        fig, ax = plt.subplots(figsize=(8, 1 + 0.45 * max(len(tracks), 1)))
        for row, track in enumerate(tracks):
            left = 0.0
            for label in self.classes:
                share = track.labels.get(label, 0) / track.frames
                if share:
                    b, g, r = colour_for(label)
                    ax.barh(row, share, left=left, color=(r / 255, g / 255, b / 255),
                            label=label if label not in ax.get_legend_handles_labels()[1] else None)
                    left += share
        ax.set_yticks(range(len(tracks)), [f"#{t.track_id}" for t in tracks])
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of frames")
        ax.set_title(f"Emotion per tracked face ({self.frames} frames)")
        ax.invert_yaxis()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=4, fontsize="small")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        atomic_write_bytes(path, buffer.getvalue())
        return Path(path)
