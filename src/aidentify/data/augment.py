"""``augment``: balance rare classes of the training split with mirrored and
rotated copies.

Only ``train`` is augmented; validation and test images pass through
untouched, and augmented copies are made after the split, so no copy of an
evaluation image can reach training. Writes ``<out_dir>/images/...`` for the
new copies and a ``manifest.csv`` listing the whole dataset (original rows
point back into the prepared folder; new rows carry ``parent_id``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from aidentify.classes import CLASSES
from aidentify.config import AugmentConfig, dump_config
from aidentify.data.images import read_gray, write_png
from aidentify.data.manifest import (
    StageResult,
    MANIFEST_NAME,
    absolute_paths,
    counts_by_split_and_class,
    read_manifest,
    relative_path,
    safe_file_stem,
    write_manifest,
)
from aidentify.errors import ConfigError, DataError
from aidentify.files import atomic_write_text, fresh_partial_dir
from aidentify.processes import lock_output_folder
from aidentify.progress import ProgressFn, no_progress

Variant = tuple[bool, float]  # (mirror, rotation angle in degrees)


def variants(mirror: bool, angles: list[float]) -> list[Variant]:
    """Every transform we may apply, mildest first (identity excluded)."""
    out: list[Variant] = [(True, 0.0)] if mirror else []
    for angle in sorted(angles, key=abs):
        if angle:
            out.append((False, float(angle)))
            if mirror:
                out.append((True, float(angle)))
    return out


def apply_variant(image: np.ndarray, variant: Variant) -> np.ndarray:
    """Mirror and/or rotate a square crop about its centre (edges reflected)."""
    mirror, angle = variant
    if mirror:
        image = cv2.flip(image, 1)
    if angle:
        h, w = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
    return image


def variant_tag(variant: Variant) -> str:
    mirror, angle = variant
    parts = (["mirror"] if mirror else []) + ([f"rot{angle:+g}"] if angle else [])
    return "-".join(parts)


def class_targets(counts: pd.Series, config: AugmentConfig) -> dict[str, int]:
    """How many training images each class should reach."""
    unknown = sorted(set(config.per_class) - set(CLASSES))
    if unknown:
        raise ConfigError(f"augment per_class names unknown classes {unknown}; classes: {', '.join(CLASSES)}")
    present = counts[counts > 0]
    if config.target == "median":
        base = int(present.median()) if len(present) else 0
    elif config.target == "max":
        base = int(present.max()) if len(present) else 0
    else:
        base = int(config.target)
    return {label: int(config.per_class.get(label, base)) for label in present.index}


def plan_copies(train: pd.DataFrame, config: AugmentConfig) -> list[tuple[int, Variant]]:
    """Pick (row index, variant) pairs to create, spread evenly over each class.

    Each image gets its first variant before any image gets a second one; a
    class never gets more than ``len(variants)`` copies of one image.
    """
    options = variants(config.mirror, config.angles)
    rng = np.random.default_rng(config.seed)
    counts = train["label"].value_counts()
    plan = []
    for label, target in sorted(class_targets(counts, config).items()):
        members = np.array(sorted(train.index[train["label"] == label]))
        need = min(max(0, target - len(members)), len(members) * len(options))
        rng.shuffle(members)
        for k in range(need):
            plan.append((int(members[k % len(members)]), options[k // len(members)]))
    return plan


def augment(config: AugmentConfig, progress: ProgressFn = no_progress) -> StageResult:
    """Run the augment stage described in the module docstring."""
    with lock_output_folder(Path(config.out_dir)):
        return _augment(config, progress)


def _augment(config: AugmentConfig, progress: ProgressFn) -> StageResult:
    prepared_dir, out_dir = Path(config.prepared_dir), Path(config.out_dir)
    frame = read_manifest(prepared_dir, produced_by="prepare")
    absolute = absolute_paths(frame, prepared_dir)
    frame["path"] = [relative_path(p, out_dir) for p in absolute]
    frame["abs_path"] = [str(p) for p in absolute]
    frame["parent_id"] = ""
    train = frame[frame["split"] == "train"]
    if train.empty:
        raise DataError(f"{prepared_dir / MANIFEST_NAME} has no training images to balance")
    plan = plan_copies(train, config)
    before = counts_by_split_and_class(frame)

    new_rows = []
    with fresh_partial_dir(out_dir) as partial:
        for n, (index, variant) in enumerate(plan, 1):
            parent = frame.loc[index]
            image = read_gray(Path(parent["abs_path"]))
            if image is None:
                raise DataError(f"cannot read prepared image {parent['abs_path']}; run `aidentify prepare` again")
            tag = variant_tag(variant)
            rel = f"images/{parent['label']}/{safe_file_stem(parent['id'])}__{tag}.png"
            write_png(partial / rel, apply_variant(image, variant))
            row = parent.to_dict()
            row.update(path=rel, id=f"{parent['id']}#{tag}", parent_id=parent["id"])
            new_rows.append(row)
            if n % 200 == 0 or n == len(plan):
                progress("augment", n, len(plan))
        result = pd.concat([frame, pd.DataFrame(new_rows, columns=frame.columns)], ignore_index=True)
        result = result.drop(columns=["abs_path"])
        report = {
            "input_images": int(len(frame)),
            "added": len(new_rows),
            "output_images": int(len(result)),
            "targets": class_targets(train["label"].value_counts(), config),
            "variants": [variant_tag(v) for v in variants(config.mirror, config.angles)],
            "before": before,
            "after": counts_by_split_and_class(result),
        }
        write_manifest(result, partial / MANIFEST_NAME)
        atomic_write_text(partial / "report.json", json.dumps(report, indent=2))
        atomic_write_text(partial / "config.yaml", dump_config(config))
    return StageResult(out_dir, report)
