"""The `live --chart` PNG: each face's smoothed emotion probabilities over media time.

Videos and cameras: one panel per face (track), one line per class against
media time in seconds, NaN where the face was not seen so that gaps show as
gaps. Photos: one stacked bar per face of each photo, the photo's file name on
the x axis; a photo without a face keeps its place, marked "no face". When no
face was found at all the figure says so instead of drawing empty axes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aidentify.files import atomic_write_bytes
from aidentify.live.draw import colour_for
from aidentify.live.timeline import EmotionSummary, plural

MAX_PANELS = 12  # longest-seen faces; the rest are counted in the title, with how long the longest of them was seen


@dataclass
class FaceSeries:
    """One face's probabilities at every frame of the run (NaN rows where it was absent)."""

    name: str
    times: np.ndarray  # (frames,) media time in seconds
    probs: np.ndarray  # (frames, classes), NaN where the face was not seen
    seen: int  # frames it was seen in


def face_series(summary: EmotionSummary) -> list[FaceSeries]:
    """Every face's probability time series over the whole run, in summary row order."""
    times = np.asarray(summary.times, dtype=np.float64)
    series = []
    for track in summary.rows():
        probs = np.full((len(times), len(summary.classes)), np.nan, dtype=np.float32)
        for position, p in track.samples:
            probs[position] = p
        series.append(FaceSeries(track.name, times, probs, track.frames))
    return series


def colour_rgb(label: str) -> tuple[float, float, float]:
    b, g, r = colour_for(label)
    return r / 255, g / 255, b / 255


def no_face_message(summary: EmotionSummary) -> str:
    return f"no face found in {summary.without_face_where()}"


def stills_title(summary: EmotionSummary) -> str:
    return f"Emotion probabilities per face per photo ({plural(len(summary.photos), 'photo')})"


def write_chart(summary: EmotionSummary, path: Path) -> Path:
    """Draw the chart for ``summary`` and write it to ``path`` (atomically)."""
    import matplotlib.pyplot as plt

    fig = chart_figure(summary)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def chart_figure(summary: EmotionSummary):
    """The chart as a matplotlib ``Figure`` (Agg backend): no face, photos' bars, or per-face timelines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summary.tracks:
        return _no_face_figure(plt, summary)
    if summary.stills:
        return _stills_figure(plt, summary)
    return _timeline_figure(plt, summary)


def _no_face_figure(plt, summary: EmotionSummary):
    fig = plt.figure(figsize=(6, 1.6))
    fig.text(0.5, 0.5, no_face_message(summary), ha="center", va="center", fontsize="large")
    return fig


def _timeline_figure(plt, summary: EmotionSummary):
    every = face_series(summary)
    keep = sorted(sorted(range(len(every)), key=lambda i: -every[i].seen)[:MAX_PANELS])  # longest seen, in order
    series = [every[i] for i in keep]
    # constrained layout makes room for the suptitle and the legend: tight_layout ignores the suptitle,
    # which then overprinted the first panel's caption
    fig, axes = plt.subplots(len(series), 1, sharex=True, squeeze=False, layout="constrained",
                             figsize=(9, 1.0 + 1.8 * len(series)))
    end = max(max(summary.times), 1e-3)  # a folder's files each start at 0
    shares = {t.name: t.shares() for t in summary.rows()}
    for ax, face in zip(axes[:, 0], series):
        for i, label in enumerate(summary.classes):
            ax.plot(face.times, face.probs[:, i], color=colour_rgb(label), linewidth=1.4, label=label)
        top = ", ".join(f"{label} {share:.0%}" for label, share in list(shares[face.name].items())[:3])
        ax.set_title(f"face {face.name}: seen in {face.seen} of {summary.frames} frames; labelled {top}",
                     fontsize="small", loc="left")
        ax.set_ylim(-0.03, 1.05)  # lines at 0 and 1 stay visible
        ax.set_xlim(0, end)
        ax.set_ylabel("p")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("media time (s)")
    fig.suptitle(_timeline_title(every, keep), fontsize="medium")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize="small", frameon=False)
    return fig


def _timeline_title(every: list[FaceSeries], keep: list[int]) -> str:
    """The chart's title; faces left out for room are counted with the longest any of them was seen."""
    title = "Smoothed emotion probabilities per face; gaps: face not seen"
    hidden = [face for i, face in enumerate(every) if i not in set(keep)]
    if hidden:
        longest = max(face.seen for face in hidden)
        title += (f"\n{len(hidden)} more faces not shown (the {MAX_PANELS} seen longest are), "
                  f"each seen in at most {longest} frames")
    return title


def _stills_figure(plt, summary: EmotionSummary):
    """One stacked bar of class probabilities per face per photo; faceless photos marked."""
    bars: list[tuple[str, np.ndarray | None]] = []
    by_photo: dict[str, list] = {}
    for track in summary.rows():
        by_photo.setdefault(track.photo, []).append(track)
    for photo in dict.fromkeys(summary.photos):
        for track in by_photo.get(photo, []):
            bars.append((track.name, track.samples[0][1]))
        if photo not in by_photo:
            bars.append((f"{photo}\n(no face)", None))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + 1.1 * len(bars)), 4.2))
    for x, (_, probs) in enumerate(bars):
        if probs is None:
            continue
        bottom = 0.0
        for i, label in enumerate(summary.classes):
            ax.bar(x, float(probs[i]), bottom=bottom, color=colour_rgb(label), width=0.7)
            bottom += float(probs[i])
    ax.set_xticks(range(len(bars)), [name for name, _ in bars], rotation=30, ha="right", fontsize="small")
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(stills_title(summary), fontsize="medium")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour_rgb(label)) for label in summary.classes]
    ax.legend(handles, summary.classes, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False)
    fig.tight_layout()
    return fig
