"""One respondent's timeline cut into epochs on the stimulus clock.

A timeline CSV (written by :class:`aidentify.live.timeline.TimelineWriter`) has one row per face
per frame, or one row with empty face columns for a frame without a face. Here it becomes one
row per epoch: the share of frames with a face and, over the frames with a face, the median of
each class probability and of the two derived metrics. Epochs of 1 s with the median inside
each, then the mean across respondents and the share over a threshold, is how iMotions (AFFDEX)
aggregates facial coding (docs/analyze.md gives the sources); the median keeps a few
misclassified frames from moving an epoch.

Derived metrics, both **uncalibrated proxies** (computed from the classifier's probabilities,
never validated against self-report or physiology; even FaceReader's own valence told
unpleasant from neutral pictures apart poorly where facial EMG did: Höfling et al. 2020,
Frontiers in Psychology 11:1388):

- ``valence`` = p(happiness) - the largest probability among the negative classes present
  (sadness, anger, disgust, fear, contempt); in [-1, 1]. Realeyes' "Net Positivity" and
  FaceReader's valence (happy minus the strongest negative expression) follow the same idea.
- ``expressiveness`` = 1 - p(neutral); in [0, 1].

Both are computed per frame, then take the epoch median like the classes.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aidentify.errors import ConfigError, DataError

NEGATIVE_CLASSES = ("sadness", "anger", "disgust", "fear", "contempt")
VALENCE = "valence"
EXPRESSIVENESS = "expressiveness"
# One line per derived metric, for every output that shows them (CSV readers, the report, the CLI).
METRIC_NOTES = {
    VALENCE: "uncalibrated proxy: p(happiness) minus the largest negative-class probability",
    EXPRESSIVENESS: "uncalibrated proxy: 1 minus p(neutral)",
}
# Stimulus times are rounded to this many decimals before they are cut into epochs: timelines
# carry milliseconds, and 2.3 - 0.3 must fall in epoch 2, not at 1.9999999999999998 in epoch 1.
TIME_DECIMALS = 6


@dataclass(frozen=True)
class Segment:
    """A named part of the stimulus, ``[start_s, end_s)`` in seconds on the stimulus clock."""

    name: str
    start_s: float
    end_s: float


@dataclass
class AggregateSettings:
    """How timelines become epochs and statistics.

    ``classes``: the model's classes in its output order (the timeline's ``p_<class>`` columns).
    ``epoch_s``: epoch length in seconds; epoch k covers ``[k * epoch_s, (k + 1) * epoch_s)``.
    ``threshold``: ``share_over`` counts respondents whose epoch value is over it (after the
    baseline is subtracted, when there is one). ``baseline``: ``(start_s, end_s)`` on the stimulus
    clock (may be negative: before the stimulus); each respondent's median over the frames with a
    face in it is subtracted from that respondent's epoch values. ``duration_s``: the stimulus
    length; frames after it are dropped (None: epochs run to the last frame of the longest
    respondent). ``segments``: parts of the stimulus summarised on their own (none: one segment
    ``whole``). ``moments_*``: key moments (see :func:`aidentify.analyze.stats.key_moments`).
    ``group_columns``: respondents.csv columns that group respondents.

    Raises :class:`ConfigError` for a value that cannot work (a non-positive epoch, an empty span).
    """

    classes: list[str]
    epoch_s: float = 1.0
    threshold: float = 0.5
    baseline: tuple[float, float] | None = None
    duration_s: float | None = None
    segments: list[Segment] = field(default_factory=list)
    moments_top: int = 3
    moments_min_change: float = 0.05
    moments_window_s: float = 3.0
    moments_separation_s: float = 5.0
    group_columns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.classes = list(self.classes)
        self.segments = [Segment(*s) if not isinstance(s, Segment) else s for s in self.segments]
        self.group_columns = list(self.group_columns)
        if not self.classes:
            raise ConfigError("the model has no classes: nothing to aggregate")
        if not self.epoch_s > 0:
            raise ConfigError(f"epoch_s must be over 0 seconds, not {self.epoch_s}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"duration_s must be over 0 seconds, not {self.duration_s}")
        if self.baseline is not None:
            self.baseline = check_span("baseline", *self.baseline)
        for segment in self.segments:
            check_span(f"segment {segment.name!r}", segment.start_s, segment.end_s)
        if self.moments_top < 0 or self.moments_window_s <= 0 or self.moments_separation_s < 0:
            raise ConfigError("moments_top and moments_separation_s must be 0 or more, moments_window_s over 0")

    @property
    def metrics(self) -> list[str]:
        """The aggregated metrics: the classes, then ``valence`` and ``expressiveness``."""
        return metric_names(self.classes)

    def epoch_count(self) -> int | None:
        """Epochs in the stimulus (the last one may be shorter), or None when its length is unknown."""
        return None if self.duration_s is None else max(1, math.ceil(self.duration_s / self.epoch_s - 1e-9))


def check_span(what: str, start_s: float, end_s: float) -> tuple[float, float]:
    """``(start_s, end_s)`` as floats; :class:`ConfigError` unless ``start_s < end_s``."""
    start_s, end_s = float(start_s), float(end_s)
    if not start_s < end_s:
        raise ConfigError(f"{what} must start before it ends (start {start_s:g} s, end {end_s:g} s)")
    return start_s, end_s


def format_time(seconds: float) -> str:
    """Seconds as the shortest decimal to the microsecond: ``12``, ``0.25``, ``12345.25``."""
    return f"{seconds:.{TIME_DECIMALS}f}".rstrip("0").rstrip(".")


def metric_names(classes: list[str]) -> list[str]:
    """The classes, then ``valence`` (when happiness and a negative class are among them) and
    ``expressiveness`` (when neutral is): a 3-class model without them gets only its classes."""
    names = list(classes)
    if "happiness" in classes and any(c in NEGATIVE_CLASSES for c in classes):
        names.append(VALENCE)
    if "neutral" in classes:
        names.append(EXPRESSIVENESS)
    return names


class NoBaselineFace(DataError):
    """A respondent's timeline has no frame with a face in the baseline window."""


