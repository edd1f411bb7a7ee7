"""Recognise a dataset's layout on disk and list its images.

Kaggle mirrors of the same data come in very different shapes. This module
looks at what is on disk and turns any of the supported layouts into one
table (one row per image: path, label, split, votes, id), in this order of
preference:

1. FER+ image folders: ``FER2013Train/`` etc., each with a headerless
   ``label.csv`` of ``name, "(x, y, w, h)", 10 vote counts``.
2. A FER2013 pixel CSV (``emotion, pixels, Usage``), joined by row order with
   FER+'s ``fer2013new.csv`` votes when that file is present.
3. A CSV of file names and labels (AffectNet-HQ's ``labels.csv``, ``pth,label``).
4. Folders named after classes, optionally under split folders.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pandas as pd

from aidentify.classes import (
    CLASSES,
    FER2013_CODES,
    NOT_FACE,
    UNKNOWN,
    VOTE_COLUMNS,
    canonical_class,
    known_class_names,
    suggest_class,
    unknown_folder_reason,
)
from aidentify.data.csvfiles import csv_header, first_row, read_csv_rows, read_csv_table
from aidentify.data.manifest import ALL_VOTE_COLUMNS
from aidentify.errors import DataError
from aidentify.files import atomic_write_bytes, is_junk_name
from aidentify.imagefile import IMAGE_SUFFIXES  # the one list of image formats every stage reads
from aidentify.progress import ProgressFn, no_progress


_SPLIT_SYNONYMS = {
    "train": "train", "training": "train", "trainset": "train", "fer2013train": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val", "publictest": "val",
    "valset": "val", "fer2013valid": "val",
    "test": "test", "testing": "test", "privatetest": "test", "testset": "test",
    "fer2013test": "test",
}
_PATH_COLUMNS = ("pth", "path", "file", "filename", "file_name", "image", "image_path",
                 "img", "name", "image_name", "subdirectory_filepath")
_LABEL_COLUMNS = ("label", "emotion", "expression", "class", "category")
_SPLIT_COLUMNS = ("split", "usage", "set", "subset")

LAYOUTS_LOOKED_FOR = (
    "FER+ image folders with label.csv vote files; "
    "a FER2013 pixel CSV (columns emotion, pixels[, Usage]); "
    "a CSV with an image path column (pth/path/file/...) and a label column; "
    "folders named after emotions (angry, happy, ...), optionally inside train/val/test folders"
)


@dataclass
class DatasetIndex:
    """What :func:`index_dataset` found: the image table and how it read it."""

    layout: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    # images left out and why ("folder angery: not an emotion; did you mean anger?": 4), for evaluate's count
    left_out: dict[str, int] = field(default_factory=dict)


def split_name(folder: str) -> str | None:
    """Map a split folder or Usage value to train/val/test (None if not a split)."""
    key = "".join(ch for ch in folder.lower() if ch.isalnum())
    return _SPLIT_SYNONYMS.get(key)


def index_dataset(
    root: Path, source: str, derived_dir: Path, progress: ProgressFn = no_progress
) -> DatasetIndex:
    """List every image under ``root`` with its label, split and votes.

    ``derived_dir`` receives images decoded from pixel CSVs (the raw files are
    never modified). Paths in the returned frame are absolute.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    files = sorted(_walk_files(root))
    ignored: list[str] = []  # CSVs that looked like label files but list no images here
    readers = (_read_ferplus_folders, _read_pixel_csv,
               functools.partial(_read_label_csv, ignored=ignored), _read_class_folders)
    for reader in readers:
        found = reader(root, files, source, Path(derived_dir), progress)
        if found is not None:
            found.frame = _finish(found.frame, source)
            found.notes = ignored + found.notes
            return found
    shown = ", ".join(sorted({p.relative_to(root).parts[0] for p in files})[:8]) or "nothing"
    also = f"; {'; '.join(ignored)}" if ignored else ""
    raise DataError(f"unrecognised dataset layout in {root} (found: {shown}); looked for: "
                    f"{LAYOUTS_LOOKED_FOR}{also}")


def _walk_files(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not is_junk_name(d)]
        for name in filenames:
            if not is_junk_name(name):
                yield Path(dirpath) / name


