"""``train``: fit a model on the prepared data and keep everything about the run.

Each run gets ``<project>/<model>/<name>N/``:

- ``config.yaml``: the resolved config; ``run.json``: data manifest hash,
  class names, library versions, status and best epoch;
- ``results.csv``: one row of metrics per epoch; ``curves.png``;
- ``weights/best.keras`` (best validation epoch) and ``weights/last.keras``
  with ``weights/state.json`` (epoch and phase reached), for ``--resume``;
- ``tensorboard/``: TensorBoard logs.

DenseNet trains in two phases: the head with the base frozen, then the top
``fine_tune.unfreeze_layers`` of the base (BatchNorm frozen) at a low rate.
Ctrl-C saves ``last.keras`` and the state, so ``--resume RUN_DIR`` continues.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidentify import __version__
from aidentify.config import TRAIN_CONFIGS, TrainCommon, dump_config, load_config
from aidentify.data.images import worker_count
from aidentify.errors import ConfigError, DataError
from aidentify.files import atomic_write_text, sha256_file
from aidentify.native_logs import import_tensorflow
from aidentify.progress import ProgressFn, no_progress
from aidentify.train.data import TrainingInput, balanced_class_weights, load_training_input, make_dataset
from aidentify.inference.modelfile import read_metadata, resolve_model_path, save_model

# Training images that set the BatchNorm statistics of a model unfolded from .tflite (init_weights).
TFLITE_CALIBRATION_IMAGES = 1024


class TrainingInterrupted(Exception):
    """Ctrl-C during training; the run folder holds a resumable checkpoint."""

    def __init__(self, run_dir: Path):
        super().__init__(f"interrupted; continue with: aidentify train --resume {run_dir}")
        self.run_dir = run_dir


@dataclass
class TrainEvents:
    """How the library reports training to its caller (the CLI renders these)."""

    batch: ProgressFn = no_progress  # task "epoch N/M" for training batches; other tasks for work before them
    epoch: Callable[[dict[str, Any]], None] = lambda info: None
    message: Callable[[str], None] = lambda text: None


@dataclass
class TrainResult:
    run_dir: Path
    classes: list[str]
    epochs_run: int
    best: dict[str, Any] = field(default_factory=dict)
    parameters: int = 0


def next_run_dir(parent: Path, name: str) -> Path:
    """``parent/name``, then ``name2``, ``name3``...: never reuse a run folder."""
    parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = parent / (name if n == 1 else f"{name}{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One process per run folder: a second `train --resume` of a busy run is refused.

    The lock holds the owner's PID; a lock left by a process that no longer
    exists (killed, machine restarted) is taken over.
    """
    if not run_dir.is_dir():
        raise DataError(f"run folder not found: {run_dir}")
    lock = run_dir / ".lock"
    try:
        other = int(lock.read_text().strip())
        os.kill(other, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass
    except PermissionError:  # alive, owned by someone else
        raise DataError(f"{run_dir} is being trained by process {lock.read_text().strip()}") from None
    else:
        if other != os.getpid():
            raise DataError(f"{run_dir} is being trained by process {other}; wait for it or stop it first")
    lock.write_text(str(os.getpid()))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _trim_results(run_dir: Path, epochs_done: int) -> None:
    """Keep only the result rows of epochs the saved state covers (no duplicates after a resume)."""
    results = _read_results(run_dir)
    if not results.empty and (results["epoch"] >= epochs_done).any():
        atomic_write_text(run_dir / "results.csv", results[results["epoch"] < epochs_done].to_csv(index=False))


def seed_everything(seed: int) -> None:
    """Same seed and config give the same split, the same batches and, on CPU, the same metrics."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def random_stream_seed(seed: int, resumes: int, epochs_done: int) -> int:
    """The seed for this process's shuffling, augmentation and dropout draws.

    A fresh run uses the configured seed. A resumed run must not: every random
    stream would restart where epoch 1 started, so the resumed epochs would replay
    epoch 1's exact batches, augmented images and dropout masks, which the model
    has already fitted. On the default model's third stage the replayed batches
    scored 0.88 training accuracy against 0.85 for fresh ones, and the resumed
    epochs trained on less variety. Each resume therefore gets its own seed,
    derived from the configured one, so it is still reproducible.
    """
    if resumes == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, resumes, epochs_done]).generate_state(1)[0] >> 1)


def reseed_random_layers(model: Any, seed: int) -> None:
    """Give every random layer of a loaded model (augmentation, dropout) a new stream.

    A ``.keras`` file stores each augmentation layer's configured seed but not how
    far its generator had run, so a loaded model would draw epoch 1's augmentations again.
    """
    import keras
    import numpy as np

    generators = list({id(value): value for layer in _all_layers(model) for value in vars(layer).values()
                       if isinstance(value, keras.random.SeedGenerator)}.values())
    for generator, start in zip(generators, np.random.SeedSequence(seed).generate_state(len(generators))):
        generator.state.assign(np.array([start, 0], dtype=generator.state.dtype))


def _all_layers(model: Any) -> Iterator[Any]:
    """The layers of ``model``, including those inside nested models (DenseNet's base)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def make_strategy(kind: str) -> Any:
    """``auto``: MirroredStrategy over several GPUs, else the default strategy.

    ``mirrored`` mirrors over all GPUs, or over all logical CPUs when there is
    no GPU (how the tests exercise it). ``multi_worker`` reads the cluster
    from the ``TF_CONFIG`` environment variable.
    """
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if kind == "none" or (kind == "auto" and len(gpus) < 2):
        return tf.distribute.get_strategy()
    if kind in ("auto", "mirrored"):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise ConfigError("strategy multi_worker needs TF_CONFIG describing the cluster (see the README)")
    return tf.distribute.MultiWorkerMirroredStrategy()


def device_summary(strategy: Any, mixed: bool) -> str:
    """One line on where training runs.

    Without a usable GPU, TensorFlow's own notice (a failed ``cuInit``) is
    filtered out at the default log level, so this line says it plainly and
    how to see TensorFlow's reasons.
    """
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    replicas = strategy.num_replicas_in_sync
    spread = f", {replicas} replicas ({type(strategy).__name__})" if replicas > 1 else ""
    if not gpus:
        return (f"device: CPU, {worker_count(0)} threads{spread} (no GPU found; "
                "TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's GPU messages)")
    precision = "mixed float16" if mixed else "float32"
    return f"device: {gpus} GPU{'s' if gpus > 1 else ''}{spread}, {precision}"


def _use_mixed_precision(setting: str) -> bool:
    import keras
    import tensorflow as tf

    on = setting == "on" or (setting == "auto" and bool(tf.config.list_physical_devices("GPU")))
    keras.mixed_precision.set_global_policy("mixed_float16" if on else "float32")
    return on


def _compile(model: Any, config: TrainCommon, learning_rate: float, steps: int, epochs: int) -> None:
    import keras

    rate: Any = learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps * epochs))
    optimizer = keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["bn", "bias", "norm"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )


