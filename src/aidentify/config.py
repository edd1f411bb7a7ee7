"""Stage configuration: pydantic models, YAML loading and overrides.

Precedence, lowest first: the defaults in these models < the YAML file
(``configs/<stage>.yaml`` in the working directory, or ``--config PATH``)
< ``--set key=value`` overrides (dotted keys, values parsed as YAML scalars,
never evaluated) < named command-line options. Unknown keys are errors that
name the closest valid key; wrong types name the key and the expected type.

The YAML files in ``configs/`` repeat these defaults with a comment on every
key; a test keeps the two identical.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aidentify.errors import ConfigError


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# Test-time zoom views: centre crops as a fraction of the side (see live.classify.TestTimeViews).
TestTimeZooms = list[Annotated[float, Field(gt=0.5, lt=1.0)]]


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
    workers: int = Field(default=0, ge=0)


# ------------------------------------------------------------------------ faces
class HaarSettings(StrictModel):
    """OpenCV's frontal-face Haar cascade (``detectMultiScale``)."""

    scale_factor: float = Field(default=1.1, gt=1.0)
    min_neighbors: int = Field(default=5, ge=0)


class BlazeFaceSettings(StrictModel):
    """MediaPipe's BlazeFace full-range model on LiteRT (see aidentify.faces.blazeface)."""

    model: Literal["full_range", "full_range_sparse"] = "full_range"
    score: float = Field(default=0.5, gt=0.0, lt=1.0)
    iou: float = Field(default=0.3, gt=0.0, lt=1.0)
    tiles: bool = True
    threads: int = Field(default=2, ge=1)


class MtcnnSettings(StrictModel):
    """MTCNN (Zhang et al., 2016) from the mtcnn package's weights, converted to LiteRT."""

    thresholds: list[Annotated[float, Field(gt=0.0, lt=1.0)]] = Field(
        default_factory=lambda: [0.6, 0.7, 0.9], min_length=3, max_length=3)
    scale_factor: float = Field(default=0.709, gt=0.3, lt=1.0)
    threads: int = Field(default=2, ge=1)


class FaceDetectorSettings(StrictModel):
    """One face-detector section, shared by prepare, evaluate and live."""

    detector: Literal["auto", "haar", "blazeface", "mtcnn"] = "auto"
    min_face: int = Field(default=20, ge=8)
    max_megapixels: float = Field(default=4.0, gt=0.0)
    max_faces: int = Field(default=32, ge=1)
    haar: HaarSettings = Field(default_factory=HaarSettings)
    blazeface: BlazeFaceSettings = Field(default_factory=BlazeFaceSettings)
    mtcnn: MtcnnSettings = Field(default_factory=MtcnnSettings)


# ---------------------------------------------------------------------- prepare
DetectMode = Literal["always", "never", "fallback"]


class FaceDetection(FaceDetectorSettings):
    detect: DetectMode = "always"
    detect_by_source: dict[str, DetectMode] = Field(
        default_factory=lambda: {"ferplus": "never", "fer2013": "never"}
    )
    margin: float = Field(default=0.2, ge=0.0, le=1.0)
    align: bool = True

    @classmethod
    def from_recorded(cls, recorded: dict[str, Any] | None) -> FaceDetection:
        """The face settings a model's metadata recorded (``prepare``'s ``faces`` section).

        Models trained before the detector interface recorded Haar's knobs at the top
        level (``scale_factor``, ``min_neighbors``, ``min_size``, ``max_side``): they
        are read as ``detector: haar`` with those knobs, and their margin (grown around
        raw Haar boxes) is restated for reference boxes, so such a model is still fed
        crops of the size it was trained on.
        """
        from aidentify.faces.crop import reference_margin  # config stays importable without OpenCV

        recorded = dict(recorded or {})
        legacy = {key: recorded.pop(key) for key in ("scale_factor", "min_neighbors", "min_size", "max_side")
                  if key in recorded}
        if legacy and "detector" not in recorded:
            recorded["detector"] = "haar"
            recorded["haar"] = {k: legacy[k] for k in ("scale_factor", "min_neighbors") if k in legacy}
            if "min_size" in legacy:
                recorded["min_face"] = legacy["min_size"]
            if "margin" in recorded:  # it was grown around raw Haar boxes
                recorded["margin"] = reference_margin(float(recorded["margin"]), "haar")
            recorded["align"] = False  # Haar gives no eyes; these crops were never turned
        known = {key: value for key, value in recorded.items() if key in cls.model_fields}
        return cls.model_validate(known)


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


# ------------------------------------------------------------------------ train
class Augmentation(StrictModel):
    """On-the-fly augmentation layers inside the model (active only while training)."""

    flip: bool = True
    rotation: float = Field(default=0.05, ge=0.0, le=0.5)
    shift: float = Field(default=0.1, ge=0.0, le=0.5)
    zoom: float = Field(default=0.1, ge=0.0, le=0.5)
    contrast: float = Field(default=0.2, ge=0.0, le=1.0)
    erasing: float = Field(default=0.0, ge=0.0, le=1.0)


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


