"""Crop geometry and the prepare stage."""

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import texture, write_image

from aidentify.config import CleanConfig, DownloadConfig, PrepareConfig
from aidentify.data.clean import clean
from aidentify.data.download import download
from aidentify.faces.crop import square_crop
from aidentify.data.prepare import prepare
from aidentify.errors import StageInputMissing

NO_CARVE = {"val_fraction": 0, "test_fraction": 0}


def test_square_crop_pads_faces_at_the_border():
    image = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    crop = square_crop(image, (0, 0, 40, 30), margin=0.25, size=32)
    assert crop.shape == (32, 32)


def _pipeline_until_clean(workdir: Path, astronaut_gray) -> None:
    src = workdir / "src"
    write_image(src / "happy" / "astronaut.png", astronaut_gray)
    write_image(src / "sad" / "texture.png", texture(5, 200))
    download(DownloadConfig(), "photos", from_path=src)
    clean(CleanConfig(workers=1, splits=NO_CARVE))


def test_prepare_without_clean_says_run_clean(workdir):
    with pytest.raises(StageInputMissing, match="aidentify clean"):
        prepare(PrepareConfig())


@pytest.mark.parametrize("mode,kept,dropped", [("always", {"face"}, 1), ("fallback", {"face", "fallback_whole"}, 0),
                                               ("never", {"whole"}, 0)])
def test_detection_modes(workdir, astronaut_gray, mode, kept, dropped):
    _pipeline_until_clean(workdir, astronaut_gray)
    result = prepare(PrepareConfig(image_size=48, workers=1, faces={"detect": mode, "detector": "haar"}))
    manifest = pd.read_csv(workdir / "data/prepared/manifest.csv")
    assert set(manifest["face"]) == kept
    assert result.report["dropped"] == dropped
    assert len(manifest) + dropped == 2
    for rel in manifest["path"]:
        image = cv2.imread(str(workdir / "data/prepared" / rel), cv2.IMREAD_UNCHANGED)
        assert image.shape == (48, 48)  # grayscale, square, resized
    if mode == "always":
        row = pd.read_csv(workdir / "data/prepared/dropped.csv").iloc[0]
        assert row["reason"] == "no_face" and "sad" in row["path"]


def _cleaned_textures(workdir: Path, count: int, seed: int, name: str = "many", two_classes: bool = False) -> None:
    """``count`` distinct texture images run through download and clean (the input prepare reads)."""
    src = workdir / "src"
    for i in range(count):
        label = ("happy" if i % 2 else "sad") if two_classes else "neutral"
        write_image(src / label / f"n{i}.png", texture(seed + i))
    download(DownloadConfig(), name, from_path=src)
    clean(CleanConfig(workers=1, splits=NO_CARVE))


def test_interrupted_prepare_resumes_and_never_leaves_partial_files(workdir):
    _cleaned_textures(workdir, 150, 1000)
    config = PrepareConfig(image_size=32, workers=1, faces={"detect": "never"})

    def stop_after_first_chunk(task, done, total):
        if 0 < done < total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(config, progress=stop_after_first_chunk)
    partial = workdir / "data/prepared.partial"
    assert partial.is_dir() and not (workdir / "data/prepared").exists()
    done_before = len(list(partial.rglob("*.png")))
    assert 0 < done_before < 150

    result = prepare(config)
    assert result.report["resumed_from"] == done_before
    manifest = pd.read_csv(workdir / "data/prepared/manifest.csv")
    assert len(manifest) == 150 and not partial.exists()
    leftovers = [p for p in (workdir / "data/prepared").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_changed_settings_do_not_resume_a_foreign_partial(workdir):
    _cleaned_textures(workdir, 80, 2000)

    def stop(task, done, total):
        if 0 < done < total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(PrepareConfig(image_size=32, workers=1, faces={"detect": "never"}), progress=stop)
    result = prepare(PrepareConfig(image_size=40, workers=1, faces={"detect": "never"}))
    assert result.report["resumed_from"] == 0
    first = pd.read_csv(workdir / "data/prepared/manifest.csv")["path"].iloc[0]
    assert cv2.imread(str(workdir / "data/prepared" / first), 0).shape == (40, 40)


def test_process_pool_gives_the_same_result_as_one_process(workdir):
    _cleaned_textures(workdir, 140, 3000, name="pool", two_classes=True)
    prepare(PrepareConfig(image_size=32, workers=1, faces={"detect": "never"}, out_dir="data/one"))
    prepare(PrepareConfig(image_size=32, workers=2, faces={"detect": "never"}, out_dir="data/two"))
    one = pd.read_csv(workdir / "data/one/manifest.csv")
    two = pd.read_csv(workdir / "data/two/manifest.csv")
    pd.testing.assert_frame_equal(one, two)
    for rel in one["path"][:10]:
        assert (workdir / "data/one" / rel).read_bytes() == (workdir / "data/two" / rel).read_bytes()


def test_a_second_prepare_at_once_is_refused_and_leaves_the_first_ones_staging_alone(workdir):
    from aidentify.processes import FolderBusy

    _cleaned_textures(workdir, 150, 4000)
    config = PrepareConfig(image_size=32, workers=1, faces={"detect": "never"})
    refusals = []

    def second_run_meanwhile(task, done, total):
        if 0 < done < total and not refusals:
            with pytest.raises(FolderBusy) as busy:
                prepare(PrepareConfig(image_size=40, workers=1, faces={"detect": "never"}))
            refusals.append(str(busy.value))

    result = prepare(config, progress=second_run_meanwhile)
    assert refusals == [f"data/prepared is being written by process {os.getpid()}; wait for it or stop it first"]
    assert result.report["kept"] == 150 and result.report["resumed_from"] == 0
    assert not (workdir / "data/.prepared.lock").exists()


def test_keeping_no_image_is_an_error_that_says_what_to_change(workdir):
    from aidentify.errors import DataError

    src = workdir / "src"
    for i in range(2):
        write_image(src / "sad" / f"t{i}.png", texture(40 + i, 120))
    download(DownloadConfig(), "textures", from_path=src)
    clean(CleanConfig(workers=1, splits=NO_CARVE))
    with pytest.raises(DataError, match=r"prepare kept none of the 2 images \(no_face 2\).*faces.detect=fallback"):
        prepare(PrepareConfig(image_size=48, workers=1, faces={"detect": "always", "detector": "haar"}))
    assert not (workdir / "data/prepared").exists()


def test_an_empty_input_manifest_is_refused(workdir):
    from aidentify.errors import DataError

    (workdir / "data/clean").mkdir(parents=True)
    (workdir / "data/clean/manifest.csv").write_text("path,label,split,source,id\n")
    with pytest.raises(DataError, match=r"manifest.csv lists no images; run `aidentify clean` again"):
        prepare(PrepareConfig(workers=1))
