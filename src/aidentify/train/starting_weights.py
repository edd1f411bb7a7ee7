"""Where a run's starting weights come from, checked before training begins.

A new run starts from one of three places: random weights, DenseNet169's
base weights (ImageNet, or a file given as ``densenet.weights``), or a
trained AIdentify model named by ``init_weights`` (a run folder, a ``.keras``
or ``.tflite`` file, or ``default`` for the shipped model). Each source can
be missing or unsuitable, and each check must fail with one clear line
before a run folder or an epoch is spent: DenseNet's base weights are
resolved even before any training data is read. Keeping these checks and
the copying together leaves the training loop one call per source.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidentify.config import TrainCommon
from aidentify.errors import ConfigError
from aidentify.inference.modelfile import read_metadata, resolve_model_path
from aidentify.train.data import make_dataset

# Training images that set the BatchNorm statistics of a model unfolded from .tflite (init_weights).
TFLITE_CALIBRATION_IMAGES = 1024


def resolve_base_weights(config: TrainCommon,
                         message: Callable[[str], None]) -> tuple[TrainCommon, Path | None]:
    """DenseNet's base weights as a local file, fetched or checked before any training data is read.

    Returns the config to record (a ``densenet.weights`` path made absolute;
    ``imagenet`` stays, as Keras's cache differs per machine) and the file.
    A run starting from ``init_weights`` replaces every base weight, so it
    fetches nothing and builds the base with random weights.
    """
    if config.model != "densenet" or config.init_weights:
        return config, None
    from aidentify.train.models import resolve_densenet_weights

    weights = resolve_densenet_weights(config.densenet.weights, message)
    if weights is not None and config.densenet.weights != "imagenet":
        config = config.model_copy(update={"densenet": config.densenet.model_copy(update={"weights": weights})})
    return config, weights


def initial_weights_source(config: TrainCommon, classes: list[str]) -> tuple[Path, dict[str, Any]]:
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
    source = resolve_model_path(name)  # "default": the shipped model
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


def load_initial_weights(model: Any, source: Path, calibration_paths: list[str], image_size: int) -> str:
    """Copy the weights of ``source`` into the freshly built ``model``; returns what was done, for the log.

    A ``.keras`` model gives its weights layer by layer (matched by name); a
    ``.tflite`` export is unfolded by :mod:`aidentify.train.tflite_weights`,
    which needs a sample of training images for the BatchNorm statistics.
    """
    import keras

    if source.suffix.lower() == ".tflite":
        from aidentify.train.tflite_weights import load_tflite_weights

        images = sample_images(calibration_paths, image_size, TFLITE_CALIBRATION_IMAGES)
        try:
            difference = load_tflite_weights(model, source, images)
        except ConfigError as exc:
            raise ConfigError(f"init_weights: {exc}") from None
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


def sample_images(paths: list[str], image_size: int, count: int) -> Any:
    """``count`` images spread evenly over ``paths`` (which are grouped by class), as one
    (count, image_size, image_size, 1) uint8 array (fewer when ``paths`` has fewer)."""
    import numpy as np

    step = max(1, len(paths) // count)
    dataset = make_dataset(paths[::step][:count], None, image_size, batch_size=256, cache="none")
    return np.concatenate([batch.numpy() for batch in dataset])
