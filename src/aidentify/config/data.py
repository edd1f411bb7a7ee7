"""Settings of the data stages: download, clean, prepare and augment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from aidentify.config.base import StrictModel
from aidentify.config.faces import FaceDetectorSettings


# --------------------------------------------------------------------- download
class KaggleItem(StrictModel):
    """One thing to fetch from Kaggle: a dataset or a competition's files."""

    kind: Literal["dataset", "competition"] = "dataset"
    ref: str
    files: list[str] = Field(default_factory=list)


class DatasetSource(StrictModel):
    """A named dataset: what to fetch to assemble it."""

    description: str = ""
    kaggle: list[KaggleItem]
    in_all: bool = True


def _default_datasets() -> dict[str, DatasetSource]:
    return {
        "ferplus": DatasetSource(
            description="FER+ (FER2013 relabelled by 10 taggers), 8 classes, folder per class",
            kaggle=[KaggleItem(kind="dataset", ref="subhaditya/fer2013plus")],
        ),
        "fer2013": DatasetSource(
            description="FER2013 pixel CSV (7 classes); add fer2013new.csv for FER+ votes",
            kaggle=[KaggleItem(kind="dataset", ref="deadskull7/fer2013")],
            in_all=False,
        ),
        "affectnet-hq": DatasetSource(
            description="AffectNet-HQ, 8 classes, images of varying size",
            kaggle=[KaggleItem(kind="dataset", ref="tom99763/affectnethq")],
        ),
    }


class DownloadConfig(StrictModel):
    raw_dir: Path = Path("data/raw")
    datasets: dict[str, DatasetSource] = Field(default_factory=_default_datasets)


# ------------------------------------------------------------------------ clean
class LabelRule(StrictModel):
    rule: Literal["majority", "plurality"] = "majority"
    drop_single_votes: bool = True
    ambiguous_train: bool = False


class Dedup(StrictModel):
    enabled: bool = True
    max_distance: int = Field(default=2, ge=0, le=16)


class CarveSplits(StrictModel):
    val_fraction: float = Field(default=0.1, ge=0.0, lt=0.5)
    test_fraction: float = Field(default=0.1, ge=0.0, lt=0.5)
    seed: int = 42


class CleanConfig(StrictModel):
    raw_dir: Path = Path("data/raw")
    out_dir: Path = Path("data/clean")
    sources: list[str] | None = None
    votes: LabelRule = Field(default_factory=LabelRule)
    dedup: Dedup = Field(default_factory=Dedup)
    splits: CarveSplits = Field(default_factory=CarveSplits)
    min_std: float = Field(default=3.0, ge=0.0)
    max_pixels: int = Field(default=50_000_000, ge=1)
    workers: int = Field(default=0, ge=0)


# ---------------------------------------------------------------------- prepare
DetectMode = Literal["always", "never", "fallback"]


class FaceDetection(FaceDetectorSettings):
    detect: DetectMode = "always"
    detect_by_source: dict[str, DetectMode] = Field(
        default_factory=lambda: {"ferplus": "never", "fer2013": "never"}
    )
    margin: float = Field(default=0.2, ge=0.0, le=1.0)
    align: bool = True



class PrepareConfig(StrictModel):
    clean_dir: Path = Path("data/clean")
    out_dir: Path = Path("data/prepared")
    image_size: int = Field(default=96, ge=16, le=512)
    faces: FaceDetection = Field(default_factory=FaceDetection)
    workers: int = Field(default=0, ge=0)


# ---------------------------------------------------------------------- augment
class AugmentConfig(StrictModel):
    prepared_dir: Path = Path("data/prepared")
    out_dir: Path = Path("data/augmented")
    target: int | Literal["median", "max"] = "median"
    per_class: dict[str, int] = Field(default_factory=dict)
    mirror: bool = True
    angles: list[float] = Field(default_factory=lambda: [-15.0, -8.0, 8.0, 15.0])
    seed: int = 42
