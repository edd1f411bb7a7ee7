"""One recording through the live pipeline, in a worker process (local or on a Dask worker).

:func:`analyze_recording` is the task every worker runs: it opens the recording, runs the same
Recognizer (model, detector, crop path) as ``live`` headless, and writes
``recordings/<respondent>/timeline.csv`` (live's columns) as it goes, so memory stays flat however
long the recording. The respondent is **one face per frame**: the face nearest (by IoU) the one
chosen in the frame before, or else the largest, not one track id (ids break when a person looks
away). ``all_faces`` keeps every face instead (a group watching together).

Files are written under temporary names and renamed when the recording is done: the timeline,
then ``summary.json`` last, which also records the inputs' fingerprint. A recording whose
``summary.json`` carries the same fingerprint is finished and is not redone. While it runs, the
worker keeps a small ``.progress.json`` (its PID and frames done) for the parent's progress bar.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from aidentify.errors import DataError
from aidentify.files import atomic_write_text

SUMMARY = "summary.json"
TIMELINE = "timeline.csv"
ANNOTATED = "annotated.mp4"
PROGRESS = ".progress.json"
PROGRESS_EVERY_S = 0.5  # how often a worker rewrites its progress file
SAME_FACE_IOU = 0.3  # a face this close to the last chosen one is the same respondent (as the tracker's IoU)
# A recording whose decoder stops before this share of the frames its header announces ended early
# (a file cut short by a crashed recorder or an interrupted copy): its results stand, with a warning.
# Headers round their count (variable frame rate, B-frames), so a few percent short is no alarm.
COMPLETE_SHARE = 0.95


@dataclass(frozen=True)
class RecordingJob:
    """Everything a worker needs (plain, picklable data; paths absolute so remote workers find them).

    ``live`` is the live config as a dict (:meth:`AnalyzeConfig.live_config`); ``fingerprint``
    identifies the recording file, the model and the settings; ``attempt`` counts from 1.
    """

    recording: Path
    respondent: str
    folder: Path
    offset_s: float
    groups: dict[str, str]
    live: dict[str, Any]
    all_faces: bool = False
    annotate: bool = False
    fingerprint: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1


def is_finished(folder: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of a recording already analysed with the same fingerprint, else None."""
    try:
        summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if summary.get("fingerprint") != fingerprint or not (folder / TIMELINE).is_file():
        return None
    return summary