def _build(config: TrainCommon, n_classes: int, base_weights: Path | None = None) -> Any:
    from aidentify.train.models import build_cnn, build_densenet

    if config.model == "cnn":
        return build_cnn(config.image_size, n_classes, config.cnn, config.augmentation, config.seed)
    return build_densenet(config.image_size, n_classes, config.densenet, config.augmentation, config.seed,
                          weights=base_weights)


def _resolve_base_weights(config: TrainCommon, events: TrainEvents) -> tuple[TrainCommon, Path | None]:
    """DenseNet's base weights as a local file, fetched or checked before any training data is read.

    Returns the config to record (a ``densenet.weights`` path made absolute;
    ``imagenet`` stays, as Keras's cache differs per machine) and the file.
    A run starting from ``init_weights`` replaces every base weight, so it
    fetches nothing and builds the base with random weights.
    """
    if config.model != "densenet" or config.init_weights:
        return config, None
    from aidentify.train.models import resolve_densenet_weights

    weights = resolve_densenet_weights(config.densenet.weights, events.message)
    if weights is not None and config.densenet.weights != "imagenet":
        config = config.model_copy(update={"densenet": config.densenet.model_copy(update={"weights": weights})})
    return config, weights


def _initial_weights_source(config: TrainCommon, classes: list[str]) -> tuple[Path, dict[str, Any]]:
    """Check that ``init_weights`` names a model of the same kind and classes.

    Starting from trained weights is how a further cosine cycle continues a run
    (the default model's recipe) and how a user fine-tunes a model on new data;
    a model made for other classes cannot seed this one. A ``.keras`` model
    trained at another ``image_size`` can: both networks are convolutional up to
    a global average pooling, so their weights do not depend on the input size
    (the default model went from 48 to 64 px this way). A ``.tflite`` source
    must match the size, because unfolding it compares the rebuilt model with the
    file on the same images. ``default`` names the model shipped with the
    package. Returns the model file and its metadata.
    """
    name = Path(config.init_weights)
    source = resolve_model_path(None if str(name) == "default" else name)  # None: the shipped model
    flat = source.suffix.lower() == ".tflite"
    if flat and config.model != "cnn":
        raise ConfigError(f"init_weights {source.name}: only the custom CNN can start from a .tflite file; "
                          "give the densenet run folder or its .keras model")
    metadata = read_metadata(source)
    expected = {"model": config.model, "classes": classes, **({"input_size": config.image_size} if flat else {})}
    for key, value in expected.items():
        if metadata.get(key) != value:
            fix = (f"a .tflite file starts runs at its own size only: --set image_size={metadata.get(key)} "
                   "(a .keras model can start a run at any size)" if key == "input_size"
                   else "start from a model trained with the same classes and model")
            raise ConfigError(f"init_weights {source} has {key} {metadata.get(key)!r}, this run needs {value!r}; {fix}")
    return source, metadata


