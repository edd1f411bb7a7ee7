"""The ``analyze`` stage: every recording in a worker, then the aggregation, the tables and the report.

Order of work (each step's files are whole or absent; see docs/analyze.md):

1. the inputs are checked whole (:mod:`aidentify.analyze.inputs`) and the study folder is locked;
2. each recording runs in a worker (:mod:`aidentify.analyze.task`), as many at once as the runner
   has room for; a recording already finished with the same file, model and settings is not redone;
   one that cannot be read goes to ``failed.csv``; one whose worker died is started again
   ``retries`` times, then goes to ``failed.csv``;
3. the finished timelines are aggregated one respondent at a time
   (:class:`aidentify.analyze.aggregate.StudyAggregator`), then ``failed.csv``, ``study.json`` and
   ``report.html`` are written.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aidentify import __version__
from aidentify.analyze.inputs import Recording, StudyInputs
from aidentify.analyze.runner import make_runner
from aidentify.analyze.task import RecordingJob, analyze_recording, is_finished, read_progress
from aidentify.config import AnalyzeConfig
from aidentify.errors import AidentifyError
from aidentify.files import atomic_write_text, check_output_folder, sha256_file
from aidentify.processes import folder_lock, lock_file_for

POLL_S = 0.2  # how often the parent looks at the workers' futures and progress files
FAILED_COLUMNS = ("recording", "reason")


@dataclass
class RecordingResult:
    """What became of one recording: its summary, or why it failed; ``reused``: finished before."""

    recording: Recording
    summary: dict[str, Any] | None = None
    failure: str | None = None
    reused: bool = False


@dataclass
class StudyRun:
    """What ``run_study`` did: per-recording results (input order), the files written, timings (s)."""

    results: list[RecordingResult]
    out: Path
    written: list[Path] = field(default_factory=list)
    analyse_s: float = 0.0
    aggregate_s: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)  # respondent -> why the statistics left it out
    runner: str = ""

    @property
    def failed(self) -> list[RecordingResult]:
        return [r for r in self.results if r.failure is not None]

    @property
    def frames(self) -> int:
        return sum(r.summary["frames"] for r in self.results if r.summary)

    @property
    def frames_analysed_now(self) -> int:
        """Frames of the recordings analysed in this run (a reused recording cost no work)."""
        return sum(r.summary["frames"] for r in self.results if r.summary and not r.reused)

    @property
    def fps(self) -> float | None:
        """Frames analysed per second of this run's analysis, None when it analysed none."""
        fresh = self.frames_analysed_now
        return fresh / self.analyse_s if self.analyse_s > 0 and fresh else None


class Hooks:
    """What the CLI hears: ``started()`` once the study folder is locked (before any work),
    ``progress(frames_done)``, ``finished(result)`` as each recording ends, ``retry(recording,
    attempt)`` when a dead worker's recording starts again."""

    def started(self) -> None: ...
    def progress(self, frames_done: int) -> None: ...
    def finished(self, result: RecordingResult) -> None: ...
    def retry(self, recording: Recording, attempt: int) -> None: ...


def run_study(config: AnalyzeConfig, inputs: StudyInputs, stimulus: Path | None = None,
              hooks: Hooks | None = None) -> StudyRun:
    """Analyse every recording of ``inputs`` into ``config.out`` (see the module docstring).

    ``stimulus``: the video the respondents watched (its length bounds the epochs; its frames
    become the report's thumbnails). Raises :class:`~aidentify.errors.DataError` for a study folder
    that cannot be written or is being written by another process, or a cluster that cannot be
    reached; a recording's own failure is reported in the result, not raised.
    """
    hooks = hooks or Hooks()
    out = Path(config.out).resolve()
    check_output_folder(out, f"--out {config.out}")
    with folder_lock(lock_file_for(out), f"{config.out} is being written"):
        hooks.started()
        started = time.perf_counter()
        jobs = _jobs(config, inputs, out)
        results, runner = _run_jobs(config, jobs, hooks)
        run = StudyRun(results, out, analyse_s=time.perf_counter() - started, runner=runner)
        _finish(config, inputs, stimulus, run)
    return run