class TrainCommon(StrictModel):
    """Keys shared by both models; each model's config adds its own section."""

    data_dir: Path = Path("data/augmented")
    project: Path = Path("runs")
    name: str = "exp"
    image_size: int = Field(default=64, ge=32, le=512)
    labels: Literal["majority", "soft"] = "soft"
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=0.5)
    class_weights: Literal["none", "balanced"] = "none"
    max_samples: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=1)
    epochs: int = Field(default=40, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    schedule: Literal["plateau", "cosine"] = "plateau"
    augmentation: Augmentation = Field(default_factory=Augmentation)
    early_stopping: EarlyStop = Field(default_factory=EarlyStop)
    reduce_lr: ReduceLR = Field(default_factory=ReduceLR)
    cache: Literal["auto", "memory", "none"] = "auto"
    seed: int = 42
    strategy: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"
    mixed_precision: Literal["auto", "on", "off"] = "auto"
    tensorboard: bool = True
    init_weights: Path | None = None  # start from this .keras model or run folder instead of random weights
    distill: Distillation = Field(default_factory=Distillation)


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


# --------------------------------------------------------------------- evaluate
class EvaluateConfig(StrictModel):
    data_dir: Path = Path("data/prepared")
    split: Literal["train", "val", "test"] = "test"
    detect: Literal["auto", "always", "never", "fallback"] = "auto"
    detector: Literal["auto", "recorded", "haar", "blazeface", "mtcnn"] = "auto"
    vote_rule: Literal["majority", "plurality"] = "majority"
    tta_flip: bool = False
    tta_zooms: TestTimeZooms = Field(default_factory=list)
    ensemble: bool = False
    batch_size: int = Field(default=256, ge=1)
    worst_mistakes: int = Field(default=25, ge=0, le=100)


class LiveDetection(FaceDetectorSettings):
    """The shared detector section plus how often, and down to what face size, video frames are searched."""

    every: int = Field(default=3, ge=1)
    video_min_face: int = Field(default=40, ge=8)
    max_faces: int = Field(default=16, ge=1)


class LiveTracking(StrictModel):
    iou: float = Field(default=0.3, gt=0.0, lt=1.0)
    max_missed: int = Field(default=5, ge=0)
    follow: bool = True


class LiveSmoothing(StrictModel):
    method: Literal["ema", "window", "none"] = "ema"
    alpha: float = Field(default=0.35, gt=0.0, le=1.0)
    window: int = Field(default=8, ge=1)


class LiveDrawing(StrictModel):
    bars: bool = False
    fps: bool = True


class LiveConfig(StrictModel):
    model: Path | None = None
    backend: Literal["auto", "litert", "keras"] = "auto"
    threads: int = Field(default=2, ge=1)
    crop_margin: float | Literal["auto"] = "auto"
    align: bool = True
    tta_flip: bool = False
    tta_zooms: TestTimeZooms = Field(default_factory=list)
    detect: LiveDetection = Field(default_factory=LiveDetection)
    track: LiveTracking = Field(default_factory=LiveTracking)
    smoothing: LiveSmoothing = Field(default_factory=LiveSmoothing)
    draw: LiveDrawing = Field(default_factory=LiveDrawing)
    snapshot_dir: Path = Path("snapshots")


# ------------------------------------------------------------------------ serve
class ServeLimits(StrictModel):
    """What one client may send: refused with 413 above these, before the image is decoded."""

    max_upload_mb: float = Field(default=10.0, gt=0.0)
    max_megapixels: float = Field(default=50.0, gt=0.0)
    max_frame_kb: int = Field(default=2048, ge=16)
    max_connections: int = Field(default=100, ge=1)


class ServeStream(StrictModel):
    """The annotated feed of ``--camera``/``--source`` at ``/stream.mjpg``."""

    jpeg_quality: int = Field(default=80, ge=10, le=100)
    max_fps: float = Field(default=15.0, gt=0.0)
    loop: bool = True


def _serve_detection() -> LiveDetection:
    """The server's detector: faces from 40 px in photos, one thread each.

    Measured on 2 cores (benchmarks/serve.py, a 640x480 photo of six faces): MTCNN
    from 20 px takes 32 ms a photo and the server answered 16 clients at a p95 of
    600-1000 ms; from 40 px, 14 ms and about 300 ms. Faces under 40 px are enlarged
    1.6x or more to reach the default model's 64 px input anyway. Its workers run
    side by side, and MTCNN gains nothing from a second thread.
    """
    return LiveDetection(min_face=40, mtcnn=MtcnnSettings(threads=1), blazeface=BlazeFaceSettings(threads=1))


class ServeConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    models: list[Path] = Field(default_factory=list)
    camera: int | None = Field(default=None, ge=0)
    source: str | None = None
    backend: Literal["auto", "litert", "keras"] = "auto"
    workers: int = Field(default=0, ge=0)
    threads: int = Field(default=1, ge=1)
    crop_margin: float | Literal["auto"] = "auto"
    align: bool = True
    tta_flip: bool = False
    tta_zooms: TestTimeZooms = Field(default_factory=list)
    detect: LiveDetection = Field(default_factory=_serve_detection)
    track: LiveTracking = Field(default_factory=LiveTracking)
    smoothing: LiveSmoothing = Field(default_factory=LiveSmoothing)
    draw: LiveDrawing = Field(default_factory=LiveDrawing)
    limits: ServeLimits = Field(default_factory=ServeLimits)
    stream: ServeStream = Field(default_factory=ServeStream)

    def live_config(self) -> LiveConfig:
        """The live pipeline's settings for the server's photos, camera frames and stream."""
        return LiveConfig(backend=self.backend, threads=self.threads, crop_margin=self.crop_margin,
                          align=self.align, tta_flip=self.tta_flip, tta_zooms=self.tta_zooms, detect=self.detect,
                          track=self.track, smoothing=self.smoothing, draw=self.draw)


STAGE_CONFIGS: dict[str, type[StrictModel]] = {
    "download": DownloadConfig,
    "clean": CleanConfig,
    "prepare": PrepareConfig,
    "augment": AugmentConfig,
    "train_cnn": CnnTrainConfig,
    "train_densenet": DenseNetTrainConfig,
    "evaluate": EvaluateConfig,
    "live": LiveConfig,
    "serve": ServeConfig,
}

M = TypeVar("M", bound=BaseModel)


def default_config_path(stage: str) -> Path:
    """``configs/<stage>.yaml`` relative to the working directory."""
    return Path("configs") / f"{stage}.yaml"


def load_config(
    model: type[M],
    path: Path | None = None,
    overrides: list[str] | None = None,
    options: dict[str, Any] | None = None,
    stage: str | None = None,
) -> tuple[M, str]:
    """Build a validated config and say where it came from.

    ``path`` None means ``configs/<stage>.yaml`` if it exists, else the
    built-in defaults. ``overrides`` are ``key=value`` strings; ``options`` are
    named command-line options (``None`` values are skipped).
    Returns the config and a short description of its origin for messages.
    """
    raw: dict[str, Any] = {}
    origin = "built-in defaults"
    if path is None and stage is not None and default_config_path(stage).is_file():
        path = default_config_path(stage)
    if path is not None:
        raw = _read_yaml_mapping(Path(path))
        origin = str(path)
    key_origins: dict[str, str] = {}
    for item in overrides or []:
        key, value = _parse_override(item)
        _set_dotted(raw, key, value, origin="--set")
        key_origins[key] = f"--set {key}"
    for key, value in (options or {}).items():
        if value is not None:
            _set_dotted(raw, key, value, origin="option")
            key_origins[key] = "a command-line option"
    try:
        return model.model_validate(raw), origin
    except ValidationError as exc:
        raise ConfigError(_explain(exc, model, origin, key_origins)) from None


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML, written beside every stage's outputs."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of keys to values, not {type(data).__name__}")
    return data


def _parse_override(item: str) -> tuple[str, Any]:
    """Split ``a.b=value`` and parse the value as a YAML scalar (or flow list/map)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key, value


def _set_dotted(raw: dict[str, Any], key: str, value: Any, origin: str) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{origin} {key}: '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Valid keys of the section at ``loc`` (None if it is not a model)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = _model_in(field.annotation)
        else:
            # Inside a dict or list: the next level is its value type.
            current = _model_in(current) if current is not None else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _model_in(annotation: Any) -> Any:
    """Find the BaseModel a field holds, directly or as a dict/list value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _explain(exc: ValidationError, model: type[BaseModel], file_origin: str,
             key_origins: dict[str, str]) -> str:
    """Turn pydantic's errors into lines a user can act on, naming where each key came from."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc)
        origin = next((o for k, o in key_origins.items() if key == k or key.startswith(k + ".")), file_origin)
        if error["type"] == "extra_forbidden":
            valid = _fields_at(model, loc[:-1]) or []
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?" if close else ""
            listing = f" (valid keys: {', '.join(valid)})" if valid and not close else ""
            lines.append(f"unknown key '{key}' in {origin}{hint}{listing}")
        elif error["type"] == "missing":
            lines.append(f"missing key '{key}' in {origin}")
        else:
            got = error.get("input")
            lines.append(f"'{key}' in {origin}: {error['msg'].lower()} (got {got!r})")
    return "; ".join(lines)
