"""The manifest: how stages talk to each other through files on disk.

Every stage writes ``manifest.csv`` with one row per image it keeps. Paths are
relative to the manifest's own folder, so a data folder can be moved or
copied as a whole. Required columns: ``path``, ``label`` (canonical class
name), ``split`` (``train``/``val``/``test``; empty in a raw manifest when the
dataset has no split), ``source`` (dataset name) and ``id`` (the original
image's id, stable across stages). Stages add their own columns (votes,
face-detection outcome, ``parent_id`` for augmented copies).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aidentify.classes import CLASSES, VOTE_COLUMNS
from aidentify.errors import DataError, StageInputMissing
from aidentify.files import atomic_write_text, not_utf8_message, os_error_cause

MANIFEST_NAME = "manifest.csv"
DROPPED_NAME = "dropped.csv"
REQUIRED_COLUMNS = ("path", "label", "split", "source", "id")
SPLITS = ("train", "val", "test")
NO_SPLIT = "no split"  # how reports show images whose dataset gives them no split

# Vote columns hold FER+ tagger counts; empty where a dataset has no votes.
VOTE_PREFIX = "votes_"
EMOTION_VOTE_COLUMNS = tuple(VOTE_PREFIX + name for name in CLASSES)
ALL_VOTE_COLUMNS = tuple(VOTE_PREFIX + name for name in VOTE_COLUMNS)


@dataclass
class StageResult:
    """What a data stage produced (its folder and report), for the CLI to show."""

    out_dir: Path
    report: dict


def write_manifest(frame: pd.DataFrame, path: Path) -> None:
    """Write a manifest atomically after checking its required columns."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"internal: manifest {path} lacks columns {missing}")
    ordered = list(REQUIRED_COLUMNS) + [c for c in frame.columns if c not in REQUIRED_COLUMNS]
    atomic_write_text(Path(path), frame[ordered].to_csv(index=False))


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write any CSV table (dropped lists, timelines) atomically."""
    atomic_write_text(Path(path), frame.to_csv(index=False))


def read_manifest(folder: Path, produced_by: str) -> pd.DataFrame:
    """Read ``folder/manifest.csv``, or say which command creates it.

    ``produced_by`` is the command a user runs to create the manifest, used in
    the error message when it is missing.
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise StageInputMissing(
            f"no manifest at {path}; run `aidentify {produced_by}` first "
            f"(or point this stage at the right folder with --config/--set)"
        )
    try:
        frame = pd.read_csv(path, dtype={"id": str, "split": str, "label": str, "path": str,
                                          "source": str, "parent_id": str}, keep_default_na=False,
                            encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(not_utf8_message(path, exc)) from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {os_error_cause(exc, path)}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path} is not an AIdentify manifest (missing columns: {', '.join(missing)})")
    if frame.empty:
        raise DataError(f"{path} lists no images; run `aidentify {produced_by}` again and check "
                        "what it reports")
    for column in ALL_VOTE_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def absolute_paths(frame: pd.DataFrame, manifest_dir: Path) -> list[Path]:
    """Resolve a manifest's relative ``path`` column against its folder."""
    base = Path(manifest_dir)
    return [Path(os.path.normpath(base / p)) for p in frame["path"]]


def relative_path(target: Path, manifest_dir: Path) -> str:
    """The path to write in a manifest living in ``manifest_dir`` (POSIX separators)."""
    rel = os.path.relpath(Path(target).resolve(), Path(manifest_dir).resolve())
    return Path(rel).as_posix()


def counts_by_split_and_class(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{split: {class: n}}`` for reports; every canonical class appears."""
    table: dict[str, dict[str, int]] = {}
    if frame.empty:
        return table
    grouped = frame.groupby(["split", "label"]).size()
    for (split, label), count in grouped.items():
        table.setdefault(split or NO_SPLIT, {})[label] = int(count)
    return table


def safe_file_stem(image_id: str) -> str:
    """A file name derived from an image id (ids contain '/' separators)."""
    return image_id.replace("/", "__").replace("\\", "__").replace(":", "_")


def record_drop(drops: list[pd.DataFrame], rows: pd.DataFrame, reason: str, detail) -> None:
    """Append ``rows`` to ``drops`` with a ``reason`` and a ``detail`` (one string, or one per row)."""
    if len(rows) == 0:
        return
    out = rows[["abs_path", "label", "split", "source", "id"]].copy()
    out["reason"] = reason
    out["detail"] = detail if isinstance(detail, str) else list(detail)
    drops.append(out)