def _load_initial_weights(model: Any, source: Path, calibration_paths: list[str], image_size: int) -> str:
    """Copy the weights of ``source`` into the freshly built ``model``; returns what was done, for the log.

    A ``.keras`` model gives its weights layer by layer (matched by name); a
    ``.tflite`` export is unfolded by :mod:`aidentify.train.tflite_weights`,
    which needs a sample of training images for the BatchNorm statistics.
    """
    import keras

    if source.suffix.lower() == ".tflite":
        from aidentify.train.tflite_weights import load_tflite_weights

        images = _sample_images(calibration_paths, image_size, TFLITE_CALIBRATION_IMAGES)
        difference = load_tflite_weights(model, source, images)
        return (f"starting from the weights of {source}, unfolded from TFLite (BatchNorm statistics from "
                f"{len(images)} training images; largest probability difference {difference:.4f})")
    trained = keras.models.load_model(source, compile=False)
    by_name = {layer.name: layer for layer in trained.layers}
    for layer in model.layers:
        if not layer.weights:
            continue
        other = by_name.get(layer.name)
        if other is None or [w.shape for w in other.weights] != [w.shape for w in layer.weights]:
            raise ConfigError(f"init_weights {source} does not match this architecture at layer {layer.name!r}; "
                              "use the same cnn/densenet settings as the run it came from")
        layer.set_weights(other.get_weights())
    trained_size = trained.input_shape[1]
    resized = f" (trained at {trained_size} px, this run is {image_size} px)" if trained_size != image_size else ""
    return f"starting from the weights of {source}{resized}"


