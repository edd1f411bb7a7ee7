"""Run folders: where a training run keeps everything about itself, and how it is resumed.

Each run gets ``<project>/<model>/<name>N/``:

- ``config.yaml``: the resolved config; ``run.json``: data manifest hash,
  class names, library versions, status and best epoch;
- ``results.csv``: one row of metrics per epoch; ``curves.png``;
- ``weights/best.keras`` (best validation epoch) and ``weights/last.keras``
  with ``weights/state.json`` (epoch and phase reached), for ``--resume``;
- ``tensorboard/``: TensorBoard logs.

The folder is the run's only memory: a resumed run reads back its config,
its state and what its first start recorded from here, so this module is the
one place that knows the folder's layout. The training loop itself
(:mod:`aidentify.train.fit`) only asks it to create, lock, record and finish.
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aidentify import __version__
from aidentify.config import TRAIN_CONFIGS, TrainCommon, load_config
from aidentify.errors import AidentifyError, DataError
from aidentify.files import atomic_write_text, os_error_cause, read_utf8, unwritable_cause
from aidentify.processes import folder_lock


def next_run_dir(parent: Path, name: str) -> Path:
    """``parent/name``, then ``name2``, ``name3``...: never reuse a run folder."""
    n = 1
    cause = unwritable_cause(parent)  # checked before any work, like every output path
    if cause:
        raise DataError(f"cannot make a run folder in {parent}: {cause}")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            candidate = parent / (name if n == 1 else f"{name}{n}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                n += 1
    except OSError as exc:
        raise DataError(f"cannot make a run folder in {parent}: {os_error_cause(exc)}") from None


@contextlib.contextmanager
def fresh_run_dir(parent: Path, name: str) -> Iterator[Path]:
    """:func:`next_run_dir` that is removed again, with the parent folders it made, when the body fails:
    a failed command leaves no empty (or half-written) run folder behind."""
    made = [folder for folder in (parent, *parent.parents) if not folder.exists()]  # innermost first
    run_dir = next_run_dir(parent, name)
    try:
        yield run_dir
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if nothing else appeared there meanwhile
        raise


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One process per run folder: a second `train --resume` of a busy run is refused.

    An atomic ``flock`` on ``<run>/.lock`` (:func:`aidentify.processes.folder_lock`):
    two runs started together cannot both take it, and it ends with its process,
    so a run whose trainer was killed is free to resume.
    """
    if not run_dir.is_dir():
        raise DataError(f"run folder not found: {run_dir}")
    with folder_lock(run_dir / ".lock", f"{run_dir} is being trained"):
        yield


def load_resume(run_dir: Path) -> tuple[TrainCommon, dict[str, Any]]:
    """The config and the saved state (epoch, phase, best) of a run to continue."""
    run_dir = Path(run_dir)
    state_file = run_dir / "weights" / "state.json"
    if not (run_dir / "config.yaml").is_file():
        raise DataError(f"{run_dir} is not a training run folder (no config.yaml)")
    if not state_file.is_file() or not (run_dir / "weights" / "last.keras").is_file():
        raise DataError(f"nothing to resume in {run_dir}: no weights/last.keras yet; start a new run")
    import yaml

    model_name = (yaml.safe_load(read_utf8(run_dir / "config.yaml")) or {}).get("model", "cnn")
    config, _ = load_config(TRAIN_CONFIGS[model_name], run_dir / "config.yaml")
    return config, json.loads(read_utf8(state_file))


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``weights/state.json``, the epoch and phase that ``--resume`` continues from."""
    atomic_write_text(run_dir / "weights" / "state.json", json.dumps(state, indent=2))


def trim_results(run_dir: Path, epochs_done: int) -> None:
    """Keep only the result rows of epochs the saved state covers (no duplicates after a resume)."""
    results = _read_results(run_dir)
    if not results.empty and (results["epoch"] >= epochs_done).any():
        atomic_write_text(run_dir / "results.csv", results[results["epoch"] < epochs_done].to_csv(index=False))


def _read_results(run_dir: Path):
    import pandas as pd

    path = run_dir / "results.csv"
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def library_versions() -> dict[str, str]:
    """The versions ``run.json`` records, so a result can be traced to the software that made it."""
    import keras
    import numpy
    import tensorflow as tf

    return {"aidentify": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def first_run_info(run_dir: Path) -> dict:
    """The ``run.json`` an earlier start of this run wrote (empty if unreadable)."""
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def resumed_run_info(first: dict, run_info: dict) -> dict:
    """Keep what only the first start knew: where the weights came from, the teachers, the start time.

    A resumed run starts from its own ``last.keras``, so it cannot recompute these;
    without them the run would look as if it had started from random weights.
    """
    if not first:
        return run_info
    kept = {k: first[k] for k in ("init_weights", "init_weights_sha256", "init_weights_provenance", "distill",
                                  "densenet_weights", "densenet_weights_sha256", "started") if k in first}
    resumed = [*first.get("resumed", []), run_info["started"]]
    return {**run_info, **kept, "resumed": resumed}


def write_run_info(run_dir: Path, run_info: dict) -> None:
    """Write ``run.json``: at the start (status running), so a crashed run still says what it was."""
    atomic_write_text(run_dir / "run.json", json.dumps(run_info, indent=2))


def finish_run(run_dir: Path, run_info: dict, state: dict, status: str) -> None:
    """Record how the run ended in ``run.json`` and draw its curves."""
    run_info.update(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                    epochs_done=state["epoch"], best=state["best"])
    write_run_info(run_dir, run_info)
    plot_curves(run_dir)


@contextlib.contextmanager
def failure_recorded(run_dir: Path, run_info: dict, state: dict) -> Iterator[None]:
    """Whatever ends the body early marks the run in ``run.json``: no stopped run still reads ``running``.

    An error makes it ``failed`` with the error's one line; Ctrl-C outside the
    epoch loop (which records its own stop), ``interrupted``. Recording is best
    effort: the original error is what the user sees even when the disk is full.
    """
    try:
        yield
    except BaseException as exc:
        if run_info.get("status") == "running":
            with contextlib.suppress(Exception):
                stopped = isinstance(exc, KeyboardInterrupt)
                run_info["error"] = _one_line(exc)
                finish_run(run_dir, run_info, state, "interrupted" if stopped else "failed")
        raise


def _one_line(exc: BaseException) -> str:
    """An error as ``run.json`` keeps it: our own errors as their message, others with their type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, AidentifyError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def plot_curves(run_dir: Path) -> Path | None:
    """Loss and accuracy per epoch, train and validation, as ``curves.png``."""
    results = _read_results(run_dir)
    if results.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = results["epoch"] + 1
    for ax, metric in zip(axes, ("loss", "accuracy")):
        if metric in results:
            ax.plot(epochs, results[metric], label=f"train {metric}")
        if f"val_{metric}" in results:
            ax.plot(epochs, results[f"val_{metric}"], label=f"val {metric}")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out = run_dir / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
