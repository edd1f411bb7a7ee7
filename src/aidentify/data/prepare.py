"""``prepare``: cut every kept image down to a square grayscale face crop.

Reads the clean manifest and writes ``<out_dir>/images/<split>/<label>/<id>.png``
plus ``manifest.csv``, ``dropped.csv``, ``report.json`` and ``config.yaml``.
Pixel values stay uint8 on disk; scaling to [0, 1] happens when images are
loaded for training, so one prepared set serves every model.

Per source, face detection is ``always`` (crop the largest detected face;
drop images without one), ``never`` (the image already is a face crop, as in
FER+) or ``fallback`` (crop a face when found, else keep the whole image).
Faces are found by the detector ``faces.detector`` names (``auto``: the
still-photo default) and cut by :func:`aidentify.faces.crop.cut_face`, the
crop path ``evaluate``, ``live`` and ``serve`` share.

Work is spread over a process pool. Progress is journalled in
``<out_dir>.partial/``: an interrupted run resumes where it stopped (same
config and input), and the finished folder replaces the old one only at the
end. Every image file is written under a temporary name and renamed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

import pandas as pd

from aidentify.config import PrepareConfig, dump_config
from aidentify.data.images import read_gray, read_image, worker_count, write_png
from aidentify.faces.crop import cut_face
from aidentify.faces.detector import FaceDetector, make_detector
from aidentify.data.manifest import (
    StageResult,
    DROPPED_NAME,
    EMOTION_VOTE_COLUMNS,
    MANIFEST_NAME,
    absolute_paths,
    counts_by_split_and_class,
    read_manifest,
    relative_path,
    safe_file_stem,
    write_manifest,
    write_table,
)
from aidentify.errors import DataError
from aidentify.files import atomic_write_text, partial_dir_for, promote_dir
from aidentify.processes import lock_output_folder, process_pool
from aidentify.progress import ProgressFn, no_progress

JOURNAL = "journal.csv"
FINGERPRINT = "fingerprint.txt"
JOURNAL_FIELDS = ("id", "outcome", "faces_found", "box")
CHUNK = 64

_worker_detector: FaceDetector | None = None  # one detector per worker process, built by _init_worker


def prepare(config: PrepareConfig, progress: ProgressFn = no_progress) -> StageResult:
    """Run the prepare stage described in the module docstring."""
    with lock_output_folder(Path(config.out_dir)):  # one prepare per staging folder
        return _prepare(config, progress)


def _prepare(config: PrepareConfig, progress: ProgressFn) -> StageResult:
    clean_dir, out_dir = Path(config.clean_dir), Path(config.out_dir)
    frame = read_manifest(clean_dir, produced_by="clean")
    frame["abs_path"] = [str(p) for p in absolute_paths(frame, clean_dir)]
    frame["out_rel"] = [f"images/{s}/{l}/{safe_file_stem(i)}.png"
                        for s, l, i in zip(frame["split"], frame["label"], frame["id"])]
    frame["mode"] = [config.faces.detect_by_source.get(s, config.faces.detect) for s in frame["source"]]

    partial = partial_dir_for(out_dir)
    done, resumed = _open_journal(partial, _fingerprint(config, clean_dir))
    todo = frame[~frame["id"].isin(done)]
    total = len(frame)
    progress("prepare faces", total - len(todo), total)
    with open(partial / JOURNAL, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        finished = total - len(todo)
        for results in _run_chunks(todo, config, partial):
            for row in results:
                writer.writerow(row)
                done[row[0]] = row
            handle.flush()
            finished += len(results)
            progress("prepare faces", finished, total)

    return _finish(frame, done, config, partial, out_dir, resumed)


def _fingerprint(config: PrepareConfig, clean_dir: Path) -> str:
    """Identify the job: a journal is only resumed by the same config and input."""
    digest = hashlib.sha256(dump_config(config).encode())
    digest.update((clean_dir / MANIFEST_NAME).read_bytes())
    return digest.hexdigest()


def _open_journal(partial: Path, fingerprint: str) -> tuple[dict[str, list[str]], int]:
    """Load the journal of an interrupted run of the same job, or start afresh."""
    marker = partial / FINGERPRINT
    if partial.exists() and (not marker.is_file() or marker.read_text().strip() != fingerprint):
        shutil.rmtree(partial)  # our own unfinished output for other settings
    if not partial.exists():
        partial.mkdir(parents=True)
        atomic_write_text(marker, fingerprint)
    done: dict[str, list[str]] = {}
    journal = partial / JOURNAL
    if journal.is_file():
        with open(journal, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if len(row) == len(JOURNAL_FIELDS):  # a torn last line is redone
                    done[row[0]] = row
    return done, len(done)


def _run_chunks(todo: pd.DataFrame, config: PrepareConfig, partial: Path) -> Iterator[list[list[str]]]:
    """Yield journal rows chunk by chunk, from a process pool when it pays off."""
    tasks = list(zip(todo["id"], todo["abs_path"], todo["out_rel"], todo["mode"]))
    chunks = [tasks[i:i + CHUNK] for i in range(0, len(tasks), CHUNK)]
    settings = (config.faces, config.image_size, str(partial))
    workers = min(worker_count(config.workers), max(1, len(chunks)))
    needs_detector = bool((todo["mode"] != "never").any())
    init_args = (config.faces if needs_detector else None,)
    if workers == 1:
        _init_worker(*init_args)
        for chunk in chunks:
            yield _prepare_chunk(chunk, *settings)
        return
    with process_pool(workers, initializer=_init_worker, initargs=init_args) as pool:
        pending = set()
        queue = iter(chunks)
        try:
            for chunk in queue:  # keep a bounded number of chunks in flight
                pending.add(pool.submit(_prepare_chunk, chunk, *settings))
                if len(pending) >= workers * 4:
                    completed, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in completed:
                        yield future.result()
            for future in pending:
                yield future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _init_worker(faces=None) -> None:
    """Build this process's face detector once (none when every image is used whole)."""
    global _worker_detector
    _worker_detector = make_detector(faces, "still") if faces is not None else None


