"""``report.html``: one self-contained page about a finished study, opened from disk with no network.

The page inlines everything (plotly.js, the style, the stimulus thumbnails as JPEG data URIs) and
reads only the study folder that ``aidentify analyze`` wrote: ``study.json``, ``aggregate.csv``,
``moments.csv``, ``segment_summary.csv``, ``failed.csv``, ``epochs.csv`` (streamed in chunks, so a
study of 10,000 respondents fits in memory) and ``recordings/*/summary.json``. Every string from
the data is escaped (Jinja2's autoescape for the page, :func:`plot_text` for chart labels).
"""

from __future__ import annotations

import base64
import json
import math
from importlib.resources import files
from pathlib import Path

import cv2
import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from aidentify.analyze import report_charts as charts
from aidentify.analyze.report_tables import group_rows, quality_rows, segment_table
from aidentify.errors import DataError, StageInputMissing
from aidentify.files import atomic_write_text, check_output_file

RESPONDENTS_SHOWN = 48  # small multiples drawn at most (a page of 10,000 charts would not open)
THUMBNAILS = 12  # stimulus frames along the time axis at most
THUMBNAIL_HEIGHT_PX = 72
CHUNK_ROWS = 200_000  # epochs.csv rows read at a time
TEMPLATE = "report.html.j2"


def write_report(study_dir: Path, out: Path | None = None, respondents: int = RESPONDENTS_SHOWN) -> Path:
    """Write the study's HTML report (default ``study_dir / "report.html"``) atomically; return its path.

    ``respondents``: how many small per-respondent charts to draw at most (those with the most epochs
    with a face, ties by name; the page says how many of how many). Raises :class:`StageInputMissing`
    when ``study.json``, ``aggregate.csv`` or ``epochs.csv`` is missing, :class:`DataError` when a file
    is malformed or ``out`` cannot be written. A stimulus video that is gone or unreadable does not
    fail the report: the page says so where the thumbnails would be.
    """
    study_dir = Path(study_dir)
    out = Path(out) if out is not None else study_dir / "report.html"
    check_output_file(out)
    study = read_study_json(study_dir)
    classes = [str(name) for name in study.get("classes") or []]
    if not classes:
        raise DataError(f"{study_dir / 'study.json'} names no classes")
    aggregate = read_table(study_dir / "aggregate.csv", text=["group", "metric"], required=True,
                           numbers=["time_s", "mean", "ci_low", "ci_high", "n"])
    moments = read_table(study_dir / "moments.csv", text=["group", "metric"], numbers=["time_s", "change"])
    segments = read_table(study_dir / "segment_summary.csv", text=["group", "segment", "metric"],
                          numbers=["mean", "ci_low", "ci_high", "n"])
    failed = read_table(study_dir / "failed.csv", text=["recording", "reason"])
    summaries = read_summaries(study_dir)
    groups = [g for g in dict.fromkeys(aggregate["group"]) if g != "all"] if "group" in aggregate else []
    names, total = choose_respondents(study_dir / "epochs.csv", respondents)
    epochs = shown_epochs(study_dir / "epochs.csv", names)
    thumbnails, step_s, stimulus_note = stimulus_strip(study, aggregate)
    segment_list = [s for s in study.get("segments") or [] if {"name", "start_s", "end_s"} <= set(s)]
    figures = {
        "emotions": charts.emotion_figure(aggregate, classes, groups, moments, segment_list, thumbnails, step_s),
        "valence": charts.valence_figure(aggregate, groups, moments, segment_list, thumbnails, step_s),
    }
    if names:
        titles = respondent_titles(names, summaries, epochs)
        figures["respondents"] = charts.respondent_figure(epochs, names, titles)
    page = render(study_dir=study_dir, study=study, classes=classes, groups=groups, aggregate=aggregate,
                  moments=moments, segments=segments, failed=failed, summaries=summaries, shown=len(names),
                  total=total, figures=figures, stimulus_note=stimulus_note, thumbnails=len(thumbnails))
    atomic_write_text(out, page)
    return out


def read_study_json(study_dir: Path) -> dict:
    """``study.json`` as a dict; :class:`StageInputMissing` if absent, :class:`DataError` if unreadable."""
    path = study_dir / "study.json"
    if not path.is_file():
        raise StageInputMissing(f"{study_dir} has no study.json: run `aidentify analyze` on the recordings first")
    try:
        study = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not isinstance(study, dict):
        raise DataError(f"{path} is not a JSON object")
    return study


