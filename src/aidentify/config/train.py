"""Settings of train (both models), including augmentation, schedules and distillation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from aidentify.classes import CLASSES
from aidentify.config.base import StrictModel, TestTimeZooms


# ------------------------------------------------------------------------ train
class Augmentation(StrictModel):
    """On-the-fly augmentation layers inside the model (active only while training)."""

    flip: bool = True
    rotation: float = Field(default=0.05, ge=0.0, le=0.5)
    shift: float = Field(default=0.1, ge=0.0, le=0.5)
    zoom: float = Field(default=0.1, ge=0.0, le=0.5)
    contrast: float = Field(default=0.2, ge=0.0, le=1.0)
    erasing: float = Field(default=0.0, ge=0.0, le=1.0)


class Degrade(StrictModel):
    """Webcam-like degradation of training faces in the input pipeline (:mod:`aidentify.train.degrade`).

    Each of the four is applied to a face with probability ``share``, independently; a neutral
    setting (gamma 1, blur 0, downscale 1, jpeg 100) turns that step off.
    """

    share: float = Field(default=0.0, ge=0.0, le=1.0)  # 0 = off
    gamma: float = Field(default=1.6, ge=1.0, le=4.0)  # gamma drawn log-uniformly in [1/gamma, gamma]
    blur: float = Field(default=1.2, ge=0.0, le=5.0)  # largest Gaussian blur sigma, pixels of the model input
    downscale: float = Field(default=0.4, gt=0.0, le=1.0)  # smallest side fraction of the shrink-and-enlarge
    jpeg: int = Field(default=30, ge=1, le=100)  # lowest JPEG quality of the re-encoding (100 = off)


class EarlyStop(StrictModel):
    enabled: bool = True
    monitor: Literal["val_loss", "val_accuracy"] = "val_accuracy"
    patience: int = Field(default=8, ge=1)


class ReduceLR(StrictModel):
    enabled: bool = True
    factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    patience: int = Field(default=3, ge=1)
    min_lr: float = Field(default=1e-6, ge=0.0)


class CnnArchitecture(StrictModel):
    filters: list[int] = Field(default_factory=lambda: [32, 64, 128, 256])
    convs_per_block: int = Field(default=2, ge=1, le=4)
    block: Literal["plain", "residual"] = "plain"  # residual: a shortcut around each block's convolutions
    separable: bool = False  # depthwise-separable 3x3 convolutions (all but the first)
    squeeze_excite: int = Field(default=0, ge=0)  # reduction ratio of a squeeze-and-excitation gate; 0 = none
    dropout: float = Field(default=0.4, ge=0.0, lt=1.0)
    dense_units: int = Field(default=256, ge=0)


class FineTune(StrictModel):
    epochs: int = Field(default=10, ge=0)
    unfreeze_layers: int = Field(default=60, ge=0)
    learning_rate: float = Field(default=1e-5, gt=0.0)


class DenseNetArchitecture(StrictModel):
    weights: Literal["imagenet"] | Path | None = "imagenet"  # or a local weights file of the base (no top)
    head_units: int = Field(default=256, ge=0)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    fine_tune: FineTune = Field(default_factory=FineTune)


class Distillation(StrictModel):
    """Trained models whose predictions join the label targets (knowledge distillation)."""

    teachers: list[Path] = Field(default_factory=list)  # .keras/.tflite models or run folders; empty = off
    weight: float = Field(default=0.5, ge=0.0, le=1.0)  # target = weight * teachers + (1 - weight) * labels
    tta_flip: bool = True  # teachers predict each image and its mirror image, averaged
    tta_zooms: TestTimeZooms = Field(default_factory=list)  # and these centre zooms, as evaluate's tta_zooms


class WeightAveraging(StrictModel):
    """An exponential moving average (EMA) of the weights, validated and saved instead of the raw weights."""

    enabled: bool = False
    momentum: float = Field(default=0.999, gt=0.0, lt=1.0)  # 0.999: an average over about the last 1000 steps


class TrainCommon(StrictModel):
    """Keys shared by both models; each model's config adds its own section."""

    data_dir: Path = Path("data/augmented")
    project: Path = Path("runs")
    name: str = "exp"
    image_size: int = Field(default=64, ge=32, le=512)
    labels: Literal["majority", "soft", "drawn"] = "soft"  # drawn: a one-hot drawn from the votes each step
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=0.5)
    mixup: float = Field(default=0.0, ge=0.0)  # Beta(mixup, mixup) blends of pairs of faces and targets; 0 = off
    class_weights: Literal["none", "balanced", "sqrt"] = "none"
    # class-aware targets: a class's FER+ votes count this many times in training targets ({} = as voted)
    vote_weights: dict[str, float] = Field(default_factory=dict)
    max_samples: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=1)
    epochs: int = Field(default=40, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    schedule: Literal["plateau", "cosine"] = "plateau"
    augmentation: Augmentation = Field(default_factory=Augmentation)
    degrade: Degrade = Field(default_factory=Degrade)
    early_stopping: EarlyStop = Field(default_factory=EarlyStop)
    reduce_lr: ReduceLR = Field(default_factory=ReduceLR)
    cache: Literal["auto", "memory", "none"] = "auto"
    seed: int = 42
    strategy: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"
    mixed_precision: Literal["auto", "on", "off", "bfloat16"] = "auto"  # on: float16; auto: on with a GPU
    tensorboard: bool = True
    init_weights: Path | None = None  # start from this .keras model or run folder instead of random weights
    distill: Distillation = Field(default_factory=Distillation)
    ema: WeightAveraging = Field(default_factory=WeightAveraging)

    @field_validator("vote_weights")
    @classmethod
    def _known_classes_and_positive(cls, weights: dict[str, float]) -> dict[str, float]:
        for name, weight in weights.items():
            if name not in CLASSES:
                raise ValueError(f"{name!r} is not a class; the classes are {', '.join(CLASSES)}")
            if not weight > 0:
                raise ValueError(f"{name}: a vote weight must be above 0, got {weight}")
        return weights


class CnnTrainConfig(TrainCommon):
    model: Literal["cnn"] = "cnn"
    image_size: int = Field(default=48, ge=32, le=512)
    cnn: CnnArchitecture = Field(default_factory=CnnArchitecture)


class DenseNetTrainConfig(TrainCommon):
    model: Literal["densenet"] = "densenet"
    image_size: int = Field(default=96, ge=32, le=512)
    epochs: int = Field(default=15, ge=1)
    batch_size: int = Field(default=32, ge=1)
    densenet: DenseNetArchitecture = Field(default_factory=DenseNetArchitecture)


TRAIN_CONFIGS: dict[str, type[TrainCommon]] = {"cnn": CnnTrainConfig, "densenet": DenseNetTrainConfig}


# ---------------------------------------------------------------------- average
class AverageConfig(StrictModel):
    """``aidentify average``: one CNN whose weights are the mean of several finished runs' (a model soup)."""

    data_dir: Path = Path("data/augmented")
    project: Path = Path("runs")
    name: str = "average"
    models: list[str] = Field(default_factory=list)
    calibration_images: int = Field(default=4000, ge=64)
    batch_size: int = Field(default=256, ge=1)