def _finish(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    for column in ALL_VOTE_COLUMNS:
        if column not in frame.columns:
            frame[column] = np.nan
    frame["source"] = source
    frame["split"] = frame["split"].fillna("")
    return frame[["path", "label", "split", "source", "id", *ALL_VOTE_COLUMNS]].reset_index(drop=True)


def _image_id(source: str, root: Path, path: Path) -> str:
    return f"{source}/{path.relative_to(root).with_suffix('').as_posix()}"


def _votes_label(votes: list[float]) -> str:
    """The raw plurality label of 10 vote counts (``clean`` applies the real rule)."""
    return VOTE_COLUMNS[int(np.argmax(votes))]


# ------------------------------------------------------------------ FER+ folders
def _is_ferplus_label_file(path: Path) -> bool:
    if path.name.lower() != "label.csv":
        return False
    first = first_row(path)
    if not first or len(first) != 12:
        return False
    try:
        [int(float(v)) for v in first[2:]]
    except ValueError:
        return False
    return True


def _read_ferplus_folders(root, files, source, derived_dir, progress) -> DatasetIndex | None:
    label_files = [p for p in files if _is_ferplus_label_file(p)]
    if not label_files:
        return None
    rows, notes = [], []
    for label_file in label_files:
        folder = label_file.parent
        split = split_name(folder.name) or ""
        for record in read_csv_rows(label_file):
            if len(record) == 12:
                votes = [float(v) for v in record[2:]]
                image = folder / record[0]
                rows.append({
                    "path": str(image), "label": _votes_label(votes), "split": split,
                    "id": _image_id(source, root, image),
                    **dict(zip(ALL_VOTE_COLUMNS, votes)),
                })
        if not split:
            notes.append(f"{folder.name}: not a known split name, its images get one in `clean`")
    return DatasetIndex("ferplus-folders", pd.DataFrame(rows), notes)


# -------------------------------------------------------------- FER2013 pixels
def _read_pixel_csv(root, files, source, derived_dir, progress) -> DatasetIndex | None:
    candidates = [p for p in files if p.suffix.lower() == ".csv"
                  and {"emotion", "pixels"} <= set(csv_header(p))]
    if not candidates:
        return None
    # Prefer the complete file (with Usage) over train.csv/test.csv excerpts.
    candidates.sort(key=lambda p: ("usage" not in csv_header(p), p.name != "fer2013.csv", str(p)))
    pixel_csv = candidates[0]
    notes = [f"ignored {p.relative_to(root)} (using {pixel_csv.relative_to(root)})" for p in candidates[1:]]
    table = read_csv_table(pixel_csv)
    usage = table["usage"].map(lambda u: split_name(u) or "") if "usage" in table else pd.Series([""] * len(table))
    labels = [FER2013_CODES[int(code)] if code.strip().isdigit() and int(code) < 7 else UNKNOWN
              for code in table["emotion"]]
    votes = _ferplus_votes_for(files, table, root, notes)
    out_dir = derived_dir / "pixels"
    rows = []
    total = len(table)
    for i, pixels in enumerate(table["pixels"]):
        values = np.array(pixels.split(), dtype=np.uint8)
        side = int(round(np.sqrt(values.size)))
        image_id = f"{source}/{pixel_csv.stem}/row{i:05d}"
        path = out_dir / f"row{i:05d}.png"
        if side * side == values.size and values.size:
            if not path.exists():
                ok, encoded = cv2.imencode(".png", values.reshape(side, side))
                atomic_write_bytes(path, encoded.tobytes())
        else:
            path = out_dir / f"row{i:05d}.invalid"  # clean reports it as unreadable
        row = {"path": str(path), "label": labels[i], "split": usage.iloc[i], "id": image_id}
        if votes is not None and votes[i] is not None:
            row.update(dict(zip(ALL_VOTE_COLUMNS, votes[i])))
            row["label"] = _votes_label(votes[i])
        rows.append(row)
        if i % 1000 == 0 or i == total - 1:
            progress("decode pixels", i + 1, total)
    layout = "fer2013-pixels+ferplus-votes" if votes is not None else "fer2013-pixels"
    return DatasetIndex(layout, pd.DataFrame(rows), notes)


def _ferplus_votes_for(files, table: pd.DataFrame, root: Path, notes: list[str]):
    """FER+ votes for each pixel row, joined by row order within each Usage group.

    Row order, not image name, is the key: some names repeat and 173 rows
    have none (FER+ marks those as not faces).
    """
    vote_files = [p for p in files if p.name.lower() == "fer2013new.csv"]
    if not vote_files:
        return None
    votes_table = read_csv_table(vote_files[0])
    vote_cols = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                 "contempt", "unknown", "nf"]
    if not set(vote_cols) <= set(votes_table.columns):
        notes.append(f"{vote_files[0].relative_to(root)} lacks FER+ vote columns; using FER2013 labels")
        return None
    result: list[list[float] | None] = [None] * len(table)
    pixel_usage = table["usage"] if "usage" in table else pd.Series(["all"] * len(table))
    vote_usage = votes_table["usage"] if "usage" in votes_table else pd.Series(["all"] * len(votes_table))
    for group in pixel_usage.unique():
        pixel_rows = np.flatnonzero(pixel_usage.to_numpy() == group)
        vote_rows = np.flatnonzero(vote_usage.to_numpy() == group)
        if len(vote_rows) == 0:
            notes.append(f"no FER+ votes for {group} rows; they keep FER2013 labels")
            continue
        if len(vote_rows) != len(pixel_rows):
            raise DataError(
                f"fer2013new.csv has {len(vote_rows)} {group} rows but the pixel CSV has "
                f"{len(pixel_rows)}; the two files must list the same images in the same order"
            )
        for p_row, v_row in zip(pixel_rows, vote_rows):
            record = votes_table.iloc[v_row]
            counts = [float(record[c] or 0) for c in vote_cols]
            if not record.get("image name", "x").strip():
                counts = [0.0] * 9 + [max(sum(counts), 1.0)]  # no image name: FER+ says not a face
            result[p_row] = counts
    return result


