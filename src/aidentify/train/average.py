"""``average``: one CNN whose weights are the mean of several finished runs' weights (a model soup).

Runs fine-tuned from one starting point tend to stay in one basin of the loss, so the
element-wise mean of their weights is itself a good network, often better than each of
them, and it costs one model at inference where an ensemble costs one per member
(the "uniform soup" of Wortsman et al. 2022, "Model soups", ICML). Averaging mixes
networks whose BatchNorm statistics no longer describe the averaged layers' outputs, so
every BatchNorm's moving mean and variance is measured again on training images, one
layer after the other, before anything is scored (the BatchNorm update of stochastic
weight averaging, Izmailov et al. 2018).

Ingredients are ``.keras`` models, run folders or ``.tflite`` exports of the custom CNN
with the same classes and input size; a ``.tflite`` file is unfolded back into trainable
weights (:mod:`aidentify.train.tflite_weights`) so the shipped model can take part. The
result is a run folder (``weights/best.keras``, ``config.yaml``, ``run.json``) that
``evaluate``, ``export`` and ``init_weights`` accept like any training run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aidentify.config import AverageConfig, dump_config
from aidentify.errors import ConfigError, DataError
from aidentify.files import atomic_write_text, sha256_file
from aidentify.native_logs import import_tensorflow
from aidentify.inference.modelfile import load_model, read_metadata, resolve_model_path, save_model
from aidentify.train.data import TrainingInput, load_training_input, make_dataset
from aidentify.train.runs import fresh_run_dir, library_versions
from aidentify.train.starting_weights import sample_images

Progress = Callable[[str, int, int], None]

METHOD = ("uniform weight average (model soup, Wortsman et al. 2022), BatchNorm statistics re-estimated "
          "on training images layer by layer (as in SWA, Izmailov et al. 2018)")


@dataclass
class Ingredient:
    """One averaged model: where it came from and its own FER+ Valid accuracy (one view, float32)."""

    source: Path
    sha256: str
    val_accuracy: float


@dataclass
class AverageResult:
    run_dir: Path
    ingredients: list[Ingredient]
    val_accuracy: float  # the averaged model's, one view, float32
    val_images: int
    calibration_images: int


def average_runs(config: AverageConfig, progress: Progress = lambda task, done, total: None) -> AverageResult:
    """Average the weights of ``config.models`` and save the result as a new run folder.

    Raises :class:`ConfigError` for fewer than two models, a model that is not the custom CNN,
    models whose classes, input size or architecture differ, or no ``.keras`` model among them
    (one is needed to give the architecture a ``.tflite`` file is unfolded into), and
    :class:`DataError` for a missing model or data whose classes are not the models'.
    """
    sources = [resolve_model_path(Path(name)) for name in config.models]
    if len(sources) < 2:
        raise ConfigError(f"average needs at least two models, got {len(sources)}; "
                          "pass each with --model (a run folder, a .keras or .tflite file, or default)")
    metadata = _check_compatible(sources)
    import_tensorflow()  # before anything else imports it, so its start-up notices stay filtered
    size = int(metadata["input_size"])
    data = _data_for(config, metadata["classes"])
    calibration = sample_images(data.train.paths, size, config.calibration_images)
    val_images = np.concatenate([b.numpy() for b in make_dataset(data.val.paths, None, size, config.batch_size,
                                                                 cache="none")])
    val_labels = np.array([data.classes.index(label) for label in data.val.labels])

    template_source, template = _template(sources)
    ingredients, weights = [], []
    for done, source in enumerate(sources):
        progress("models", done, len(sources))
        model = template if source == template_source else _ingredient(template, source, calibration)
        weights.append(model.get_weights())
        ingredients.append(Ingredient(source, sha256_file(source), _accuracy(model, val_images, val_labels,
                                                                             config.batch_size)))
    progress("models", len(sources), len(sources))
    template.set_weights(mean_weights(weights))
    recalibrate_batch_norms(template, calibration, config.batch_size, progress)
    accuracy = _accuracy(template, val_images, val_labels, config.batch_size)
    with fresh_run_dir(Path(config.project) / "cnn", config.name) as run_dir:
        _write_run(run_dir, template, metadata, config, data, ingredients, accuracy, len(calibration))
    return AverageResult(run_dir, ingredients, accuracy, len(val_labels), len(calibration))


def _check_compatible(sources: list[Path]) -> dict[str, Any]:
    """The first model's metadata, once every model is shown to be a CNN of the same classes and size."""
    first: dict[str, Any] | None = None
    for source in sources:
        metadata = read_metadata(source)
        if metadata.get("model") != "cnn":
            raise ConfigError(f"{source} is a {metadata.get('model')} model; average takes runs of the custom "
                              "CNN (--model cnn)")
        if first is None:
            first = metadata
            continue
        for key in ("classes", "input_size"):
            if metadata.get(key) != first.get(key):
                raise ConfigError(f"{source} has {key} {metadata.get(key)!r}, {sources[0]} has {first.get(key)!r}; "
                                  "average models trained with the same classes at the same size")
    if not any(source.suffix.lower() == ".keras" for source in sources):
        raise ConfigError("average needs at least one .keras model or run folder among the models, "
                          "to give the architecture the .tflite files are unfolded into")
    assert first is not None
    return first