def _jobs(config: AnalyzeConfig, inputs: StudyInputs, out: Path) -> list[RecordingJob]:
    """One job per recording, with the fingerprint that says whether earlier work can be reused."""
    from aidentify.inference.modelfile import resolve_model_path

    live = config.live_config()
    model = resolve_model_path(live.model)
    settings = {"live": live.model_dump(mode="json", exclude={"model", "snapshot_dir", "draw"}),
                "all_faces": config.all_faces, "annotate": config.annotate}
    base = {"model_sha256": sha256_file(model), "settings": settings, "aidentify": __version__}
    jobs = []
    for recording in inputs.recordings:
        path = recording.path.resolve()
        stat = path.stat()
        fingerprint = {"recording": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **base}
        live_dict = live.model_dump(mode="json") | {"model": str(model)}
        jobs.append(RecordingJob(path, recording.respondent, out / "recordings" / recording.folder_name,
                                 recording.offset_s, dict(recording.groups), live_dict, config.all_faces,
                                 config.annotate, fingerprint))
    return jobs


def _run_jobs(config: AnalyzeConfig, jobs: list[RecordingJob],
              hooks: Hooks) -> tuple[list[RecordingResult], str]:
    """Run the jobs not finished before on the runner (at most ``capacity`` at once); the results in
    input order and the runner's description ("" when every recording was finished before)."""
    by_job = {job.respondent: RecordingResult(_recording_of(job)) for job in jobs}  # respondents are unique
    pending: deque[RecordingJob] = deque()
    frames_done = 0
    for job in jobs:
        summary = is_finished(job.folder, job.fingerprint)
        if summary is None:
            pending.append(job)
            continue
        result = by_job[job.respondent]
        result.summary, result.reused = summary, True
        frames_done += summary["frames"]
        hooks.finished(result)
    hooks.progress(frames_done)
    runner = ""
    if pending:
        runner = _drive(config, pending, by_job, hooks, frames_done)
    return [by_job[job.respondent] for job in jobs], runner


def _drive(config: AnalyzeConfig, pending: deque, by_job: dict, hooks: Hooks, frames_done: int) -> str:
    """Submit, poll, retry: the loop that keeps the runner full until every job has an outcome."""
    runner = make_runner(config.workers, config.cluster)
    running: dict[Any, RecordingJob] = {}
    try:
        while pending or running:
            while pending and len(running) < runner.capacity:
                job = pending.popleft()
                running[runner.submit(analyze_recording, job)] = job
            time.sleep(POLL_S)
            for future in [f for f in running if f.done()]:
                job = running.pop(future)
                runner.release(future)
                result = by_job[job.respondent]
                again = _outcome(future, job, result, runner, config.retries)
                if again is not None:
                    pending.appendleft(again)
                    hooks.retry(result.recording, again.attempt)
                    continue
                frames_done += result.summary["frames"] if result.summary else 0
                hooks.finished(result)
            live_frames = sum((read_progress(job.folder) or {}).get("frames", 0) for job in running.values())
            hooks.progress(frames_done + live_frames)
    finally:
        runner.close()
    return runner.describe


def _outcome(future: Any, job: RecordingJob, result: RecordingResult, runner: Any,
             retries: int) -> RecordingJob | None:
    """Fill ``result`` from a finished future; the job to run again when its worker died and a
    retry is left, else None."""
    try:
        result.summary = future.result()
        return None
    except AidentifyError as exc:
        result.failure = str(exc)
    except Exception as exc:  # noqa: BLE001 - one recording's fault must not end the study
        if runner.died(exc):
            if job.attempt <= retries:
                return _next_attempt(job)
            result.failure = f"its worker process died {job.attempt} times (killed, or out of memory)"
        else:
            result.failure = f"unexpected {type(exc).__name__}: {exc}"
    return None


def _next_attempt(job: RecordingJob) -> RecordingJob:
    from dataclasses import replace

    return replace(job, attempt=job.attempt + 1)


def _recording_of(job: RecordingJob) -> Recording:
    return Recording(job.recording, job.respondent, job.offset_s, dict(job.groups))