# ------------------------------------------------------------- CSV of labels
def _read_label_csv(root, files, source, derived_dir, progress, ignored: list[str]) -> DatasetIndex | None:
    """The first CSV whose path and label columns list images that are here.

    A CSV with the right column names whose paths mostly do not resolve to
    image files in the folder (a ``live --timeline`` log, say) is not a label
    file: it is skipped, and ``ignored`` gets a note naming it.
    """
    for csv_path in (p for p in files if p.suffix.lower() == ".csv"):
        header = csv_header(csv_path)
        path_col = next((c for c in _PATH_COLUMNS if c in header), None)
        label_col = next((c for c in _LABEL_COLUMNS if c in header), None)
        if path_col is None or label_col is None or "pixels" in header:
            continue
        table = read_csv_table(csv_path)
        images = [_resolve_listed_image(p.strip(), csv_path.parent, root) for p in table[path_col]]
        found = sum(_is_image_file(image) for image in images)
        shown = csv_path.relative_to(root)
        if found * 2 <= len(images):
            ignored.append(_not_a_label_file(shown, path_col, label_col, len(images), found))
            continue
        return _label_csv_index(root, source, csv_path, table, images, path_col, label_col, found)
    return None


def _label_csv_index(root, source, csv_path, table, images, path_col, label_col, found) -> DatasetIndex:
    split_col = next((c for c in _SPLIT_COLUMNS if c in table.columns), None)
    rows, unknown = [], set()
    for (_, record), image in zip(table.iterrows(), images):
        label = canonical_class(record[label_col])
        if label is None:
            unknown.add(record[label_col])
            label = UNKNOWN
        split = split_name(record[split_col]) or "" if split_col else _split_from_parents(image, root)
        rows.append({"path": str(image), "label": label, "split": split,
                     "id": _image_id(source, root, image) if image.is_relative_to(root)
                     else f"{source}/{record[path_col].strip()}"})
    notes = [f"labels from {csv_path.relative_to(root)} (they take precedence over folder names)"]
    if found < len(images):
        notes.append(f"{len(images) - found} of the {len(images)} images it lists are not here "
                     "(dropped in clean as missing)")
    if unknown:
        notes.append(f"labels not mapped to a class (dropped in clean): {sorted(unknown)[:10]}")
    return DatasetIndex("label-csv", pd.DataFrame(rows), notes)


def _not_a_label_file(shown: Path, path_col: str, label_col: str, listed: int, found: int) -> str:
    why = (f"{listed - found} of the {listed} paths it lists are not image files in this folder"
           if listed else "it lists no images")
    return f"ignored {shown} ({path_col}/{label_col} columns, but {why}): not a label file"


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _resolve_listed_image(relative: str, csv_dir: Path, root: Path) -> Path:
    for base in (csv_dir, root):
        candidate = base / relative
        if candidate.exists():
            return candidate
    return csv_dir / relative  # missing: clean drops it as missing


def _split_from_parents(image: Path, root: Path) -> str:
    try:
        parts = image.relative_to(root).parts[:-1]
    except ValueError:
        return ""
    for part in parts:
        split = split_name(part)
        if split:
            return split
    return ""


# ------------------------------------------------------------ class folders
def _read_class_folders(root, files, source, derived_dir, progress) -> DatasetIndex | None:
    rows, skipped_dirs = [], Counter()
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        label = canonical_class(path.parent.name)
        if label not in CLASSES and label not in (UNKNOWN, NOT_FACE):
            skipped_dirs[path.parent.relative_to(root).as_posix()] += 1
            continue
        rows.append({"path": str(path), "label": label,
                     "split": _split_from_parents(path.parent, root),
                     "id": _image_id(source, root, path)})
    if not rows:
        return None
    left_out = {unknown_folder_reason(folder): n for folder, n in sorted(skipped_dirs.items())}
    notes = [unknown_folders_note(skipped_dirs)] if skipped_dirs else []
    return DatasetIndex("class-folders", pd.DataFrame(rows), notes, left_out)


def unknown_folders_note(skipped: Counter) -> str:
    """The note for images in folders not named after an emotion, each folder with its count and,
    for a near miss, the class it was probably meant to be (shown by ``download`` and ``evaluate``)."""
    shown = []
    for folder, n in sorted(skipped.items())[:8]:
        close = suggest_class(PurePosixPath(folder).name)
        shown.append(f"{folder} ({n}{f'; did you mean {close}?' if close else ''})")
    more = f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""
    return (f"ignored {sum(skipped.values())} images in folders not named after an emotion: {', '.join(shown)}{more} "
            f"(known names: {', '.join(known_class_names())})")