def _sample_images(paths: list[str], image_size: int, count: int) -> Any:
    """``count`` images spread evenly over ``paths`` (which are grouped by class), as one uint8 array."""
    import numpy as np

    step = max(1, len(paths) // count)
    dataset = make_dataset(paths[::step][:count], None, image_size, batch_size=256, cache="none")
    return np.concatenate([batch.numpy() for batch in dataset])


def _distill_targets(config: TrainCommon, data: TrainingInput, events: TrainEvents) -> dict[str, Any]:
    """Mix the teachers' predictions into the train targets (val keeps its labels); returns what run.json keeps."""
    from aidentify.train.distill import distilled_targets, resolve_teachers, teacher_probabilities, teacher_record

    teachers = resolve_teachers(config.distill, data.classes)
    events.message(f"distilling from {len(teachers)} teacher(s), weight {config.distill.weight:g}: "
                   + ", ".join(str(t) for t in teachers))
    probs = teacher_probabilities(teachers, data.train.paths, config.distill.tta_flip, progress=events.batch)
    data.train.targets = distilled_targets(data.train.targets, probs, config.distill.weight)
    return teacher_record(teachers, config.distill)


def _phases(config: TrainCommon) -> list[tuple[str, int, float]]:
    """(name, epochs, learning rate) for each training phase."""
    phases = [("train" if config.model == "cnn" else "head", config.epochs, config.learning_rate)]
    if config.model == "densenet" and config.densenet.fine_tune.epochs:
        fine = config.densenet.fine_tune
        phases.append(("fine_tune", fine.epochs, fine.learning_rate))
    return phases


def _faces_settings(data_dir: Path) -> dict[str, Any]:
    """How the training crops were made, read from the prepare stage's config."""
    import yaml

    for folder in (data_dir, data_dir.parent / "prepared"):
        config_file = folder / "config.yaml"
        if config_file.is_file():
            saved = yaml.safe_load(config_file.read_text()) or {}
            if "faces" in saved:
                return {"faces": saved["faces"], "prepared_size": saved.get("image_size")}
            if "prepared_dir" in saved:
                return _faces_settings(Path(saved["prepared_dir"]))
    return {}


def _load_resume(run_dir: Path) -> tuple[TrainCommon, dict[str, Any]]:
    run_dir = Path(run_dir)
    state_file = run_dir / "weights" / "state.json"
    if not (run_dir / "config.yaml").is_file():
        raise DataError(f"{run_dir} is not a training run folder (no config.yaml)")
    if not state_file.is_file() or not (run_dir / "weights" / "last.keras").is_file():
        raise DataError(f"nothing to resume in {run_dir}: no weights/last.keras yet; start a new run")
    import yaml

    model_name = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("model", "cnn")
    config, _ = load_config(TRAIN_CONFIGS[model_name], run_dir / "config.yaml")
    return config, json.loads(state_file.read_text())


def _versions() -> dict[str, str]:
    import keras
    import numpy
    import tensorflow as tf

    return {"aidentify": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def train(config: TrainCommon, events: TrainEvents | None = None, resume: Path | None = None) -> TrainResult:
    """Train ``config.model``; see the module docstring for what a run leaves behind."""
    events = events or TrainEvents()
    if resume is not None:
        with run_lock(Path(resume)):
            return _train(config, events, resume)
    return _train(config, events, None)


def _train(config: TrainCommon, events: TrainEvents, resume: Path | None) -> TrainResult:
    if resume is not None:
        config, state = _load_resume(resume)
        run_dir = Path(resume)
        planned = sum(epochs for _, epochs, _ in _phases(config))
        left = "nothing left to train" if state["epoch"] >= planned else f"{planned - state['epoch']} epochs to go"
        events.message(f"resuming {run_dir} after epoch {state['epoch']} of {planned} ({left})")
    else:
        state = {"phase": 1, "epoch": 0, "best": None}
        data_check = Path(config.data_dir) / "manifest.csv"
        if not data_check.is_file():
            raise DataError(f"no training data at {data_check}; run `aidentify augment` first "
                            "(or --set data_dir=data/prepared to train without augmentation)")
        config, base_weights = _resolve_base_weights(config, events)
        run_dir = next_run_dir(Path(config.project) / config.model, config.name)
        try:
            atomic_write_text(run_dir / "config.yaml", dump_config(config))
            with run_lock(run_dir):
                return _fit(config, events, run_dir, state, resumed=False, base_weights=base_weights)
        except (ConfigError, DataError):
            if not (run_dir / "weights").exists():  # refused before its first epoch: leave no empty run behind
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    _trim_results(run_dir, state["epoch"])
    return _fit(config, events, run_dir, state, resumed=True)


def _fit(config: TrainCommon, events: TrainEvents, run_dir: Path, state: dict[str, Any],
         resumed: bool, base_weights: Path | None = None) -> TrainResult:

    import_tensorflow()
    import keras

    first_start = _first_run_info(run_dir) if resumed else {}
    resumes = len(first_start.get("resumed", [])) + 1 if resumed else 0
    stream_seed = random_stream_seed(config.seed, resumes, state["epoch"])
    seed_everything(stream_seed)
    data = load_training_input(Path(config.data_dir), config.labels, config.max_samples, config.seed)
    distillation = _distill_targets(config, data, events) if config.distill.teachers else {}
    strategy = make_strategy(config.strategy)
    mixed = _use_mixed_precision(config.mixed_precision)
    events.message(device_summary(strategy, mixed))
    train_ds = make_dataset(data.train.paths, data.train.targets, config.image_size, config.batch_size,
                            shuffle=True, seed=stream_seed, cache=config.cache)
    val_ds = make_dataset(data.val.paths, data.val.targets, config.image_size, config.batch_size,
                          cache=config.cache)
    steps = math.ceil(len(data.train.paths) / config.batch_size)
    init_source, init_metadata = (_initial_weights_source(config, data.classes) if config.init_weights
                                  and not resumed else (None, {}))
    metadata = {
        "format": 1,
        "model": config.model,
        "classes": data.classes,
        "input_size": config.image_size,
        "channels": 1,
        "input_dtype": "uint8",
        "labels": config.labels,
        "run": run_dir.name,
        "crops": data.crops,
        **_faces_settings(Path(config.data_dir)),
    }
    run_info = {
        "run_dir": str(run_dir),
        "model": config.model,
        "status": "running",
        "data_manifest": str(Path(config.data_dir) / "manifest.csv"),
        "data_manifest_sha256": data.manifest_sha256,
        "classes": data.classes,
        "train_images": len(data.train.paths),
        "val_images": len(data.val.paths),
        "train_class_counts": data.class_counts,
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "mixed_precision": mixed,
        "cpu_threads": worker_count(0),
        **({"init_weights": str(init_source), "init_weights_sha256": sha256_file(init_source)} if init_source else {}),
        # A shipped model's own history, so the new model's provenance can go back past it.
        **({"init_weights_provenance": init_metadata["provenance"]} if "provenance" in init_metadata else {}),
        **({"densenet_weights": str(base_weights), "densenet_weights_sha256": sha256_file(base_weights)}
           if base_weights else {}),
        **({"distill": distillation} if distillation else {}),
        "versions": _versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if resumed:
        run_info = _resumed_run_info(first_start, run_info)
    atomic_write_text(run_dir / "run.json", json.dumps(run_info, indent=2))

    with strategy.scope():
        last = run_dir / "weights" / "last.keras"
        if resumed:
            model = keras.models.load_model(last, compile=True)
            reseed_random_layers(model, stream_seed)
        else:
            model = _build(config, len(data.classes), base_weights)
            if init_source is not None:
                events.message(_load_initial_weights(model, init_source, data.train.paths, config.image_size))
            _compile(model, config, config.learning_rate, steps, config.epochs)
    class_weight = balanced_class_weights(data.class_counts, data.classes) if config.class_weights == "balanced" else None

    end_epoch = 0
    for index, (phase, phase_epochs, rate) in enumerate(_phases(config), 1):
        start_epoch, end_epoch = end_epoch, end_epoch + phase_epochs
        if state["epoch"] >= end_epoch:
            continue  # finished before an interruption
        state["epoch"] = max(state["epoch"], start_epoch)
        if index == 2 and state["phase"] < 2:
            from aidentify.train.models import unfreeze_top

            with strategy.scope():
                trainable = unfreeze_top(model, config.densenet.fine_tune.unfreeze_layers)
                _compile(model, config, rate, steps, phase_epochs)
            state["phase"] = 2
            events.message(f"fine-tuning: {trainable} DenseNet layers unfrozen, learning rate {rate:g}")
        callbacks = _callbacks(config, run_dir, metadata, state, events, steps, end_epoch, phase)
        try:
            model.fit(train_ds, validation_data=val_ds, initial_epoch=state["epoch"], epochs=end_epoch,
                      callbacks=callbacks, class_weight=class_weight, shuffle=False, verbose=0)
        except KeyboardInterrupt:
            save_model(model, run_dir / "weights" / "last.keras", metadata)
            atomic_write_text(run_dir / "weights" / "state.json", json.dumps(state, indent=2))
            _finish_run(run_dir, run_info, state, "interrupted")
            raise TrainingInterrupted(run_dir) from None
        if state["epoch"] < end_epoch:  # early stopping ended this phase
            state["epoch"] = end_epoch
            atomic_write_text(run_dir / "weights" / "state.json", json.dumps(state, indent=2))

    _finish_run(run_dir, run_info, state, "finished")
    return TrainResult(run_dir, data.classes, state["epoch"], state["best"] or {}, model.count_params())


def _callbacks(config, run_dir: Path, metadata, state, events, steps: int, end_epoch: int, phase: str):
    import keras

    monitor = config.early_stopping.monitor
    better = (lambda new, old: new > old) if monitor.endswith("accuracy") else (lambda new, old: new < old)

    class Checkpoints(keras.callbacks.Callback):
        """Save last (and best) with AIdentify's metadata after every epoch."""

        def on_train_batch_end(self, batch, logs=None):
            events.batch(f"epoch {state['epoch'] + 1}/{end_epoch}", batch + 1, steps)

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            state["epoch"] = epoch + 1
            best = state["best"]
            improved = best is None or better(logs.get(monitor, float("nan")), best.get(monitor, float("nan")))
            if improved:
                state["best"] = {"epoch": epoch + 1, "phase": phase, **logs}
                save_model(self.model, run_dir / "weights" / "best.keras", metadata)
            save_model(self.model, run_dir / "weights" / "last.keras", metadata)
            atomic_write_text(run_dir / "weights" / "state.json", json.dumps(state, indent=2))
            events.epoch({"epoch": epoch + 1, "epochs": end_epoch, "phase": phase, "best": improved, **logs})

    callbacks: list[Any] = [keras.callbacks.CSVLogger(str(run_dir / "results.csv"), append=True)]
    if config.early_stopping.enabled:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.early_stopping.patience, restore_best_weights=True,
            mode="max" if monitor.endswith("accuracy") else "min"))
    if config.reduce_lr.enabled and config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.reduce_lr.factor, patience=config.reduce_lr.patience,
            min_lr=config.reduce_lr.min_lr))
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False))
    callbacks.append(Checkpoints())  # last, so it sees the learning rate other callbacks set
    return callbacks


def _read_results(run_dir: Path):
    import pandas as pd

    path = run_dir / "results.csv"
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def _resumed_run_info(first: dict, run_info: dict) -> dict:
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


def _first_run_info(run_dir: Path) -> dict:
    """The ``run.json`` an earlier start of this run wrote (empty if unreadable)."""
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _finish_run(run_dir: Path, run_info: dict, state: dict, status: str) -> None:
    run_info.update(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                    epochs_done=state["epoch"], best=state["best"])
    atomic_write_text(run_dir / "run.json", json.dumps(run_info, indent=2))
    plot_curves(run_dir)


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
