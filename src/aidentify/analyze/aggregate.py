"""The study's statistics on the stimulus clock, streamed one respondent at a time.

:class:`StudyAggregator` reads one timeline, cuts it into epochs (:mod:`aidentify.analyze.epochs`),
appends its rows to ``epochs.csv`` and adds them to running sums per group and epoch (count,
sum, sum of squares, count over the threshold), so memory holds no timeline but the current one:
the sums are ``groups x epochs x metrics`` numbers, and each respondent leaves one value per
segment and metric for the segment tests.

Outputs (column formats are fixed; empty cells are missing values). ``valence`` and
``expressiveness`` are **uncalibrated proxies** (see :data:`aidentify.analyze.epochs.METRIC_NOTES`).

- ``epochs.csv``: ``respondent, <group columns>, time_s, face_share, <classes>, valence,
  expressiveness``; one row per respondent per epoch; ``time_s`` the epoch start (stimulus s);
  class and proxy values empty where the respondent had no face in the epoch, ``face_share``
  empty where the recording has no frame in it.
- ``aggregate.csv``: ``group, time_s, metric, mean, ci_low, ci_high, n, share_over``; ``n`` the
  respondents with a face in the epoch, ``share_over`` the share of them over the threshold.
- ``moments.csv``: ``group, metric, time_s, change`` (a rise positive).
- ``segment_summary.csv``: ``group, segment, metric, mean, ci_low, ci_high, n, p_value``.

``group`` is ``all``, or a group value when there is one group column, or ``column=value``
when there are several.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from aidentify.analyze.epochs import (TIME_DECIMALS, AggregateSettings, NoBaselineFace, Segment, format_time,
                                      respondent_epochs)
from aidentify.analyze.stats import between_groups_p, interval, interval_from_sums, key_moments
from aidentify.errors import DataError
from aidentify.files import PendingFile, os_error_cause

ALL = ("", "all")  # the group key of every respondent; other keys are (column, value)
WHOLE = Segment("whole", 0.0, float("inf"))  # the one segment when none are given
OUTPUTS = ("epochs.csv", "aggregate.csv", "moments.csv", "segment_summary.csv")
AGGREGATE_COLUMNS = ["group", "time_s", "metric", "mean", "ci_low", "ci_high", "n", "share_over"]
MOMENT_COLUMNS = ["group", "metric", "time_s", "change"]
SEGMENT_COLUMNS = ["group", "segment", "metric", "mean", "ci_low", "ci_high", "n", "p_value"]
STATS_FORMAT = "%.6g"  # aggregate, moment and segment numbers; epoch values keep the timeline's 4 decimals
EPOCH_FORMAT = "%.4f"


@dataclass
class StudyTables:
    """What :meth:`StudyAggregator.finish` wrote: the four CSV paths and the small tables.

    ``respondents``: respondents in the statistics; ``skipped``: respondent -> why it was left
    out (no face in the baseline window, no frame on the stimulus clock); ``epoch_count``:
    epochs on the stimulus clock. ``aggregate``, ``moments``, ``segment_summary``: the CSVs'
    contents as DataFrames (groups x epochs x metrics rows at most).
    """

    epochs_csv: Path
    aggregate_csv: Path
    moments_csv: Path
    segment_summary_csv: Path
    respondents: int
    epoch_count: int
    skipped: dict[str, str] = field(default_factory=dict)
    aggregate: pd.DataFrame = field(default_factory=pd.DataFrame)
    moments: pd.DataFrame = field(default_factory=pd.DataFrame)
    segment_summary: pd.DataFrame = field(default_factory=pd.DataFrame)


class RunningSums:
    """Per epoch and metric: respondents with a value (n), their sum, sum of squares and the
    count over a threshold; ``(E, M)`` arrays that grow when a longer respondent arrives."""

    def __init__(self, metrics: int, epochs: int):
        self.n = np.zeros((epochs, metrics), np.int64)
        self.total = np.zeros((epochs, metrics))
        self.squares = np.zeros((epochs, metrics))
        self.over = np.zeros((epochs, metrics), np.int64)

    def add(self, values: np.ndarray, threshold: float) -> None:
        """One respondent's epoch values ``(E_r, M)`` (NaN: no face in that epoch)."""
        rows = len(values)
        if rows > len(self.n):
            self._grow(max(rows, 2 * len(self.n)))
        valid = ~np.isnan(values)
        filled = np.where(valid, values, 0.0)
        self.n[:rows] += valid
        self.total[:rows] += filled
        self.squares[:rows] += filled * filled
        self.over[:rows] += valid & (filled > threshold)

    def _grow(self, epochs: int) -> None:
        for name in ("n", "total", "squares", "over"):
            old = getattr(self, name)
            new = np.zeros((epochs, old.shape[1]), old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def table(self, epochs: int) -> dict[str, np.ndarray]:
        """``mean, ci_low, ci_high, n, share_over`` as ``(epochs, M)`` arrays."""
        if epochs > len(self.n):
            self._grow(epochs)
        n = self.n[:epochs]
        mean, low, high = interval_from_sums(n, self.total[:epochs], self.squares[:epochs])
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, self.over[:epochs] / np.maximum(n, 1), np.nan)
        return {"mean": mean, "ci_low": low, "ci_high": high, "n": n, "share_over": share}


