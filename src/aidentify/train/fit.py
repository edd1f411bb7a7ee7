"""``train``: fit a model on the prepared data, one epoch loop per training phase.

This module is the orchestration: it reads the data, builds or loads the
model, runs the phases and reports through :class:`TrainEvents`. What a run
leaves on disk and how it resumes is :mod:`aidentify.train.runs`; the device,
precision and seeds are :mod:`aidentify.train.device`; where the starting
weights come from is :mod:`aidentify.train.starting_weights`.

DenseNet trains in two phases: the head with the base frozen, then the top
``fine_tune.unfreeze_layers`` of the base (BatchNorm frozen) at a low rate.
Ctrl-C saves ``last.keras`` and the state, so ``--resume RUN_DIR`` continues.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidentify.config import TrainCommon, dump_config
from aidentify.data.images import worker_count
from aidentify.errors import ConfigError, DataError
from aidentify.files import atomic_write_text, sha256_file
from aidentify.inference.modelfile import save_model
from aidentify.native_logs import import_tensorflow
from aidentify.progress import ProgressFn, no_progress
from aidentify.train.data import (TrainingInput, check_images_readable, class_weights_for, draw_labels,
                                  load_training_input, make_dataset, mixup_batches)
from aidentify.train.degrade import degrade_batches
from aidentify.train.device import (device_summary, make_strategy, random_stream_seed, reseed_random_layers,
                                    keras_fit_under, seed_everything, shard_across_workers, use_mixed_precision,
                                    worker_role)
from aidentify.train.runs import (failure_recorded, finish_run, first_run_info, library_versions, load_resume,
                                  next_run_dir, resumed_run_info, run_lock, save_state, trim_results, write_run_info)
from aidentify.train.starting_weights import initial_weights_source, load_initial_weights, resolve_base_weights


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
    # False on a multi-worker cluster's other workers: the chief saves the run, and run_dir
    # was this worker's scratch copy, removed when training ended
    chief: bool = True
    worker: int = 0
    workers: int = 1


def _compile(model: Any, config: TrainCommon, learning_rate: float, steps: int, epochs: int) -> None:
    import keras

    rate: Any = learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps * epochs))
    optimizer = keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay,
                                       use_ema=config.ema.enabled, ema_momentum=config.ema.momentum)
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


def _distill_targets(config: TrainCommon, data: TrainingInput, events: TrainEvents) -> dict[str, Any]:
    """Mix the teachers' predictions into the train targets (val keeps its labels); returns what run.json keeps."""
    from aidentify.inference.classify import TestTimeViews
    from aidentify.train.distill import distilled_targets, resolve_teachers, teacher_probabilities, teacher_record

    teachers = resolve_teachers(config.distill, data.classes)
    views = TestTimeViews.from_settings(config.distill)  # the same tta_flip/tta_zooms keys as evaluate's
    events.message(f"distilling from {len(teachers)} teacher(s) in {views.count} view(s), weight "
                   f"{config.distill.weight:g}: " + ", ".join(str(t) for t in teachers))
    probs = teacher_probabilities(teachers, data.train.paths, views, progress=events.batch)
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


def train(config: TrainCommon, events: TrainEvents | None = None, resume: Path | None = None) -> TrainResult:
    """Train ``config.model``; see the module docstring for what a run leaves behind."""
    events = events or TrainEvents()
    if resume is not None:
        with run_lock(Path(resume)):
            return _train(config, events, resume)
    return _train(config, events, None)


def _train(config: TrainCommon, events: TrainEvents, resume: Path | None) -> TrainResult:
    if resume is not None:
        config, state = load_resume(resume)
        run_dir = Path(resume)
        planned = sum(epochs for _, epochs, _ in _phases(config))
        left = "nothing left to train" if state["epoch"] >= planned else f"{planned - state['epoch']} epochs to go"
        if config.strategy == "multi_worker":
            raise ConfigError("--resume does not continue a multi_worker run (its workers would need the "
                              "chief's run folder); start a new run from its weights with "
                              f"--set init_weights={run_dir}")
        events.message(f"resuming {run_dir} after epoch {state['epoch']} of {planned} ({left})")
    else:
        state = {"phase": 1, "epoch": 0, "best": None}
        data_check = Path(config.data_dir) / "manifest.csv"
        if not data_check.is_file():
            raise DataError(f"no training data at {data_check}; run `aidentify augment` first "
                            "(or --set data_dir=data/prepared to train without augmentation)")
        config, base_weights = resolve_base_weights(config, events.message)
        if config.strategy == "multi_worker" and not worker_role().chief:
            return _train_beside_the_chief(config, events, state, base_weights)
        run_dir = next_run_dir(Path(config.project) / config.model, config.name)
        try:
            atomic_write_text(run_dir / "config.yaml", dump_config(config))
            with run_lock(run_dir):
                return _fit(config, events, run_dir, state, resumed=False, base_weights=base_weights)
        except (ConfigError, DataError):
            if not (run_dir / "weights").exists():  # refused before its first epoch: leave no empty run behind
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    trim_results(run_dir, state["epoch"])
    return _fit(config, events, run_dir, state, resumed=True)