def read_table(path: Path, text: list[str], numbers: tuple[str, ...] | list[str] = (),
               required: bool = False) -> pd.DataFrame:
    """A study CSV with ``text`` columns kept as strings (a group called ``NA`` stays ``NA``) and
    ``numbers`` columns as floats; only empty fields are missing values (NaN).

    A missing optional file is an empty table; a missing required one raises :class:`StageInputMissing`;
    a file without one of the columns, or with a non-number in ``numbers``, raises :class:`DataError`.
    """
    if not path.is_file():
        if required:
            raise StageInputMissing(f"{path} is missing: the study did not finish; run `aidentify analyze` again")
        return pd.DataFrame(columns=[*text, *numbers])
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
        missing = [c for c in [*text, *numbers] if c not in header]
        if missing:
            raise DataError(f"{path} has no column {', '.join(missing)} (it has {', '.join(header)})")
        return pd.read_csv(path, dtype={**{c: str for c in text}, **{c: float for c in numbers}},
                           keep_default_na=False, na_values={c: [""] for c in header if c not in text})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def read_summaries(study_dir: Path) -> list[dict]:
    """Every ``recordings/*/summary.json`` (a missing or broken one is skipped: failed.csv lists those)."""
    summaries = []
    for path in sorted((study_dir / "recordings").glob("*/summary.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(summary, dict) and "respondent" in summary:
            summary["respondent"] = str(summary["respondent"])
            summaries.append(summary)
    return summaries


def epoch_chunks(path: Path, columns: list[str]):
    """epochs.csv in chunks of :data:`CHUNK_ROWS` rows, only ``columns`` (``respondent`` kept as text)."""
    if not path.is_file():
        raise StageInputMissing(f"{path} is missing: the study did not finish; run `aidentify analyze` again")
    try:
        yield from pd.read_csv(path, usecols=columns, dtype={"respondent": str}, keep_default_na=False,
                               na_values={c: [""] for c in columns if c != "respondent"}, chunksize=CHUNK_ROWS)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def choose_respondents(path: Path, count: int) -> tuple[list[str], int]:
    """The ``count`` respondents with the most epochs with a face (ties by name), and how many there are."""
    seen: pd.Series | None = None
    for chunk in epoch_chunks(path, ["respondent", "valence"]):
        counts = chunk["valence"].notna().groupby(chunk["respondent"]).sum()
        seen = counts if seen is None else seen.add(counts, fill_value=0)
    if seen is None or seen.empty:
        return [], 0
    ranked = sorted(seen.items(), key=lambda item: (-item[1], item[0]))
    return [name for name, _ in ranked[:count]], len(ranked)


def shown_epochs(path: Path, names: list[str]) -> pd.DataFrame:
    """The epochs of ``names`` only (time, valence, expressiveness), read chunk by chunk."""
    wanted = set(names)
    parts = [chunk[chunk["respondent"].isin(wanted)]
             for chunk in epoch_chunks(path, ["respondent", "time_s", "valence", "expressiveness"])] if names else []
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["respondent", "time_s", "valence", "expressiveness"])


def respondent_titles(names: list[str], summaries: list[dict], epochs: pd.DataFrame) -> list[str]:
    """Each small chart's title: the name, its group values and face share (escaped for Plotly)."""
    by_name = {s["respondent"]: s for s in summaries}
    titles = []
    for name in names:
        summary = by_name.get(name, {})
        groups = " ".join(str(v) for v in (summary.get("groups") or {}).values())
        share = summary.get("face_share")
        extra = " · ".join(x for x in (groups, f"face {share:.0%}" if isinstance(share, (int, float)) else "") if x)
        titles.append(charts.plot_text(f"{name} ({extra})" if extra else name))
    return titles


def stimulus_thumbnails(video: Path, times_s, height_px: int = THUMBNAIL_HEIGHT_PX) -> list[tuple[float, str]]:
    """Frames of ``video`` at ``times_s`` (seconds on its own clock) as JPEG data URIs ``height_px`` tall.

    Returns ``(time_s, "data:image/jpeg;base64,...")`` for each time whose frame could be read (a time
    past the end is left out). The frame shown at ``t`` is frame ``floor(t * fps)`` (it is on screen from
    ``i / fps`` to ``(i + 1) / fps``); OpenCV seeks to it with ``CAP_PROP_POS_FRAMES``, or with
    ``CAP_PROP_POS_MSEC`` where the container gives no frame rate. Raises :class:`DataError` when the
    video cannot be opened.
    """
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise DataError(f"cannot open the stimulus video {video}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    thumbnails = []
    try:
        for time_s in times_s:
            if fps > 0:
                capture.set(cv2.CAP_PROP_POS_FRAMES, math.floor(float(time_s) * fps))
            else:
                capture.set(cv2.CAP_PROP_POS_MSEC, float(time_s) * 1000.0)
            ok, frame = capture.read()
            if not ok or frame is None:
                continue
            width = max(1, round(frame.shape[1] * height_px / frame.shape[0]))
            small = cv2.resize(frame, (width, height_px), interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
            if ok:
                thumbnails.append((float(time_s), "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")))
    finally:
        capture.release()
    return thumbnails


def stimulus_strip(study: dict, aggregate: pd.DataFrame) -> tuple[list[tuple[float, str]], float, str]:
    """Thumbnails spread evenly over the stimulus, their spacing (s), and a note for the page ('' if fine)."""
    stimulus = study.get("stimulus")
    if not isinstance(stimulus, dict) or not stimulus.get("path"):
        return [], 1.0, ""
    video = Path(stimulus["path"])
    duration = stimulus.get("duration_s") or (float(np.nanmax(aggregate["time_s"])) if len(aggregate) else 0.0)
    if not video.is_file():
        return [], 1.0, f"The stimulus video {video} is not there any more, so no thumbnails are shown."
    count = max(1, min(THUMBNAILS, math.ceil(duration)))
    step = duration / count if duration else 1.0
    try:
        thumbnails = stimulus_thumbnails(video, [(index + 0.5) * step for index in range(count)])
    except DataError as exc:
        return [], step, f"{exc}, so no thumbnails are shown."
    if not thumbnails:
        return [], step, f"No frame of the stimulus video {video} could be read, so no thumbnails are shown."
    return thumbnails, step, ""


def shown_settings(settings: dict) -> dict:
    """The study's settings as the report lists them: the model has its own line above, and
    ``workers`` is said as what it means (none on a cluster)."""
    shown = {key: value for key, value in settings.items() if key != "model"}
    if shown.get("cluster"):
        shown.pop("workers", None)  # a cluster's workers are its own (the runner line says how many)
    elif shown.get("workers") == 0:
        shown["workers"] = "one per CPU core"
    return shown


def render(study_dir: Path, study: dict, classes: list[str], groups: list[str], aggregate: pd.DataFrame,
           moments: pd.DataFrame, segments: pd.DataFrame, failed: pd.DataFrame, summaries: list[dict], shown: int,
           total: int, figures: dict, stimulus_note: str, thumbnails: int) -> str:
    """The page: the template filled in, plotly.js and each figure inlined."""
    environment = jinja2.Environment(autoescape=True, trim_blocks=True,
                                     lstrip_blocks=True)
    template = environment.from_string(files("aidentify.analyze").joinpath(TEMPLATE).read_text(encoding="utf-8"))
    rows, quality_total = quality_rows(summaries)
    return template.render(
        name=study_dir.resolve().name, folder=str(study_dir.resolve()), study=study, classes=classes,
        counts=study.get("counts") or {}, settings=shown_settings(study.get("settings") or {}),
        timings=study.get("timings") or {},
        model=study.get("model") or {}, stimulus=study.get("stimulus") or {}, stimulus_note=stimulus_note,
        thumbnails=thumbnails, groups=group_rows(aggregate, summaries, classes, groups),
        segments=segment_table(segments, study.get("segments") or [], ["all", *groups]),
        moments=len(moments), quality=rows, quality_total=quality_total,
        failed=failed.fillna("").to_dict("records"), shown=shown, total=total, proxy_note=charts.PROXY_NOTE,
        plotly_js=Markup(charts.plotly_js().replace("</script", "<\\/script")),
        charts={key: Markup(charts.figure_div(figure, f"chart-{key}")) for key, figure in figures.items()})