def read_progress(folder: Path) -> dict[str, Any] | None:
    """A running recording's ``{"pid", "frames", "attempt"}``, or None (not started, or done)."""
    try:
        return json.loads((folder / PROGRESS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class RespondentChooser:
    """Picks the respondent's face in each frame: the one nearest the last chosen (IoU at least
    ``SAME_FACE_IOU``), else the largest. Keeps only the last box."""

    def __init__(self) -> None:
        self.last: np.ndarray | None = None

    def pick(self, faces: list) -> list:
        """``faces`` (``FaceResult``) -> a list of at most one face."""
        if not faces:
            return []
        boxes = np.array([f.box for f in faces], dtype=np.float64)
        chosen = int(np.argmax(boxes[:, 2] * boxes[:, 3]))
        if self.last is not None:
            overlaps = [_iou(self.last, box) for box in boxes]
            if max(overlaps) >= SAME_FACE_IOU:
                chosen = int(np.argmax(overlaps))
        self.last = boxes[chosen]
        return [faces[chosen]]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


_cached: tuple[str, Any] | None = None  # (settings key, Recognizer): one per worker process


def _recognizer(live: dict[str, Any]) -> Any:
    """This process's Recognizer for ``live`` settings, loaded once and reused for every recording."""
    global _cached
    from aidentify.config import LiveConfig
    from aidentify.live.recognizer import Recognizer

    key = json.dumps(live, sort_keys=True, default=str)
    if _cached is None or _cached[0] != key:
        _cached = (key, Recognizer(LiveConfig.model_validate(live)))
    return _cached[1]


def _remove_unfinished(folder: Path) -> None:
    """Temporary files a killed worker left (``.timeline.partial-123.csv``…): never read, removed."""
    for path in folder.glob(".*.partial-*"):
        with contextlib.suppress(OSError):
            path.unlink()


def analyze_recording(job: RecordingJob) -> dict[str, Any]:
    """Analyse one recording (see the module docstring); return its summary (also in ``summary.json``).

    Raises :class:`DataError` for a recording that cannot be read or holds no frame; the caller
    records it in ``failed.csv``. Runs in a worker process: loads the model and detectors once per
    process, uses one OpenCV thread (recordings run side by side, one per core).
    """
    import cv2

    cv2.setNumThreads(1)
    folder = Path(job.folder)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_unfinished(folder)
    with contextlib.suppress(FileNotFoundError):
        (folder / SUMMARY).unlink()  # its fingerprint no longer matches: it is being redone
    started = time.perf_counter()
    _write_progress(folder, job, 0)
    try:
        counts = _run(job, folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            (folder / PROGRESS).unlink()
    summary = {
        "respondent": job.respondent, "recording": str(job.recording), "offset_s": job.offset_s,
        "groups": dict(job.groups), **counts,
        "processing_s": round(time.perf_counter() - started, 3), "attempt": job.attempt, "pid": os.getpid(),
        "fingerprint": job.fingerprint,
    }
    atomic_write_text(folder / SUMMARY, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def _run(job: RecordingJob, folder: Path) -> dict[str, Any]:
    """The frame loop: pipeline, respondent choice, timeline (and video) written as it goes."""
    from aidentify.live.capture import open_source
    from aidentify.live.outputs import VideoOutput
    from aidentify.live.timeline import TimelineWriter

    recognizer = _recognizer(job.live)
    source = open_source(None, str(job.recording))
    if source.stills or getattr(source, "folder", False):
        source.close()
        raise DataError(f"{job.recording} is a photo or a folder, not a recording")
    pipeline = recognizer.pipeline_for(stills=False)
    timeline = TimelineWriter(folder / TIMELINE, recognizer.classes)
    video = VideoOutput(folder / ANNOTATED) if job.annotate else None
    chooser = RespondentChooser()
    frames = with_face = 0
    prob_sum = np.zeros(len(recognizer.classes))
    last_t, last_report = 0.0, time.monotonic()
    try:
        while (item := source.read()) is not None:
            image, last_t = item
            annotated, result = pipeline(image, draw=job.annotate)
            if not job.all_faces:
                result = replace(result, faces=chooser.pick(result.faces))
            timeline.add(last_t, result)
            if video is not None:
                video.write(annotated, source.fps or 30.0, None, last_t)
            frames += 1
            if result.faces:
                with_face += 1
                prob_sum += np.mean([f.probs for f in result.faces], axis=0)
            if time.monotonic() - last_report > PROGRESS_EVERY_S:
                _write_progress(folder, job, frames)
                last_report = time.monotonic()
    except BaseException:
        timeline.discard()
        if video is not None:
            video.release()
            video.discard()
        raise
    finally:
        source.close()
    if frames == 0:
        timeline.discard()
        raise DataError(f"{job.recording} holds no frame that could be decoded")
    timeline.commit()
    if video is not None:
        video.release()
        video.commit()
    means = prob_sum / max(with_face, 1)
    return {"frames": frames, "frames_expected": source.frame_count or None,
            "ended_early": ended_early(frames, source.frame_count),
            "frames_with_face": with_face, "face_share": round(with_face / frames, 4),
            "duration_s": round(last_t, 3), "fps": round(float(source.fps or 0.0), 3),
            "mean_probabilities": {c: round(float(p), 4) for c, p in zip(recognizer.classes, means)}
            if with_face else {}}


def ended_early(frames: int, frames_expected: int) -> bool:
    """Whether ``frames`` decoded fall short of ``COMPLETE_SHARE`` of the ``frames_expected`` the
    file's header announces (0: it announces none, and nothing can be said)."""
    return frames_expected > 0 and frames < COMPLETE_SHARE * frames_expected


def _write_progress(folder: Path, job: RecordingJob, frames: int) -> None:
    atomic_write_text(folder / PROGRESS, json.dumps({"pid": os.getpid(), "frames": frames, "attempt": job.attempt}))