def _train_beside_the_chief(config: TrainCommon, events: TrainEvents, state: dict[str, Any],
                            base_weights: Path | None) -> TrainResult:
    """A multi-worker cluster's other workers: train in step with the chief, keep nothing.

    Every worker runs the same epochs, callbacks and saves as the chief, so any
    collective op among them is met by all of them, but only the chief's run
    folder is kept: the others write theirs into a scratch folder, removed at the end.
    """
    with tempfile.TemporaryDirectory(prefix="aidentify-worker-") as scratch:
        run_dir = Path(scratch) / config.model / config.name
        run_dir.mkdir(parents=True)
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
        return _fit(config, events, run_dir, state, resumed=False, base_weights=base_weights)


def _fit(config: TrainCommon, events: TrainEvents, run_dir: Path, state: dict[str, Any],
         resumed: bool, base_weights: Path | None = None) -> TrainResult:

    import_tensorflow()

    strategy = make_strategy(config.strategy)  # first: a multi-worker strategy must precede any TensorFlow op
    role = worker_role() if config.strategy == "multi_worker" else None
    first_start = first_run_info(run_dir) if resumed else {}
    resumes = len(first_start.get("resumed", [])) + 1 if resumed else 0
    stream_seed = random_stream_seed(config.seed, resumes, state["epoch"])
    seed_everything(stream_seed)
    data = load_training_input(config.data_dir, config.labels, config.max_samples, config.seed, config.vote_weights)
    distillation = _distill_targets(config, data, events) if config.distill.teachers else {}
    policy = use_mixed_precision(config.mixed_precision)
    events.message(device_summary(strategy, policy))
    train_ds = make_dataset(data.train.paths, data.train.targets, config.image_size, config.batch_size,
                            shuffle=True, seed=stream_seed, cache=config.cache)
    val_ds = make_dataset(data.val.paths, data.val.targets, config.image_size, config.batch_size,
                          cache=config.cache)
    if config.labels == "drawn":
        train_ds = draw_labels(train_ds, stream_seed)
    if config.degrade.share:
        train_ds = degrade_batches(train_ds, config.degrade, stream_seed)
    if config.mixup:
        train_ds = mixup_batches(train_ds, config.mixup, stream_seed)
    train_ds, val_ds = shard_across_workers(train_ds, strategy), shard_across_workers(val_ds, strategy)
    steps = math.ceil(len(data.train.paths) / config.batch_size)
    init_source, init_metadata = (initial_weights_source(config, data.classes) if config.init_weights
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
        **({"workers": role.count} if role else {}),
        "mixed_precision": policy != "float32",
        "precision_policy": policy,
        "cpu_threads": worker_count(0),
        **({"init_weights": str(init_source), "init_weights_sha256": sha256_file(init_source)} if init_source else {}),
        # A shipped model's own history, so the new model's provenance can go back past it.
        **({"init_weights_provenance": init_metadata["provenance"]} if "provenance" in init_metadata else {}),
        **({"densenet_weights": str(base_weights), "densenet_weights_sha256": sha256_file(base_weights)}
           if base_weights else {}),
        **({"distill": distillation} if distillation else {}),
        "versions": library_versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if resumed:
        run_info = resumed_run_info(first_start, run_info)
    write_run_info(run_dir, run_info)

    with failure_recorded(run_dir, run_info, state):  # an error leaves the run marked failed, not running
        model = _model_to_train(config, events, run_dir, resumed, strategy, stream_seed, data, init_source,
                                base_weights, steps)
        _train_phases(config, events, model, strategy, (train_ds, val_ds), data, run_dir, run_info, metadata,
                      state, steps)
        finish_run(run_dir, run_info, state, "finished")
    return TrainResult(run_dir, data.classes, state["epoch"], state["best"] or {}, model.count_params(),
                       **({"chief": role.chief, "worker": role.index, "workers": role.count} if role else {}))


def _model_to_train(config: TrainCommon, events: TrainEvents, run_dir: Path, resumed: bool, strategy: Any,
                    stream_seed: int, data: TrainingInput, init_source: Path | None, base_weights: Path | None,
                    steps: int) -> Any:
    """The interrupted run's ``last.keras`` on resume; else a new, compiled build (from ``init_weights`` if set)."""
    import keras

    with strategy.scope():
        if resumed:
            model = keras.models.load_model(run_dir / "weights" / "last.keras", compile=True)
            reseed_random_layers(model, stream_seed)
            return model
        model = _build(config, len(data.classes), base_weights)
        if init_source is not None:
            events.message(load_initial_weights(model, init_source, data.train.paths, config.image_size))
        _compile(model, config, config.learning_rate, steps, config.epochs)
    return model


def _train_phases(config: TrainCommon, events: TrainEvents, model: Any, strategy: Any, datasets: tuple[Any, Any],
                  data: TrainingInput, run_dir: Path, run_info: dict[str, Any], metadata: dict[str, Any],
                  state: dict[str, Any], steps: int) -> None:
    """Run the phases left (one for the CNN; frozen then fine-tuned for DenseNet), updating ``state``.

    Raises :class:`TrainingInterrupted` on Ctrl-C after saving ``last.keras``
    and the state, and :class:`DataError` naming the file when the input
    pipeline meets an image it cannot read.
    """
    tf = import_tensorflow()
    train_ds, val_ds = datasets
    class_weight = class_weights_for(config.class_weights, data.class_counts, data.classes)
    unreadable = (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.PermissionDeniedError,
                  tf.errors.DataLossError)
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
            state["phase"], state["ema_weights_in_model"] = 2, False  # a new optimizer, a new average
            events.message(f"fine-tuning: {trainable} DenseNet layers unfrozen, learning rate {rate:g}")
        callbacks = _callbacks(config, run_dir, metadata, state, events, steps, end_epoch, phase)
        try:
            with keras_fit_under(strategy, model):
                model.fit(train_ds, validation_data=val_ds, initial_epoch=state["epoch"], epochs=end_epoch,
                          callbacks=callbacks, class_weight=class_weight, shuffle=False, verbose=0)
        except KeyboardInterrupt:
            save_model(model, run_dir / "weights" / "last.keras", metadata)
            save_state(run_dir, state)
            finish_run(run_dir, run_info, state, "interrupted")
            raise TrainingInterrupted(run_dir) from None
        except unreadable:  # an image the pipeline cannot read: name it, not TensorFlow's graph dump
            check_images_readable(data.train.paths + data.val.paths, Path(config.data_dir) / "manifest.csv")
            raise
        if state["epoch"] < end_epoch:  # early stopping ended this phase
            state["epoch"] = end_epoch
            save_state(run_dir, state)


def averaged_weights_swap(state: dict[str, Any]) -> Any:
    """Keras's ``SwapEMAWeights`` (``swap_on_epoch``), remembering in ``state`` which weights the model holds.

    From the end of an epoch to the start of the next the model holds the moving average (Polyak
    and Juditsky, 1992), so validation, early stopping and both saved files see it, while training
    steps go on from the raw weights. A saved ``last.keras`` therefore holds the average in the model
    and the raw weights in the optimizer's average slots; ``state["ema_weights_in_model"]`` (kept in
    ``state.json``) tells a resumed run to swap them back before its first step.
    """
    import keras

    class SwapAveragedWeights(keras.callbacks.SwapEMAWeights):
        def __init__(self) -> None:
            super().__init__(swap_on_epoch=True)
            self._ema_weights_in_model = bool(state.get("ema_weights_in_model", False))

        def _swap_variables(self) -> None:
            super()._swap_variables()
            state["ema_weights_in_model"] = not state.get("ema_weights_in_model", False)

    return SwapAveragedWeights()


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
            save_state(run_dir, state)
            events.epoch({"epoch": epoch + 1, "epochs": end_epoch, "phase": phase, "best": improved, **logs})

    callbacks: list[Any] = [keras.callbacks.CSVLogger(str(run_dir / "results.csv"), append=True)]
    if config.ema.enabled:  # before the callbacks that judge and save: they see the averaged weights
        callbacks.append(averaged_weights_swap(state))
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