def read_frames(timeline_csv: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One timeline's frames: media times ``(F,)`` float64 seconds and probabilities ``(F, C)``
    float32 in ``classes`` order, NaN for a frame without a face. A frame with several faces
    (``--all-faces``) gets the mean of their probabilities.

    Raises :class:`DataError` naming the file when it is missing, lacks the columns or holds
    values that are not numbers.
    """
    timeline_csv = Path(timeline_csv)
    probs = [f"p_{c}" for c in classes]
    header = _header(timeline_csv)
    missing = [c for c in ["time_s", "frame", *probs] if c not in header]
    if missing:
        raise DataError(f"{timeline_csv} is not a timeline of this model's classes: it lacks the column"
                        f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                        f"(expected time_s, frame, {', '.join(probs)})")
    try:  # one float64 dtype for every column: parsing is faster than with a dtype per column
        table = pd.read_csv(timeline_csv, usecols=["time_s", "frame", *probs], engine="c", dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{timeline_csv} holds a value that is not a number ({exc})") from None
    data = table.to_numpy()
    position = {name: i for i, name in enumerate(table.columns)}
    times, frames = data[:, position["time_s"]], data[:, position["frame"]]
    values = data[:, [position[p] for p in probs]]
    if len(frames) > 1 and (np.diff(frames) <= 0).any():  # several faces per frame (or rows out of order)
        grouped = table.groupby("frame", sort=True).agg({"time_s": "first", **{p: "mean" for p in probs}})
        times, values = grouped["time_s"].to_numpy(), grouped[probs].to_numpy()
    return times.astype(np.float64), values.astype(np.float32)


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except FileNotFoundError:
        raise DataError(f"timeline {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read timeline {path}: {exc}") from None


def frame_metrics(probs: np.ndarray, classes: list[str]) -> np.ndarray:
    """Per frame ``(F, M)`` float32: the class probabilities ``(F, C)``, then valence and
    expressiveness as :func:`metric_names` lists them (NaN rows stay NaN)."""
    columns = [probs]
    names = metric_names(classes)
    if "valence" in names:
        negative = [classes.index(c) for c in classes if c in NEGATIVE_CLASSES]
        columns.append(probs[:, [classes.index("happiness")]] - probs[:, negative].max(axis=1, keepdims=True))
    if "expressiveness" in names:
        columns.append(1.0 - probs[:, [classes.index("neutral")]])
    return np.concatenate(columns, axis=1).astype(np.float32, copy=False)


def stimulus_times(times: np.ndarray, offset_s: float) -> np.ndarray:
    """Media times ``(F,)`` seconds to the stimulus clock (0 = the stimulus starts)."""
    return np.round(np.asarray(times, np.float64) - float(offset_s), TIME_DECIMALS)


def epoch_values(times: np.ndarray, metrics: np.ndarray, settings: AggregateSettings) -> tuple[np.ndarray, np.ndarray]:
    """Cut frames into epochs: ``times`` ``(F,)`` stimulus seconds, ``metrics`` ``(F, M)``.

    Returns ``face_share`` ``(E,)`` (share of the epoch's frames with a face; NaN for an epoch
    with no frame at all) and the medians ``(E, M)`` float64 over the frames with a face (NaN
    where there is none). E is the stimulus's epoch count when its duration is known, else
    the respondent's last epoch with a frame + 1 (0 when no frame is on the stimulus clock).
    Frames before 0 s and from the duration on are left out.
    """
    count = settings.epoch_count()
    end = math.inf if settings.duration_s is None else settings.duration_s
    kept = (times >= 0) & (times < end)
    epoch = np.floor(times[kept] / settings.epoch_s + 1e-9).astype(np.int64)
    if count is None:
        count = int(epoch.max()) + 1 if len(epoch) else 0
    epoch = np.minimum(epoch, count - 1)  # a frame a hair before the duration, rounded up
    values = metrics[kept]
    face = ~np.isnan(values[:, 0])
    frames = np.bincount(epoch, minlength=count)
    faces = np.bincount(epoch[face], minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        face_share = np.where(frames > 0, faces / np.maximum(frames, 1), np.nan)
    return face_share, epoch_medians(epoch[face], values[face], count)


def epoch_medians(epoch: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """Median per epoch ``(count, M)`` float64 of ``values`` ``(F, M)`` (no NaN) whose epoch
    indices are ``epoch`` ``(F,)``; NaN for an epoch without values.

    One sort for all epochs and metrics: each value is shifted by its epoch times a span wider
    than the values' range, so sorting each column orders the frames by epoch, then by value;
    the median is then read at each epoch's middle position(s). (pandas' groupby-median did
    the same job 3-4x slower per respondent.) The shift costs at most ~1e-11 of precision at
    36,000 epochs.
    """
    medians = np.full((count, values.shape[1]), np.nan)
    if not len(epoch):
        return medians
    values = values.astype(np.float64)
    low = values.min()
    span = values.max() - low + 1.0
    order = np.sort(epoch)
    shifted = np.sort(values - low + epoch[:, None] * span, axis=0) - order[:, None] * span + low
    counts = np.bincount(order, minlength=count)
    starts = np.cumsum(counts) - counts
    present = np.flatnonzero(counts)
    lower = starts[present] + (counts[present] - 1) // 2
    upper = starts[present] + counts[present] // 2
    medians[present] = (shifted[lower] + shifted[upper]) / 2
    return medians


def baseline_values(times: np.ndarray, metrics: np.ndarray, baseline: tuple[float, float], source: Path) -> np.ndarray:
    """Median ``(M,)`` float64 of each metric over the frames with a face in ``[start, end)``
    stimulus seconds; :class:`NoBaselineFace` naming ``source`` when there is none."""
    start, end = baseline
    inside = (times >= start) & (times < end) & ~np.isnan(metrics[:, 0])
    if not inside.any():
        raise NoBaselineFace(f"{source} has no frame with a face in the baseline window "
                             f"{start:g}-{end:g} s of the stimulus")
    return np.median(metrics[inside].astype(np.float64), axis=0)


def respondent_epochs(timeline_csv: Path, offset_s: float, settings: AggregateSettings) -> pd.DataFrame:
    """One respondent's epochs: columns ``time_s`` (epoch start, stimulus seconds),
    ``face_share`` (0-1), then one column per metric (:attr:`AggregateSettings.metrics`),
    one row per epoch, float64.

    ``offset_s``: the media time (seconds) at which the stimulus starts in this recording.
    With a baseline the respondent's baseline medians are subtracted from every metric
    (``face_share`` is left as is). Raises :class:`DataError` for an unreadable timeline,
    :class:`NoBaselineFace` when the baseline window has no face.
    """
    times, probs = read_frames(timeline_csv, settings.classes)
    times = stimulus_times(times, offset_s)
    metrics = frame_metrics(probs, settings.classes)
    face_share, values = epoch_values(times, metrics, settings)
    if settings.baseline is not None:
        values = values - baseline_values(times, metrics, settings.baseline, timeline_csv)
    starts = np.round(np.arange(len(values)) * settings.epoch_s, TIME_DECIMALS)
    return pd.DataFrame(np.column_stack([starts, face_share, values]),
                        columns=["time_s", "face_share", *settings.metrics])
