"""Shared fixtures: small generated datasets and a real face photo.

Generated images are random textures (each distinct, so none count as
duplicates); the real face is scikit-image's astronaut photo.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from aidentify.classes import VOTE_COLUMNS

# The astronaut's face on skimage.data.astronaut(), marked by hand (x, y, w, h): brow to chin, ear to ear.
ASTRONAUT_FACE = (178.0, 76.0, 92.0, 106.0)


def texture(seed: int, size: int = 48) -> np.ndarray:
    """A distinct grayscale image: smooth random blobs (not near-duplicates of each other)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 6)).astype(np.uint8)
    image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(0, 30, size=(size, size)).astype(np.uint8)
    return cv2.add(image, noise)


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def one_hot_votes(label: str, n: int = 10) -> list[int]:
    votes = [0] * len(VOTE_COLUMNS)
    votes[VOTE_COLUMNS.index(label)] = n
    return votes


def make_ferplus_tree(root: Path, per_split: dict[str, list[list[int]]], seed: int = 0) -> Path:
    """FER+ image-folder layout: FER2013Train/ etc. with headerless label.csv vote files."""
    folders = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
    counter = seed * 100_000
    for split, vote_rows in per_split.items():
        folder = root / folders[split]
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "label.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            for votes in vote_rows:
                name = f"fer{counter:07d}.png"
                write_image(folder / name, texture(counter))
                writer.writerow([name, "(0, 0, 48, 48)", *votes])
                counter += 1
    return root


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder).as_posix())
    return archive


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run inside an empty folder, as a user would (relative data/ paths)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def ferplus_archive(tmp_path) -> Path:
    """A small FER+-style zip: 8 classes, clear majorities plus a few hard cases."""
    src = tmp_path / "ferplus_src"
    train = [one_hot_votes(c, 8) + [] for c in VOTE_COLUMNS[:8] for _ in range(6)]
    train.append(one_hot_votes("unknown"))               # dropped: unknown
    train.append(one_hot_votes("not_face"))              # dropped: not a face
    train.append([3, 3, 2, 2, 0, 0, 0, 0, 0, 0])         # dropped: no majority
    val = [one_hot_votes(c) for c in VOTE_COLUMNS[:8] for _ in range(2)]
    make_ferplus_tree(src, {"train": train, "val": val})
    return zip_folder(src, tmp_path / "ferplus-mini.zip")


@pytest.fixture(scope="session")
def astronaut_gray() -> np.ndarray:
    """scikit-image's astronaut photo (one real face), grayscale."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (one real face), BGR as OpenCV reads files."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(autouse=True)
def _no_kaggle_credentials(monkeypatch, tmp_path_factory):
    """Tests never see the developer's Kaggle credentials (or reach Kaggle), nor the developer's caches."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """3 classes x 24 train + 6 val images, prepared at 32 px (run through download..augment)."""
    from aidentify.config import AugmentConfig, CleanConfig, DownloadConfig, PrepareConfig
    from aidentify.data.augment import augment
    from aidentify.data.clean import clean
    from aidentify.data.download import download
    from aidentify.data.prepare import prepare

    root = tmp_path_factory.mktemp("tiny")
    src = root / "src"
    n = 0
    for split, count in (("train", 24), ("val", 6)):
        for label, brightness in (("happy", 40), ("sad", 120), ("angry", 200)):
            for _ in range(count):
                image = texture(90_000 + n, 32) // 4 + brightness  # classes differ in brightness
                write_image(src / split / label / f"{n}.png", image)
                n += 1
    raw, data = root / "data/raw", root / "data"
    download(DownloadConfig(raw_dir=raw), "tiny", from_path=src)
    clean(CleanConfig(raw_dir=raw, out_dir=data / "clean", workers=1,
                      splits={"val_fraction": 0, "test_fraction": 0.2}))
    prepare(PrepareConfig(clean_dir=data / "clean", out_dir=data / "prepared", image_size=32, workers=1,
                          faces={"detect": "never"}))
    augment(AugmentConfig(prepared_dir=data / "prepared", out_dir=data / "augmented"))
    return data


@pytest.fixture(scope="session")
def tiny_keras_model(tiny_data, tmp_path_factory):
    """A tiny CNN trained for two epochs on ``tiny_data``: a real .keras file with metadata."""
    from aidentify.config import CnnTrainConfig
    from aidentify.train.fit import train

    config = CnnTrainConfig(data_dir=tiny_data / "augmented", project=tmp_path_factory.mktemp("live-model"),
                            image_size=32, epochs=2, batch_size=16, tensorboard=False,
                            cnn={"filters": [8, 16], "convs_per_block": 1, "dense_units": 16})
    return train(config).run_dir / "weights" / "best.keras"