def _finish(config: AnalyzeConfig, inputs: StudyInputs, stimulus: Path | None, run: StudyRun) -> None:
    """Aggregate the finished recordings, then write failed.csv, study.json and report.html."""
    from aidentify.analyze.aggregate import StudyAggregator
    from aidentify.analyze.epochs import AggregateSettings
    from aidentify.analyze.report import write_report

    finished = [r for r in run.results if r.summary is not None]
    duration = stimulus_duration(stimulus) if stimulus else None
    classes = _classes(config)
    settings = AggregateSettings(classes, config.epoch_s, config.threshold, config.baseline_span, duration,
                                 list(inputs.segments), config.moments_top, config.moments_min_change,
                                 group_columns=list(inputs.group_columns))
    started = time.perf_counter()
    if finished:
        with StudyAggregator(settings, run.out) as aggregator:
            for result in finished:
                rec = result.recording
                aggregator.add(rec.respondent, rec.groups, run.out / "recordings" / rec.folder_name / "timeline.csv",
                               rec.offset_s)
            tables = aggregator.finish()
        run.skipped = dict(tables.skipped)
        run.written += [tables.epochs_csv, tables.aggregate_csv, tables.moments_csv, tables.segment_summary_csv]
    run.aggregate_s = time.perf_counter() - started
    run.written.append(_write_failed(run))
    run.written.append(_write_study_json(config, inputs, stimulus, duration, classes, run))
    if finished:
        run.written.append(write_report(run.out, respondents=config.report_respondents))


def _model_path(config: AnalyzeConfig) -> Path:
    """The model file the workers load (the shipped one when ``model`` is null)."""
    from aidentify.inference.modelfile import resolve_model_path

    return resolve_model_path(config.model)


def _classes(config: AnalyzeConfig) -> list[str]:
    from aidentify.inference.classify import ModelInfo
    from aidentify.inference.modelfile import read_metadata

    path = _model_path(config)
    return list(ModelInfo.from_metadata(path, read_metadata(path)).classes)


def stimulus_duration(video: Path) -> float | None:
    """The stimulus video's length in seconds (frames / frame rate), or None when OpenCV cannot tell."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        frames, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0, capture.get(cv2.CAP_PROP_FPS) or 0
    finally:
        capture.release()
    return float(frames / fps) if frames > 0 and 0 < fps < 1000 else None


def _write_failed(run: StudyRun) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FAILED_COLUMNS)
    for result in run.failed:
        writer.writerow([str(result.recording.path), result.failure])
    path = run.out / "failed.csv"
    atomic_write_text(path, buffer.getvalue())
    return path


def _write_study_json(config: AnalyzeConfig, inputs: StudyInputs, stimulus: Path | None,
                      duration: float | None, classes: list[str], run: StudyRun) -> Path:
    import numpy
    import pandas

    finished = [r for r in run.results if r.summary is not None]
    study = {
        "aidentify": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "classes": classes, "groups": list(inputs.group_columns),
        "settings": config.model_dump(mode="json") | {"baseline": config.baseline_span},
        "model": {"path": str(_model_path(config)), "name": Path(config.model).stem if config.model else "default"},
        "detector": config.detect.detector if config.detect.detector != "auto" else "mtcnn",
        "stimulus": {"path": str(Path(stimulus).resolve()), "duration_s": duration} if stimulus else None,
        "segments": [{"name": s.name, "start_s": s.start_s, "end_s": s.end_s} for s in inputs.segments],
        "counts": {"recordings": len(run.results), "analysed": len(finished), "failed": len(run.failed),
                   "reused": sum(r.reused for r in run.results), "frames": run.frames,
                   "ended_early": [r.recording.respondent for r in run.results
                                   if r.summary and r.summary.get("ended_early")],
                   "left_out_of_statistics": len(run.skipped)},
        "timings": {"analyse_s": round(run.analyse_s, 2), "aggregate_s": round(run.aggregate_s, 2),
                    "frames_analysed": run.frames_analysed_now,
                    "fps": round(run.fps, 1) if run.fps is not None else None},
        "runner": run.runner,
        "metric_notes": _metric_notes(),
        "left_out_of_statistics": run.skipped,
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                     "pandas": pandas.__version__},
    }
    path = run.out / "study.json"
    atomic_write_text(path, json.dumps(study, indent=2, ensure_ascii=False) + "\n")
    return path


def _metric_notes() -> dict[str, str]:
    from aidentify.analyze.epochs import METRIC_NOTES

    return dict(METRIC_NOTES)

