"""clean: vote rule, unreadable and blank images, duplicates, split carving."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_ferplus_tree, one_hot_votes, texture, write_image

from aidentify.config import CleanConfig, DownloadConfig
from aidentify.data.clean import clean
from aidentify.data.dedup import near_duplicate_pairs
from aidentify.data.download import download
from aidentify.errors import StageInputMissing


def _download_tree(workdir: Path, tree: Path, name="ferplus"):
    download(DownloadConfig(), name, from_path=tree)


def _config(**kwargs) -> CleanConfig:
    cfg = CleanConfig(workers=1, **kwargs)
    return cfg


def test_missing_raw_data_says_run_download(workdir):
    with pytest.raises(StageInputMissing, match="aidentify download"):
        clean(_config())


def test_every_raw_image_is_kept_or_dropped_with_a_reason(workdir):
    train = [one_hot_votes(c) for c in ("neutral", "happiness", "anger") for _ in range(10)]
    train += [one_hot_votes("unknown"), one_hot_votes("not_face"), [4, 4, 2, 0, 0, 0, 0, 0, 0, 0]]
    tree = make_ferplus_tree(workdir / "src", {"train": train, "val": [one_hot_votes("anger")] * 3})
    (tree / "FER2013Train" / "fer0000000.png").write_bytes(b"not a png")
    write_image(tree / "FER2013Train" / "fer0000001.png", np.full((48, 48), 128, np.uint8))  # blank
    _download_tree(workdir, tree)
    result = clean(_config())
    kept = pd.read_csv(workdir / "data/clean/manifest.csv")
    dropped = pd.read_csv(workdir / "data/clean/dropped.csv")
    raw = pd.read_csv(workdir / "data/raw/ferplus/manifest.csv")
    assert len(kept) + len(dropped) == len(raw)
    assert set(kept["id"]).isdisjoint(dropped["id"])
    reasons = dict(dropped["reason"].value_counts())
    assert reasons == {"unreadable": 1, "blank": 1, "unknown": 1, "not_face": 1, "no_agreement": 1}
    assert result.report["dropped_by_reason"] == reasons
    # paths in the clean manifest resolve to the raw files, which are untouched
    first = workdir / "data/clean" / kept["path"].iloc[0]
    assert first.is_file() and "data/raw" in first.resolve().as_posix()
    report = json.loads((workdir / "data/clean/report.json").read_text())
    assert report["kept"] == len(kept)


def test_single_votes_are_outliers_and_plurality_rule(workdir):
    # 5 happiness, 4 neutral, 1 fear: majority needs > half of 9 after dropping the lone vote
    votes = [4, 5, 0, 0, 0, 0, 1, 0, 0, 0]
    tree = make_ferplus_tree(workdir / "src", {"train": [votes] * 1 + [one_hot_votes("anger")] * 4})
    _download_tree(workdir, tree)
    clean(_config(splits={"val_fraction": 0, "test_fraction": 0}))
    kept = pd.read_csv(workdir / "data/clean/manifest.csv")
    row = kept[kept["votes_happiness"] == 5].iloc[0]
    assert row["label"] == "happiness" and row["votes_fear"] == 0  # the lone fear vote is gone

    votes_tie = [4, 4, 0, 0, 0, 0, 0, 0, 0, 2]
    tree2 = make_ferplus_tree(workdir / "src2", {"train": [votes_tie, [5, 3, 2, 0, 0, 0, 0, 0, 0, 0]]}, seed=7)
    download(DownloadConfig(), "two", from_path=tree2)
    clean(_config(sources=["two"], votes={"rule": "plurality"}, splits={"val_fraction": 0, "test_fraction": 0}))
    dropped = pd.read_csv(workdir / "data/clean/dropped.csv")
    kept = pd.read_csv(workdir / "data/clean/manifest.csv")
    assert list(dropped["reason"]) == ["no_agreement"]  # a tie has no plurality
    assert list(kept["label"]) == ["neutral"]           # 5 of 10 is a plurality, not a majority


def test_duplicate_across_splits_keeps_the_validation_copy(workdir):
    tree = make_ferplus_tree(workdir / "src", {"train": [one_hot_votes("sadness")] * 6,
                                               "val": [one_hot_votes("sadness")] * 3})
    face = texture(999)
    write_image(tree / "FER2013Train" / "fer0000002.png", face)
    write_image(tree / "FER2013Valid" / "fer0000007.png", face)               # exact copy in val
    near = face.copy()
    near[0, 0] = 255 - near[0, 0]                                            # one pixel changed
    write_image(tree / "FER2013Train" / "fer0000003.png", near)
    _download_tree(workdir, tree)
    clean(_config(splits={"val_fraction": 0, "test_fraction": 0}))
    dropped = pd.read_csv(workdir / "data/clean/dropped.csv")
    kept = pd.read_csv(workdir / "data/clean/manifest.csv")
    dup = dropped[dropped["reason"] == "duplicate"]
    assert sorted(dup["id"]) == ["ferplus/FER2013Train/fer0000002", "ferplus/FER2013Train/fer0000003"]
    assert all("fer0000007 (val)" in d for d in dup["detail"])
    assert "ferplus/FER2013Valid/fer0000007" in set(kept["id"])


def test_near_duplicate_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, size=300, dtype=np.uint64)
    hashes = np.concatenate([base, base[:40] ^ np.uint64(0b101), base[40:60] ^ np.uint64(1 << 40)])
    found = {(i, j) for i, j, _ in near_duplicate_pairs(hashes, max_distance=2)}
    brute = {(i, j) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
             if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= 2}
    assert found == brute and len(found) >= 60


def test_missing_splits_are_carved_stratified_and_reproducibly(workdir):
    src = workdir / "src"
    for label in ("happy", "sad"):
        for i in range(20):
            write_image(src / label / f"{label}{i}.png", texture(hash((label, i)) % 10**6))
    download(DownloadConfig(), "folders", from_path=src)
    first = clean(_config(splits={"val_fraction": 0.2, "test_fraction": 0.1, "seed": 3}))
    split_a = pd.read_csv(workdir / "data/clean/manifest.csv").set_index("id")["split"]
    clean(_config(splits={"val_fraction": 0.2, "test_fraction": 0.1, "seed": 3}))
    split_b = pd.read_csv(workdir / "data/clean/manifest.csv").set_index("id")["split"]
    assert split_a.sort_index().equals(split_b.sort_index())
    assert first.report["carved_splits"]["folders"] == {"test": 4, "val": 8}
    after = first.report["after"]
    assert after["val"] == {"happiness": 4, "sadness": 4}
    assert after["test"] == {"happiness": 2, "sadness": 2}


def _huge_png(path: Path, side: int = 20000) -> None:
    """A valid side x side 8-bit grayscale PNG of zeros: a few hundred KB on disk, side² bytes decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compressobj(9)
    block = bytes(side + 1) * 500  # 500 rows, each a filter byte and side zero pixels
    body = b"".join(rows.compress(block) for _ in range(side // 500)) + rows.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_an_image_over_the_pixel_limit_is_dropped_unread(workdir, monkeypatch):
    import time

    from aidentify.data import images

    tree = make_ferplus_tree(workdir / "src", {"train": [one_hot_votes("anger")] * 4})
    huge = tree / "FER2013Train" / "fer0000000.png"
    _huge_png(huge)
    assert huge.stat().st_size < 1_000_000
    _download_tree(workdir, tree)
    decoded = []
    real_read_gray = images.read_gray
    monkeypatch.setattr("aidentify.data.clean.read_gray", lambda p: decoded.append(p) or real_read_gray(p))
    started = time.perf_counter()
    result = clean(_config(splits={"val_fraction": 0, "test_fraction": 0}))
    assert time.perf_counter() - started < 10
    assert result.report["dropped_by_reason"] == {"too_large": 1}
    row = pd.read_csv(workdir / "data/clean/dropped.csv").iloc[0]
    assert row["path"].endswith("fer0000000.png")
    assert row["detail"] == "20000x20000 = 400000000 pixels > max_pixels 50000000; not decoded"
    assert len(decoded) == 3 and not any(str(p).endswith("fer0000000.png") for p in decoded)


def test_a_killed_downloads_old_and_partial_copies_are_not_read(workdir):
    import shutil

    tree = make_ferplus_tree(workdir / "src", {"train": [one_hot_votes(c) for c in ("anger", "neutral")] * 3})
    _download_tree(workdir, tree)
    raw = workdir / "data/raw"
    for leftover in ("ferplus.old", "ferplus.partial", ".ferplus.tmp"):  # as a kill -9 mid-swap leaves them
        shutil.copytree(raw / "ferplus", raw / leftover)
    result = clean(_config(splits={"val_fraction": 0, "test_fraction": 0}))
    assert result.report["input_images"] == 6
    assert set(pd.read_csv(workdir / "data/clean/manifest.csv")["source"]) == {"ferplus"}


def test_a_missing_file_is_dropped_as_not_found_not_as_undecodable(workdir):
    src = workdir / "src"
    for i in range(3):
        write_image(src / "happy" / f"h{i}.png", texture(i))
    write_image(src / "happy" / "gone.png", texture(9))
    _download_tree(workdir, src, name="mine")
    (workdir / "data/raw/mine/files/happy/gone.png").unlink()
    clean(_config(splits={"val_fraction": 0, "test_fraction": 0}))
    dropped = pd.read_csv(workdir / "data/clean/dropped.csv")
    assert list(dropped["reason"]) == ["missing"] and list(dropped["detail"]) == ["file not found"]


def test_keeping_no_image_is_an_error_and_writes_nothing(workdir):
    from aidentify.errors import DataError

    src = workdir / "src"
    for i in range(2):
        write_image(src / "happy" / f"h{i}.png", texture(i))
    _download_tree(workdir, src, name="mine")
    for image in (workdir / "data/raw/mine/files/happy").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"clean kept none of the 2 images \(missing 2; .*file not found"):
        clean(_config())
    assert not (workdir / "data/clean").exists()


def test_a_tiny_dataset_gets_a_warning_when_a_carved_split_is_empty(workdir):
    src = workdir / "src"
    for i in range(3):
        write_image(src / "happy" / f"h{i}.png", texture(i))
        write_image(src / "sad" / f"s{i}.png", texture(10 + i))
    _download_tree(workdir, src, name="tiny")
    result = clean(_config())
    assert result.report["carved_splits"] == {"tiny": {"test": 0, "val": 0}}
    [test_warning, val_warning] = result.report["warnings"]
    assert test_warning.startswith("tiny: the carved test split is empty")
    assert "a class needs at least 6" in val_warning and "a val/ folder" in val_warning


def test_training_without_val_images_says_what_to_do(workdir):
    from aidentify.errors import DataError
    from aidentify.train.data import load_training_input

    folder = workdir / "data/augmented"
    folder.mkdir(parents=True)
    (folder / "manifest.csv").write_text("path,label,split,source,id\na.png,happiness,train,x,x/a\n"
                                         "b.png,sadness,train,x,x/b\n")
    with pytest.raises(DataError, match=r"found 2 train, 0 val\); add images .* own val split"):
        load_training_input(folder, "majority", None, 0)


def test_ambiguous_training_images_are_kept_only_with_the_option_and_only_in_train(workdir):
    ambiguous = [4, 4, 2, 0, 0, 0, 0, 0, 0, 0]        # neutral and happiness tie: no majority
    mostly_unknown = [2, 0, 0, 0, 0, 0, 0, 0, 4, 4]   # no agreement, but most votes are not emotions
    train = [one_hot_votes(c) for c in ("neutral", "anger") for _ in range(10)]
    tree = make_ferplus_tree(workdir / "src", {"train": train + [ambiguous, mostly_unknown],
                                               "val": [one_hot_votes("anger")] * 3 + [ambiguous]})
    _download_tree(workdir, tree)
    off = clean(_config())
    kept_off = pd.read_csv(workdir / "data/clean/manifest.csv")
    on = clean(_config(votes={"ambiguous_train": True}))
    kept_on = pd.read_csv(workdir / "data/clean/manifest.csv")
    dropped_on = pd.read_csv(workdir / "data/clean/dropped.csv")

    added = kept_on[~kept_on["id"].isin(kept_off["id"])]
    assert list(added["split"]) == ["train"] and list(added["label"]) == ["neutral"]  # tie: first class
    assert added["votes_neutral"].iloc[0] == 4 and added["votes_happiness"].iloc[0] == 4
    assert on.report["ambiguous_train"] == 1 and off.report["ambiguous_train"] == 0
    # the ambiguous val image and the mostly-unknown train image are still dropped
    assert sorted(dropped_on.loc[dropped_on["reason"] == "no_agreement", "split"]) == ["train", "val"]
    # every agreed image keeps its split (the carved test split too)
    merged = kept_off.merge(kept_on, on="id", suffixes=("_off", "_on"))
    assert len(merged) == len(kept_off)
    assert (merged["split_off"] == merged["split_on"]).all()
    assert (merged["label_off"] == merged["label_on"]).all()


def test_an_ambiguous_duplicate_never_displaces_an_agreed_image(workdir):
    tree = make_ferplus_tree(workdir / "src", {"train": [one_hot_votes("sadness")] * 6
                                               + [[4, 0, 0, 4, 0, 0, 0, 0, 0, 2]] * 3})
    face, other = texture(999), texture(998)
    write_image(tree / "FER2013Train" / "fer0000000.png", face)    # agreed (sadness)
    write_image(tree / "FER2013Train" / "fer0000003.png", other)   # agreed (sadness)
    write_image(tree / "FER2013Train" / "fer0000006.png", face)    # ambiguous copy of 0
    write_image(tree / "FER2013Train" / "fer0000007.png", other)   # ambiguous copy of 3
    write_image(tree / "FER2013Train" / "fer0000008.png", face)    # ambiguous copy of 0 and of 6
    _download_tree(workdir, tree)
    result = clean(_config(votes={"ambiguous_train": True}, splits={"val_fraction": 0, "test_fraction": 0}))
    kept = pd.read_csv(workdir / "data/clean/manifest.csv")
    dropped = pd.read_csv(workdir / "data/clean/dropped.csv").set_index("id")
    ids = set(kept["id"])
    assert {f"ferplus/FER2013Train/fer000000{i}" for i in range(6)} <= ids  # every agreed image stays
    assert not {f"ferplus/FER2013Train/fer000000{i}" for i in (6, 7, 8)} & ids
    assert "exact duplicate of ferplus/FER2013Train/fer0000000" in dropped.loc[
        "ferplus/FER2013Train/fer0000006", "detail"]
    assert result.report["ambiguous_train"] == 0
