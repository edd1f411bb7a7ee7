"""``clean``: decide which raw images are fit to learn from, and say why not.

Reads every downloaded dataset's raw manifest and writes ``<out_dir>/``:

- ``manifest.csv``: the kept images (paths point into the raw folders, which
  are never modified), with FER+ votes kept for soft-label training;
- ``dropped.csv``: every dropped image with its reason and a detail;
- ``report.json``: counts per split and class before and after;
- ``config.yaml``: the resolved config.

Drops, in order: missing or unreadable files; images over ``max_pixels``
(judged from the header, never decoded); blank images; FER+ vote
outcomes (unknown or not-a-face majorities, no agreement under the rule);
exact and near duplicates (perceptual hash), keeping the copy in the most
protected split (test > val > train) so a duplicate never leaks a test
image into training. Then datasets lacking a validation or test split get
one carved, stratified by class, from their training images.

With ``votes.ambiguous_train``, FER+ training images whose taggers did not
agree are kept for soft-label training (cross-entropy on the vote
distribution, FER+'s "crossentropy" scheme, Barsoum et al. 2016) instead of
dropped, when most of their counted votes are for an emotion. They stay in
train: they are never carved into val or test (whose labels must follow
the rule), and they never displace an agreed image as a duplicate's keeper,
so the agreed images, and every split carved from them, are the same with
the option on or off.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from aidentify.classes import CLASSES, NOT_FACE, UNKNOWN, VOTE_COLUMNS
from aidentify.config import CleanConfig, dump_config
from aidentify.data.dedup import add_distinct, drop_duplicates
from aidentify.data.images import header_size, perceptual_hash, read_gray, worker_count
from aidentify.data.manifest import (
    ALL_VOTE_COLUMNS,
    DROPPED_NAME,
    EMOTION_VOTE_COLUMNS,
    MANIFEST_NAME,
    StageResult,
    absolute_paths,
    counts_by_split_and_class,
    read_manifest,
    record_drop,
    relative_path,
    write_manifest,
    write_table,
)
from aidentify.errors import DataError, StageInputMissing
from aidentify.files import atomic_write_text, fresh_partial_dir, is_unfinished_name
from aidentify.processes import lock_output_folder, process_pool
from aidentify.progress import ProgressFn, no_progress

def clean(config: CleanConfig, progress: ProgressFn = no_progress) -> StageResult:
    """Run the clean stage described in the module docstring."""
    with lock_output_folder(Path(config.out_dir)):
        return _clean(config, progress)


def _clean(config: CleanConfig, progress: ProgressFn) -> StageResult:
    raw = _load_raw_manifests(Path(config.raw_dir), config.sources)
    before = counts_by_split_and_class(raw)
    drops: list[pd.DataFrame] = []

    keep = apply_vote_rule(raw, config.votes.rule, config.votes.drop_single_votes, drops,
                           keep_ambiguous_train=config.votes.ambiguous_train)
    keep = _inspect_images(keep, config, drops, progress)
    if config.dedup.enabled:
        keep = _drop_duplicates_agreed_first(keep, config.dedup.max_distance, drops)
    if keep.empty:
        raise DataError(_nothing_kept(len(raw), drops, Path(config.raw_dir)))
    keep, carved = _carve_missing_splits(keep, config)

    out_dir = Path(config.out_dir)
    keep = keep.copy()
    keep["path"] = [relative_path(p, out_dir) for p in keep["abs_path"]]
    dropped = pd.concat(drops, ignore_index=True) if drops else pd.DataFrame(
        columns=["path", "label", "split", "source", "id", "reason", "detail"])
    dropped["path"] = [relative_path(p, out_dir) for p in dropped["abs_path"]] if len(dropped) else []
    columns = ["path", "label", "split", "source", "id", *EMOTION_VOTE_COLUMNS,
               "width", "height", "phash"]
    report = {
        "input_images": int(len(raw)),
        "kept": int(len(keep)),
        "dropped": int(len(dropped)),
        "dropped_by_reason": {k: int(v) for k, v in dropped["reason"].value_counts().items()},
        "carved_splits": carved,
        "ambiguous_train": int(keep["ambiguous"].sum()),
        "warnings": _empty_carve_warnings(carved, config),
        "before": before,
        "after": counts_by_split_and_class(keep),
    }
    with fresh_partial_dir(out_dir) as partial:
        write_manifest(keep[columns].sort_values(["split", "id"]), partial / MANIFEST_NAME)
        write_table(dropped[["path", "label", "split", "source", "id", "reason", "detail"]],
                    partial / DROPPED_NAME)
        atomic_write_text(partial / "report.json", json.dumps(report, indent=2))
        atomic_write_text(partial / "config.yaml", dump_config(config))
    return StageResult(out_dir, report)


def _load_raw_manifests(raw_dir: Path, sources: list[str] | None) -> pd.DataFrame:
    if sources is None:
        folders = sorted(p.parent for p in raw_dir.glob(f"*/{MANIFEST_NAME}")
                         if not is_unfinished_name(p.parent.name))  # a killed download's .old/.partial
        if not folders:
            raise StageInputMissing(
                f"no downloaded datasets in {raw_dir}; run `aidentify download ferplus` "
                "(or `aidentify download ferplus --from ARCHIVE`) first"
            )
    else:
        folders = [raw_dir / name for name in sources]
    frames = []
    for folder in folders:
        frame = read_manifest(folder, produced_by=f"download {folder.name}")
        frame["abs_path"] = [str(p) for p in absolute_paths(frame, folder)]
        for column in ALL_VOTE_COLUMNS:
            if column not in frame.columns:
                frame[column] = np.nan
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _nothing_kept(total: int, drops: list[pd.DataFrame], raw_dir: Path) -> str:
    """Why ``clean`` kept none of ``total`` images: counts per reason and one example."""
    dropped = pd.concat(drops, ignore_index=True)
    reasons = ", ".join(f"{reason} {n}" for reason, n in dropped["reason"].value_counts().items())
    first = dropped.iloc[0]
    return (f"clean kept none of the {total} images ({reasons}; e.g. {first['abs_path']}: "
            f"{first['detail']}); nothing was written. Check the dataset in {raw_dir} "
            "(its manifest.csv lists the images), or download it again with --force")


def apply_vote_rule(raw: pd.DataFrame, rule: str, drop_single_votes: bool, drops: list,
                    keep_ambiguous_train: bool = False) -> pd.DataFrame:
    """Label vote-carrying images by FER+'s rule; drop unknown, not-a-face, no agreement.

    Used by ``clean`` and by ``evaluate`` on FER+ folders (the FER+ protocol).
    Rows without votes keep their label; unknown and not-a-face labels are
    dropped. Dropped rows are appended to ``drops`` with their reason.
    With ``keep_ambiguous_train``, training rows (split ``train`` or none)
    with no agreement are kept instead when more than half of their counted
    votes are for emotions, labelled with their top emotion (the first in
    ``CLASSES`` order on a tie). The returned frame's boolean ``ambiguous``
    column marks them.
    """
    votes = raw[list(ALL_VOTE_COLUMNS)].to_numpy(dtype=float)
    has_votes = ~np.isnan(votes).any(axis=1)
    labels = raw["label"].to_numpy(dtype=object).copy()
    reasons = np.array([""] * len(raw), dtype=object)
    ambiguous = np.zeros(len(raw), dtype=bool)
    if has_votes.any():
        counted = votes[has_votes].copy()
        if drop_single_votes:
            counted[counted <= 1.0] = 0.0  # FER+ treats a lone vote as an outlier
        top = counted.argmax(axis=1)
        top_votes = counted.max(axis=1)
        totals = counted.sum(axis=1)
        if rule == "majority":
            agreed = top_votes > 0.5 * totals
        else:
            agreed = (counted == top_votes[:, None]).sum(axis=1) == 1  # a unique plurality
        agreed &= totals > 0
        voted_labels = np.array(VOTE_COLUMNS, dtype=object)[top]
        if keep_ambiguous_train:
            emotion_votes = counted[:, :len(CLASSES)]
            in_train = np.isin(raw.loc[has_votes, "split"].to_numpy(dtype=object), ["train", ""])
            kept_anyway = (~agreed & in_train & (totals > 0)
                           & (emotion_votes.sum(axis=1) > 0.5 * totals))
            voted_labels = np.where(kept_anyway, np.array(CLASSES, dtype=object)[emotion_votes.argmax(axis=1)],
                                    voted_labels)
            ambiguous[has_votes] = kept_anyway
            agreed |= kept_anyway
        voted_reasons = np.where(~agreed, "no_agreement", "")
        voted_reasons = np.where(agreed & (voted_labels == UNKNOWN), "unknown", voted_reasons)
        voted_reasons = np.where(agreed & (voted_labels == NOT_FACE), "not_face", voted_reasons)
        labels[has_votes] = voted_labels
        reasons[has_votes] = voted_reasons
        raw = raw.copy()
        raw.loc[has_votes, list(ALL_VOTE_COLUMNS)] = counted
    no_votes = ~has_votes
    reasons[no_votes & (labels == UNKNOWN)] = "unknown"
    reasons[no_votes & (labels == NOT_FACE)] = "not_face"
    reasons[no_votes & ~np.isin(labels, CLASSES) & (reasons == "")] = "unknown"
    raw = raw.assign(label=labels, ambiguous=ambiguous)
    for reason in ("not_face", "unknown", "no_agreement"):
        mask = reasons == reason
        detail = f"FER+ votes ({rule} rule)" if reason == "no_agreement" else "label"
        record_drop(drops, raw[mask], reason, detail)
    return raw[reasons == ""].reset_index(drop=True)


def _inspect_one(path: str, max_pixels: int) -> tuple[str, int, int, float, str, int]:
    """(problem, width, height, std, md5 of pixels, perceptual hash) for one file.

    An image whose header announces more than ``max_pixels`` is refused before
    decoding (a 390 KB PNG can decode into gigabytes).
    """
    size = header_size(Path(path))
    if size is not None and size[0] * size[1] > max_pixels:
        return "too_large", size[0], size[1], 0.0, "", 0
    gray = read_gray(Path(path))
    if gray is None:
        return ("missing" if not Path(path).is_file() else "unreadable"), 0, 0, 0.0, "", 0
    md5 = hashlib.md5(gray.tobytes() + str(gray.shape).encode()).hexdigest()
    return "", gray.shape[1], gray.shape[0], float(gray.std()), md5, perceptual_hash(gray)


def _inspect_images(frame: pd.DataFrame, config: CleanConfig, drops, progress) -> pd.DataFrame:
    paths = list(frame["abs_path"])
    inspect = functools.partial(_inspect_one, max_pixels=config.max_pixels)
    results = []
    workers = worker_count(config.workers)
    total = len(paths)
    if workers == 1 or total < 2000:
        iterator = map(inspect, paths)
        results = _collect(iterator, total, progress)
    else:
        with process_pool(workers) as pool:
            results = _collect(pool.map(inspect, paths, chunksize=256), total, progress)
    problem, width, height, std, md5, phash = zip(*results) if results else ([],) * 6
    frame = frame.assign(problem=list(problem), width=list(width), height=list(height),
                         std=list(std), md5=list(md5), phash_int=list(phash))
    record_drop(drops, frame[frame["problem"] == "missing"], "missing", "file not found")
    record_drop(drops, frame[frame["problem"] == "unreadable"], "unreadable", "could not decode the file")
    large = frame["problem"] == "too_large"
    record_drop(drops, frame[large], "too_large",
                [f"{w}x{h} = {w * h} pixels > max_pixels {config.max_pixels}; not decoded"
                 for w, h in zip(frame.loc[large, "width"], frame.loc[large, "height"])])
    frame = frame[frame["problem"] == ""]
    blank = frame["std"] < config.min_std
    record_drop(drops, frame[blank], "blank",
                 [f"pixel std {s:.1f} < min_std {config.min_std}" for s in frame.loc[blank, "std"]])
    frame = frame[~blank].reset_index(drop=True)
    frame["phash"] = [f"{h:016x}" for h in frame["phash_int"]]
    return frame


def _collect(iterator, total: int, progress: ProgressFn) -> list:
    results = []
    for i, result in enumerate(iterator, 1):
        results.append(result)
        if i % 500 == 0 or i == total:
            progress("inspect images", i, total)
    return results


def _drop_duplicates_agreed_first(frame: pd.DataFrame, max_distance: int, drops) -> pd.DataFrame:
    """Deduplicate the agreed images, then add the ambiguous ones that duplicate none of them.

    So the agreed images kept, and the splits carved from them, do not
    depend on ``votes.ambiguous_train``.
    """
    ambiguous = frame["ambiguous"].to_numpy(dtype=bool)
    agreed = drop_duplicates(frame[~ambiguous].reset_index(drop=True), max_distance, drops)
    if not ambiguous.any():
        return agreed
    return add_distinct(agreed, frame[ambiguous].reset_index(drop=True), max_distance, drops)


def _empty_carve_warnings(carved: dict[str, dict[str, int]], config: CleanConfig) -> list[str]:
    """One line per carved split that got no image (too few images per class)."""
    warnings = []
    for source, splits in carved.items():
        for split, count in splits.items():
            if count:
                continue
            fraction = getattr(config.splits, f"{split}_fraction")
            needed = _images_for_one(fraction)
            warnings.append(
                f"{source}: the carved {split} split is empty ({fraction:g} of a class's training "
                f"images rounds to none; a class needs at least {needed}); add images, or give the "
                f"dataset its own {split} split (a {split}/ folder)"
                + ("; train needs val images" if split == "val" else ""))
    return warnings


def _images_for_one(fraction: float) -> int:
    """The fewest images of a class from which ``fraction`` carves at least one."""
    n = 1
    while int(round(fraction * n)) < 1:
        n += 1
    return n


def _carve_missing_splits(frame: pd.DataFrame, config: CleanConfig) -> tuple[pd.DataFrame, dict]:
    """Give datasets without val/test splits ones carved from their training images.

    Stratified by class and seeded, so the same config gives the same split.
    Images with no split at all are training images. Ambiguous images are
    never carved: val and test labels must follow the vote rule.
    """
    frame = frame.copy()
    frame.loc[frame["split"] == "", "split"] = "train"
    rng = np.random.default_rng(config.splits.seed)
    carved: dict[str, dict[str, int]] = {}
    for source in sorted(frame["source"].unique()):
        in_source = frame["source"] == source
        for split, fraction in (("test", config.splits.test_fraction), ("val", config.splits.val_fraction)):
            if fraction <= 0 or (frame.loc[in_source, "split"] == split).any():
                continue
            pool = frame[in_source & (frame["split"] == "train") & ~frame["ambiguous"]]
            chosen = []
            for _, members in pool.groupby("label").groups.items():
                members = np.array(sorted(members))
                take = int(round(fraction * len(members)))
                if take:
                    chosen.extend(rng.choice(members, size=take, replace=False))
            frame.loc[chosen, "split"] = split
            carved.setdefault(source, {})[split] = len(chosen)
    return frame, carved