def _data_for(config: AverageConfig, classes: list[str]) -> TrainingInput:
    data = load_training_input(Path(config.data_dir), "soft", None, seed=0)
    if data.classes != classes:
        raise DataError(f"{config.data_dir} has the classes {data.classes}, the models {classes}; "
                        "average with the data the models were trained on (data_dir)")
    return data


def _template(sources: list[Path]) -> tuple[Path, Any]:
    """The first ``.keras`` model and its path; the model, in float32, gives the architecture every
    other ingredient is read into (its weights are replaced by the average at the end)."""
    first_keras = next(source for source in sources if source.suffix.lower() == ".keras")
    model, _ = load_model(first_keras)
    return first_keras, model


def _ingredient(template: Any, source: Path, calibration: np.ndarray) -> Any:
    """``source`` as a Keras model with ``template``'s architecture (float32)."""
    import keras

    if source.suffix.lower() == ".tflite":
        from aidentify.train.tflite_weights import load_tflite_weights

        model = keras.models.clone_model(template)  # every weight is then set from the file
        try:
            load_tflite_weights(model, source, calibration[:1024])
        except ConfigError as exc:
            raise ConfigError(f"cannot average {source}: {exc}") from None
        return model
    model, _ = load_model(source)
    shapes = [tuple(w.shape) for w in model.weights]
    if [w.name for w in model.weights] != [w.name for w in template.weights] or \
            shapes != [tuple(w.shape) for w in template.weights]:
        raise ConfigError(f"{source} does not have the architecture of the first .keras model; "
                          "average runs trained with the same cnn settings")
    return model


def mean_weights(weights: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of each floating-point array over the models, in float32.

    ``weights`` holds one ``model.get_weights()`` list per model, all of the same shapes.
    Integer arrays (the random augmentation layers' seed states) are not weights; the
    first model's are kept.
    """
    mean = []
    for arrays in zip(*weights):
        if np.issubdtype(arrays[0].dtype, np.floating):
            mean.append(np.mean(np.stack(arrays).astype(np.float64), axis=0).astype(arrays[0].dtype))
        else:
            mean.append(arrays[0])
    return mean


def recalibrate_batch_norms(model: Any, images: np.ndarray, batch_size: int = 256,
                            progress: Progress = lambda task, done, total: None) -> None:
    """Set every BatchNorm's moving mean and variance to those of its input on ``images``.

    ``images``: (N, size, size, 1) uint8 training faces. Layers are measured in model order,
    each after the ones before it are set, so each sees its input as the finished model
    will. Gamma and beta are kept: the layer normalises with the new statistics.
    """
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for done, norm in enumerate(norms):
        progress("BatchNorm", done, len(norms))
        probe = keras.Model(model.inputs, norm.input)
        activations = probe.predict(images, batch_size=batch_size, verbose=0).astype(np.float64)
        flat = activations.reshape(-1, activations.shape[-1])
        gamma, beta, _, _ = norm.get_weights()
        norm.set_weights([gamma, beta, flat.mean(axis=0).astype(np.float32), flat.var(axis=0).astype(np.float32)])
    progress("BatchNorm", len(norms), len(norms))


def _accuracy(model: Any, images: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    return float((probabilities.argmax(axis=1) == labels).mean())


def _write_run(run_dir: Path, model: Any, metadata: dict[str, Any], config: AverageConfig, data: TrainingInput,
               ingredients: list[Ingredient], accuracy: float, calibration_images: int) -> None:
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    save_model(model, run_dir / "weights" / "best.keras", {**metadata, "run": run_dir.name})
    atomic_write_text(run_dir / "config.yaml", dump_config(config))
    run_info = {
        "run_dir": str(run_dir), "model": "cnn", "status": "finished", "method": METHOD,
        "data_manifest": str(Path(config.data_dir) / "manifest.csv"),
        "data_manifest_sha256": data.manifest_sha256, "classes": data.classes,
        "calibration_images": calibration_images, "train_images": len(data.train.paths),
        "val_images": len(data.val.paths),
        "averaged": [{"model": str(i.source), "sha256": i.sha256, "val_accuracy": i.val_accuracy}
                     for i in ingredients],
        "best": {"val_accuracy": accuracy}, "versions": library_versions(),
        "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_text(run_dir / "run.json", json.dumps(run_info, indent=2))