class StudyAggregator:
    """Streams respondents into the study's tables in ``out_dir`` (see the module's docstring).

    Use as a context manager, or call :meth:`discard` on failure: outputs are written under
    temporary names and appear only when :meth:`finish` completes, all four together.
    """

    def __init__(self, settings: AggregateSettings, out_dir: Path):
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.metrics = settings.metrics
        self.segments = list(settings.segments) or [WHOLE]
        taken = {"respondent", "time_s", "face_share", *self.metrics}
        clash = [c for c in settings.group_columns if c in taken]
        if clash:
            raise DataError(f"group column {clash[0]!r} has the name of an epochs.csv column; rename it")
        self._sums: dict[tuple[str, str], RunningSums] = {}
        self._segment_values: list[np.ndarray] = []  # per respondent (segments, metrics) float32
        self._segment_groups: list[tuple[str, ...]] = []  # per respondent, its value in each group column
        self._names: set[str] = set()
        self._epoch_count = settings.epoch_count() or 0
        self.skipped: dict[str, str] = {}
        self._pending = {name: PendingFile(self.out_dir / name) for name in OUTPUTS}
        try:
            self._epochs: TextIO = open(self._pending["epochs.csv"].path, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot write in {self.out_dir}: {os_error_cause(exc, self.out_dir)}") from None
        header = ["respondent", *settings.group_columns, "time_s", "face_share", *self.metrics]
        pd.DataFrame(columns=header).to_csv(self._epochs, index=False)

    def __enter__(self) -> StudyAggregator:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.discard()

    def add(self, respondent: str, groups: dict[str, str], timeline_csv: Path, offset_s: float) -> None:
        """Aggregate one respondent: ``groups`` maps group columns to its values (a missing or
        empty value keeps it out of that column's groups, not out of ``all``); ``offset_s`` is the
        media time (s) at which the stimulus starts in its recording.

        A respondent with no face in the baseline window, or no frame on the stimulus clock, is
        left out and listed in :attr:`skipped`. Raises :class:`DataError` for an unreadable
        timeline, a repeated respondent or a group column the settings do not name; nothing
        of the respondent is kept then, so the caller may report it and go on with the next.
        """
        respondent = str(respondent)
        if respondent in self._names or respondent in self.skipped:
            raise DataError(f"respondent {respondent!r} is given twice")
        values = self._group_values(respondent, groups)
        try:
            table = respondent_epochs(timeline_csv, offset_s, self.settings)
        except NoBaselineFace as exc:
            self.skipped[respondent] = str(exc)
            return
        if table["face_share"].isna().all():
            self.skipped[respondent] = (f"{timeline_csv} has no frame on the stimulus clock "
                                        f"(offset {offset_s:g} s is after its last frame?)")
            return
        self._names.add(respondent)
        self._write_epochs(respondent, values, table)
        epoch_values = table[self.metrics].to_numpy(np.float64)
        for key in [ALL, *((c, v) for c, v in zip(self.settings.group_columns, values) if v)]:
            sums = self._sums.get(key) or self._sums.setdefault(key, RunningSums(len(self.metrics), self._epoch_count))
            sums.add(epoch_values, self.settings.threshold)
        self._segment_values.append(self._segment_means(table["time_s"].to_numpy(), epoch_values))
        self._segment_groups.append(values)
        self._epoch_count = max(self._epoch_count, len(table))

    def _group_values(self, respondent: str, groups: dict[str, str]) -> tuple[str, ...]:
        unknown = [c for c in groups if c not in self.settings.group_columns]
        if unknown:
            raise DataError(f"respondent {respondent!r} has a value for {unknown[0]!r}, which is not a group column")
        values = tuple("" if pd.isna(groups.get(c)) else str(groups[c]).strip() for c in self.settings.group_columns)
        if len(values) == 1 and values[0] == "all":
            raise DataError(f"respondent {respondent!r} is in a group named 'all', the name of every "
                            "respondent's row; rename the group")
        return values

    def _write_epochs(self, respondent: str, values: tuple[str, ...], table: pd.DataFrame) -> None:
        """Append the respondent's rows (formatted here: pandas' ``to_csv`` took a third of the time)."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([respondent, *values])
        lead = buffer.getvalue()
        numbers = table.drop(columns="time_s").to_numpy(np.float64)
        self._epochs.writelines(
            f"{lead},{format_time(time_s)},{','.join('' if v != v else EPOCH_FORMAT % v for v in row)}\n"
            for time_s, row in zip(table["time_s"].tolist(), numbers.tolist()))

    def _segment_means(self, starts: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``(segments, M)`` float32: per segment the mean of the epochs starting in it (NaN: no face)."""
        means = np.full((len(self.segments), values.shape[1]), np.nan, np.float32)
        for row, segment in enumerate(self.segments):
            inside = values[(starts >= segment.start_s) & (starts < segment.end_s)]
            valid = ~np.isnan(inside)
            count = valid.sum(axis=0)
            total = np.where(valid, inside, 0.0).sum(axis=0)
            means[row] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return means

    def group_keys(self) -> list[tuple[str, str]]:
        """``all``, then each group column's values in sorted order (those respondents have)."""
        keys = [ALL]
        for column in self.settings.group_columns:
            keys += sorted((k for k in self._sums if k[0] == column), key=lambda k: k[1])
        return keys

    def group_label(self, key: tuple[str, str]) -> str:
        """``all``; the value (one group column); ``column=value`` (several)."""
        if key == ALL:
            return "all"
        return key[1] if len(self.settings.group_columns) == 1 else f"{key[0]}={key[1]}"

    def finish(self) -> StudyTables:
        """Compute the statistics, write the four CSVs and rename them into place together."""
        self._epochs.close()
        aggregate = self._aggregate_table()
        moments = self._moments_table(aggregate)
        segments = self._segment_table()
        try:
            for name, table in (("aggregate.csv", aggregate), ("moments.csv", moments),
                                ("segment_summary.csv", segments)):
                if "time_s" in table:
                    table = table.assign(time_s=[format_time(t) for t in table["time_s"]])
                table.to_csv(self._pending[name].path, index=False, float_format=STATS_FORMAT)
        except OSError as exc:
            self.discard()
            raise DataError(f"cannot write in {self.out_dir}: {os_error_cause(exc, self.out_dir)}") from None
        paths = {name: pending.commit() for name, pending in self._pending.items()}
        return StudyTables(paths["epochs.csv"], paths["aggregate.csv"], paths["moments.csv"],
                           paths["segment_summary.csv"], len(self._names), self._epoch_count,
                           dict(self.skipped), aggregate, moments, segments)

    def discard(self) -> None:
        """Remove the unfinished outputs (what was in ``out_dir`` before stays as it was)."""
        self._epochs.close()
        for pending in self._pending.values():
            pending.discard()

    def _aggregate_table(self) -> pd.DataFrame:
        epochs, metrics = self._epoch_count, len(self.metrics)
        times = np.round(np.arange(epochs) * self.settings.epoch_s, TIME_DECIMALS)
        parts = []
        for key in self.group_keys():
            sums = self._sums.get(key) or RunningSums(metrics, epochs)
            columns = {name: array.ravel() for name, array in sums.table(epochs).items()}
            parts.append(pd.DataFrame({"group": self.group_label(key), "time_s": np.repeat(times, metrics),
                                       "metric": np.tile(self.metrics, epochs), **columns}))
        return pd.concat(parts, ignore_index=True)[AGGREGATE_COLUMNS]

    def _moments_table(self, aggregate: pd.DataFrame) -> pd.DataFrame:
        rows = []
        settings = self.settings
        for (group, metric), curve in aggregate.groupby(["group", "metric"], sort=False)["mean"]:
            for time_s, change in key_moments(curve.to_numpy(), settings.epoch_s, settings.moments_top,
                                              settings.moments_min_change, settings.moments_window_s,
                                              settings.moments_separation_s):
                rows.append((group, metric, round(time_s, 3), change))
        return pd.DataFrame(rows, columns=MOMENT_COLUMNS)

    def _segment_table(self) -> pd.DataFrame:
        columns = self.settings.group_columns
        values = (np.stack(self._segment_values) if self._segment_values
                  else np.zeros((0, len(self.segments), len(self.metrics)), np.float32))
        memberships = np.array(self._segment_groups, dtype=object).reshape(len(self._segment_groups), len(columns))
        rows = []
        for s, segment in enumerate(self.segments):
            for m, metric in enumerate(self.metrics):
                column_p = {c: between_groups_p([values[memberships[:, i] == v, s, m]
                                                  for (col, v) in self.group_keys() if col == c])
                            for i, c in enumerate(columns)}
                for key in self.group_keys():
                    chosen = (np.ones(len(values), bool) if key == ALL
                              else memberships[:, columns.index(key[0])] == key[1])
                    p_value = np.nan if key == ALL else column_p[key[0]]
                    rows.append((self.group_label(key), segment.name, metric, *interval(values[chosen, s, m]), p_value))
        return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
