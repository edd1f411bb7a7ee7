"""augment: balances train only, records parents, respects the variant cap."""

import numpy as np
import pandas as pd
import pytest

from conftest import texture, write_image

from aidentify.config import AugmentConfig, CleanConfig, DownloadConfig, PrepareConfig
from aidentify.data.augment import apply_variant, augment, variants
from aidentify.data.clean import clean
from aidentify.data.download import download
from aidentify.data.prepare import prepare
from aidentify.errors import ConfigError


@pytest.fixture
def prepared(workdir):
    src = workdir / "src"
    counts = {"happy": 30, "sad": 12, "fear": 3}
    n = 0
    for split in ("train", "val"):
        for label, count in counts.items():
            for i in range(count if split == "train" else 2):
                write_image(src / split / label / f"{label}{i}.png", texture(5000 + n))
                n += 1
    download(DownloadConfig(), "mini", from_path=src)
    clean(CleanConfig(workers=1, splits={"val_fraction": 0, "test_fraction": 0.1}))
    prepare(PrepareConfig(image_size=32, workers=1, faces={"detect": "never"}))
    return workdir


def test_balances_train_only_up_to_target(prepared):
    before = pd.read_csv(prepared / "data/prepared/manifest.csv")
    result = augment(AugmentConfig(target=20, angles=[10.0]))
    after = pd.read_csv(prepared / "data/augmented/manifest.csv")
    new = after[after["parent_id"].notna()]
    assert set(new["split"]) == {"train"}
    counts = after[after.split == "train"]["label"].value_counts()
    train_before = before[before.split == "train"]["label"].value_counts()
    assert counts["happiness"] == train_before["happiness"]          # already above target
    assert counts["sadness"] == 20                                   # topped up to the target
    assert counts["fear"] == train_before["fear"] * 4                # capped: 3 variants per image
    for split in ("val", "test"):
        assert (after.split == split).sum() == (before.split == split).sum()
    assert set(new["parent_id"]) <= set(before["id"])
    assert result.report["added"] == len(new)
    for rel in after["path"]:
        assert (prepared / "data/augmented" / rel).is_file()


def test_per_class_target_and_unknown_class(prepared):
    augment(AugmentConfig(target=0, per_class={"fear": 5}))
    after = pd.read_csv(prepared / "data/augmented/manifest.csv")
    assert (after[after.split == "train"]["label"] == "fear").sum() == 5
    with pytest.raises(ConfigError, match="unknown classes"):
        augment(AugmentConfig(per_class={"joyful": 5}))


def test_variants_mirror_and_rotate():
    assert variants(True, [10, -5]) == [(True, 0.0), (False, -5.0), (True, -5.0), (False, 10.0), (True, 10.0)]
    image = np.zeros((32, 32), np.uint8)
    image[:, :8] = 255
    mirrored = apply_variant(image, (True, 0.0))
    assert mirrored[:, -8:].min() == 255 and mirrored[:, :8].max() == 0
    rotated = apply_variant(texture(1, 32), (False, 15.0))
    assert rotated.shape == (32, 32) and not np.array_equal(rotated, texture(1, 32))