def _prepare_chunk(chunk, faces, image_size: int, partial: str) -> list[list[str]]:
    """Crop one chunk of images; return their journal rows."""
    rows = []
    for image_id, path, out_rel, mode in chunk:
        image = read_gray(Path(path)) if mode == "never" else read_image(Path(path))
        if image is None:
            rows.append([image_id, "unreadable", "0", ""])
            continue
        cut = cut_face(image, _worker_detector, mode, faces.margin, image_size, align=faces.align)
        if cut.crop is None:
            rows.append([image_id, cut.outcome, "0", ""])
            continue
        write_png(Path(partial) / out_rel, cut.crop)
        box = " ".join(str(v) for v in cut.box) if cut.box else ""
        rows.append([image_id, cut.outcome, str(len(cut.faces)), box])
    return rows


def _nothing_kept(outcomes: pd.Series, clean_dir: Path) -> str:
    """Why ``prepare`` kept none of its images, and what to change."""
    counts = ", ".join(f"{k} {v}" for k, v in outcomes.value_counts().items())
    if (outcomes == "no_face").any():
        hint = ("images without a detected face are dropped under faces.detect=always; "
                "--set faces.detect=fallback keeps them whole")
    else:
        hint = f"check the images {clean_dir}/manifest.csv points to, then run `aidentify clean` again"
    return f"prepare kept none of the {len(outcomes)} images ({counts}); nothing was written; {hint}"


def _finish(frame, done, config, partial: Path, out_dir: Path, resumed: int) -> StageResult:
    """Write manifest, dropped list and report from the journal; swap the folder in."""
    journal = pd.DataFrame(list(done.values()), columns=list(JOURNAL_FIELDS))
    merged = frame.merge(journal, on="id", how="left")
    kept_mask = merged["outcome"].isin(["face", "whole", "fallback_whole"])
    if not kept_mask.any():
        raise DataError(_nothing_kept(merged["outcome"], Path(config.clean_dir)))
    kept = merged[kept_mask].copy()
    kept["path"] = kept["out_rel"]
    vote_columns = [c for c in EMOTION_VOTE_COLUMNS if c in kept.columns]
    manifest = kept[["path", "label", "split", "source", "id", *vote_columns,
                     "outcome", "faces_found", "box"]].rename(columns={"outcome": "face"})
    dropped = merged[~kept_mask].copy()
    dropped["path"] = [relative_path(p, out_dir) for p in dropped["abs_path"]]
    dropped["reason"] = dropped["outcome"]
    dropped["detail"] = ["no face found (detect: always)" if o == "no_face" else "could not decode"
                         for o in dropped["outcome"]]
    report = {
        "input_images": int(len(frame)),
        "kept": int(len(manifest)),
        "dropped": int(len(dropped)),
        "image_size": config.image_size,
        "resumed_from": resumed,
        "outcomes": {k: int(v) for k, v in merged["outcome"].value_counts().items()},
        "outcomes_by_source": {
            source: {k: int(v) for k, v in group["outcome"].value_counts().items()}
            for source, group in merged.groupby("source")
        },
        "after": counts_by_split_and_class(manifest),
    }
    write_manifest(manifest.sort_values(["split", "id"]), partial / MANIFEST_NAME)
    write_table(dropped[["path", "label", "split", "source", "id", "reason", "detail"]], partial / DROPPED_NAME)
    atomic_write_text(partial / "report.json", json.dumps(report, indent=2))
    atomic_write_text(partial / "config.yaml", dump_config(config))
    (partial / JOURNAL).unlink()
    (partial / FINGERPRINT).unlink()
    promote_dir(partial, out_dir)
    return StageResult(out_dir, report)
