"""Stage configuration: pydantic models (one module per group of stages), YAML loading and overrides.

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
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aidentify.config.analyze import AnalyzeConfig, parse_span
from aidentify.config.base import StrictModel, TestTimeZooms
from aidentify.config.data import (
    AugmentConfig,
    CarveSplits,
    CleanConfig,
    DatasetSource,
    Dedup,
    DetectMode,
    DownloadConfig,
    FaceDetection,
    KaggleItem,
    LabelRule,
    PrepareConfig,
)
from aidentify.config.faces import BlazeFaceSettings, FaceDetectorSettings, HaarSettings, MtcnnSettings
from aidentify.config.runtime import (
    EvaluateConfig,
    LiveConfig,
    LiveDetection,
    LiveDrawing,
    LiveSmoothing,
    LiveTracking,
    ServeConfig,
    ServeLimits,
    ServeStream,
)
from aidentify.config.train import (
    TRAIN_CONFIGS,
    Augmentation,
    AverageConfig,
    CnnArchitecture,
    CnnTrainConfig,
    DenseNetArchitecture,
    DenseNetTrainConfig,
    Distillation,
    EarlyStop,
    FineTune,
    ReduceLR,
    TrainCommon,
    WeightAveraging,
)
from aidentify.errors import ConfigError
from aidentify.files import read_utf8

STAGE_CONFIGS: dict[str, type[StrictModel]] = {
    "download": DownloadConfig,
    "clean": CleanConfig,
    "prepare": PrepareConfig,
    "augment": AugmentConfig,
    "train_cnn": CnnTrainConfig,
    "train_densenet": DenseNetTrainConfig,
    "average": AverageConfig,
    "evaluate": EvaluateConfig,
    "live": LiveConfig,
    "serve": ServeConfig,
    "analyze": AnalyzeConfig,
}

M = TypeVar("M", bound=BaseModel)
SEXAGESIMAL = re.compile(r"^\s*[-+]?[0-9][0-9_]*(\.[0-9]*)?(:[0-9.]+)+\s*$")  # 10:20 kept as text in --set
SUGGEST_CUTOFF = 0.6  # difflib similarity an unknown key needs for a "did you mean" (0.5 let 'nosuch' match 'source')


def default_config_path(stage: str) -> Path:
    """``configs/<stage>.yaml`` relative to the working directory."""
    return Path("configs") / f"{stage}.yaml"


def load_config(
    model: type[M],
    path: Path | None = None,
    overrides: list[str] | None = None,
    options: dict[str, Any] | None = None,
    stage: str | None = None,
    options_from: str = "a command-line option",
) -> tuple[M, str]:
    """Build a validated config and say where it came from.

    ``path`` None means ``configs/<stage>.yaml`` if it exists, else the
    built-in defaults. ``overrides`` are ``key=value`` strings; ``options`` are
    named command-line options (``None`` values are skipped); ``options_from`` names where they
    came from in messages (``load()``'s keyword arguments use it).
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
        key_origins[key] = f"--set {item.strip()}"
    for key, value in (options or {}).items():
        if value is not None:
            _set_dotted(raw, key, value, origin="option")
            key_origins[key] = options_from
    try:
        return model.model_validate(raw), origin
    except ValidationError as exc:
        raise ConfigError(_explain(exc, model, origin, key_origins)) from None


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML, written beside every stage's outputs."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise ConfigError(f"--config {path} is a folder, not a YAML file; give the path of a .yaml file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(read_utf8(path, ConfigError))
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
    if SEXAGESIMAL.match(text):
        return key, text.strip()  # YAML 1.1 would read 10:20 as 620 (base 60); a span is meant
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


def _origin_of(key: str, key_origins: dict[str, str], file_origin: str) -> str:
    """Where ``key`` was set: the ``--set`` or option that set it, a value inside it, or a section
    holding it (``--set nosuch.key=1`` makes the unknown section ``nosuch``); else the file or defaults."""
    for given, origin in key_origins.items():
        if key == given or key.startswith(given + ".") or given.startswith(key + "."):
            return origin
    return file_origin


def _explain(exc: ValidationError, model: type[BaseModel], file_origin: str,
             key_origins: dict[str, str]) -> str:
    """Turn pydantic's errors into lines a user can act on, naming where each key came from."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc)
        origin = _origin_of(key, key_origins, file_origin)
        if error["type"] == "extra_forbidden":
            valid = _fields_at(model, loc[:-1]) or []
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=SUGGEST_CUTOFF)
            hint = f"; did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?" if close else ""
            listing = f" (valid keys: {', '.join(valid)})" if valid and not close else ""
            lines.append(f"unknown key '{key}' in {origin}{hint}{listing}")
        elif error["type"] == "missing":
            lines.append(f"missing key '{key}' in {origin}")
        else:
            got = error.get("input")
            lines.append(f"'{key}' in {origin}: {error['msg'].lower()} (got {got!r})")
    return "; ".join(lines)
