"""The two architectures. Both take raw uint8 grayscale crops.

Augmentation and scaling are layers inside the model: augmentation is active
only while training, and a saved model needs no separate preprocessing.
Call models with ``training=False`` (or ``predict``) at inference: in Keras 3
a bare ``model(x)`` runs the random augmentation layers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidentify.config import Augmentation, CnnArchitecture, DenseNetArchitecture
from aidentify.errors import ConfigError, DownloadError

# DenseNet's own preprocessing ("torch" mode): x/255, then ImageNet mean and std per channel.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Grey level of an erased rectangle: the middle of the 0-255 range the augmentation layers see.
ERASE_FILL = 128.0
# The ImageNet weights of DenseNet169 without its classifier top, as keras.applications.densenet
# names, fetches and checks them (a test keeps these equal to the installed Keras).
DENSENET169_NOTOP_FILE = "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5"
DENSENET169_NOTOP_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
                         + DENSENET169_NOTOP_FILE)
DENSENET169_NOTOP_MD5 = "b8c4d4c20dd625c148057b9ff1c1176b"


def augmentation_layers(config: Augmentation, seed: int) -> list[Any]:
    """Random flip/rotation/shift/zoom/contrast/erasing layers (identity at inference).

    Erasing (Zhong et al., 2017) greys out one random rectangle, 2-33% of the face,
    in a share of the training images, so the model cannot lean on one region
    (the mouth, say) and must also read the rest of the face, as it must when a
    hand or glasses cover part of it.
    """
    from keras import layers

    stack = []
    if config.flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed, name="aug_flip"))
    if config.rotation:
        stack.append(layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed, name="aug_rotate"))
    if config.shift:
        stack.append(layers.RandomTranslation(config.shift, config.shift, fill_mode="reflect", seed=seed,
                                              name="aug_shift"))
    if config.zoom:
        stack.append(layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed, name="aug_zoom"))
    if config.contrast:
        stack.append(layers.RandomContrast(config.contrast, seed=seed, name="aug_contrast"))
    if config.erasing:
        # factor (p, p): erase with probability exactly p (a single float would draw p from [0, p]).
        # Mid-grey fill: Keras's default fill is unclipped noise of +-3 x 255, far outside the pixel range.
        stack.append(layers.RandomErasing(factor=(config.erasing, config.erasing), fill_value=ERASE_FILL,
                                          value_range=(0, 255), seed=seed, name="aug_erase"))
    return stack


def _input_and_augment(size: int, augmentation: Augmentation, seed: int):
    import keras

    inputs = keras.Input((size, size, 1), dtype="uint8", name="face")
    x = keras.layers.Identity(dtype="float32", name="to_float")(inputs)
    for layer in augmentation_layers(augmentation, seed):
        x = layer(x)
    return inputs, x


def build_cnn(size: int, n_classes: int, arch: CnnArchitecture, augmentation: Augmentation, seed: int) -> Any:
    """A CNN for 48-96 px grayscale faces: ``(N, size, size, 1) uint8`` in, ``(N, n_classes)`` softmax out.

    Blocks of ``convs_per_block`` 3x3 convolutions (BatchNorm, ReLU), each
    block followed by 2x2 max pooling and light dropout; then global average
    pooling, a dense layer and a softmax. Global pooling keeps the parameter
    count (about 1.3M by default) independent of the input size. The default
    (``block: plain``) is VGG-style; :func:`_conv_block` describes the
    residual, separable and squeeze-and-excitation variants.
    """
    import keras
    from keras import layers

    inputs, x = _input_and_augment(size, augmentation, seed)
    x = layers.Rescaling(1 / 255.0, name="scale")(x)
    for b, filters in enumerate(arch.filters, 1):
        x = _conv_block(x, b, filters, arch)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
        x = layers.Dropout(min(0.1 * b, 0.3), name=f"block{b}_drop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if arch.dense_units:
        x = layers.Dense(arch.dense_units, use_bias=False, name="fc")(x)
        x = layers.BatchNormalization(name="fc_bn")(x)
        x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(arch.dropout, name="head_drop")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name="aidentify_cnn")


def _conv_block(x: Any, b: int, filters: int, arch: CnnArchitecture) -> Any:
    """One block's convolutions (3x3, BatchNorm, ReLU), before its pooling.

    ``separable``: every 3x3 convolution but the network's first is
    depthwise-separable (a 3x3 per channel, then a 1x1 across channels;
    Howard et al., 2017, MobileNets), about 8 times fewer multiply-adds at
    these widths. ``block: residual`` adds the block's input (through a 1x1
    projection when the width changes) before the last ReLU (He et al., 2016).
    ``squeeze_excite: r`` scales each channel by a gate computed from the
    block's globally pooled output through a C/r bottleneck (Hu et al., 2018).
    The layer names of the plain block are the ones ``init_weights`` matches.
    """
    from keras import layers

    shortcut = x
    for c in range(arch.convs_per_block):
        name = f"block{b}_conv{c + 1}"
        if arch.separable and not (b == 1 and c == 0):
            x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
        else:
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(name=f"block{b}_bn{c + 1}")(x)
        if arch.block == "plain" or c < arch.convs_per_block - 1:
            x = layers.ReLU(name=f"block{b}_relu{c + 1}")(x)
    if arch.squeeze_excite:
        x = _squeeze_excite(x, b, filters, arch.squeeze_excite)
    if arch.block == "residual":
        if shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"block{b}_project")(shortcut)
            shortcut = layers.BatchNormalization(name=f"block{b}_project_bn")(shortcut)
        x = layers.Add(name=f"block{b}_add")([x, shortcut])
        x = layers.ReLU(name=f"block{b}_relu{arch.convs_per_block}")(x)
    return x


def _squeeze_excite(x: Any, b: int, filters: int, ratio: int) -> Any:
    """Hu et al. (2018): global average pool, C/ratio ReLU bottleneck, C sigmoid gates, channel-wise scaling."""
    from keras import layers

    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"block{b}_se_pool")(x)
    gate = layers.Conv2D(max(1, filters // ratio), 1, activation="relu", name=f"block{b}_se_reduce")(gate)
    gate = layers.Conv2D(filters, 1, activation="sigmoid", name=f"block{b}_se_expand")(gate)
    return layers.Multiply(name=f"block{b}_se_scale")([x, gate])


def build_densenet(size: int, n_classes: int, arch: DenseNetArchitecture, augmentation: Augmentation,
                   seed: int, weights: Path | None = None) -> Any:
    """DenseNet169 transfer model: grayscale repeated to RGB, DenseNet's preprocessing inside.

    The base loads ``weights``, the local file :func:`resolve_densenet_weights`
    made of ``arch.weights`` (None: random weights). It is created frozen and
    called with ``training=False`` so its BatchNorm statistics never change,
    even after :func:`unfreeze_top`.
    """
    import keras
    from keras import layers

    inputs, x = _input_and_augment(size, augmentation, seed)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = layers.Rescaling(1 / 255.0, name="scale")(x)
    x = layers.Normalization(mean=list(IMAGENET_MEAN), variance=[s * s for s in IMAGENET_STD],
                             name="imagenet_norm")(x)
    base = keras.applications.DenseNet169(include_top=False, weights=None if weights is None else str(weights),
                                          input_shape=(size, size, 3))
    base.trainable = False
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(arch.dropout, name="head_drop1")(x)
    if arch.head_units:
        x = layers.Dense(arch.head_units, activation="relu", name="head_fc")(x)
        x = layers.Dropout(arch.dropout, name="head_drop2")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name="aidentify_densenet")


def resolve_densenet_weights(weights: str | Path | None,
                             message: Callable[[str], None] = lambda text: None) -> Path | None:
    """The local file DenseNet169's base will load, found before any training data is read.

    ``imagenet``: Keras's ImageNet file, fetched into Keras's cache on first use
    (:func:`fetch_imagenet_weights`). A path: a weights file of DenseNet169
    without its top, checked by :func:`check_densenet_weights`; returned
    absolute. ``None``: random weights, nothing to resolve.
    """
    if weights is None:
        return None
    if weights == "imagenet":
        return fetch_imagenet_weights(message)
    path = Path(weights).expanduser().absolute()
    if not path.is_file():
        raise ConfigError(f"densenet.weights {path}: no such file; {_expected_file()}")
    check_densenet_weights(path)
    return path


def keras_models_dir() -> Path:
    """Where Keras keeps the weights it downloads: ``$KERAS_HOME/models``, else ``~/.keras/models``.

    Read at call time (Keras reads ``KERAS_HOME`` once, on import). As Keras
    does, falls back to ``/tmp/.keras`` when the folder cannot be written.
    """
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    try:
        (home / "models").mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if not os.access(home / "models", os.W_OK):
        home = Path(tempfile.gettempdir()) / ".keras"
    return home / "models"


def fetch_imagenet_weights(message: Callable[[str], None] = lambda text: None) -> Path:
    """DenseNet169's ImageNet weights (no top) from Keras's cache, downloaded there first if missing.

    The same file name, URL and checksum as ``keras.applications.DenseNet169``
    uses, through Keras's own ``get_file``. A failed download is a
    :class:`DownloadError` that says where the file goes and how else to go on.
    """
    from aidentify.native_logs import import_tensorflow

    import_tensorflow()
    import keras

    folder = keras_models_dir()
    target = folder / DENSENET169_NOTOP_FILE
    cached = target.is_file()
    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()  # Keras's "Downloading data from" line and progress bar
    try:
        path = Path(keras.utils.get_file(DENSENET169_NOTOP_FILE, DENSENET169_NOTOP_URL,
                                         file_hash=DENSENET169_NOTOP_MD5, cache_subdir="models",
                                         cache_dir=str(folder.parent)))
    except Exception as exc:  # Keras wraps network errors in a bare Exception
        stale = "; the file that was there failed Keras's checksum, and Keras deleted it" if cached else ""
        raise DownloadError(
            f"could not download DenseNet169's ImageNet weights from {DENSENET169_NOTOP_URL} "
            f"({_download_failure(exc)}{stale}); Keras keeps them at {target}: copy the file there or pass it "
            "with --set densenet.weights=PATH, or train from random weights with --set densenet.weights=null"
        ) from exc
    finally:
        if interactive:
            keras.config.enable_interactive_logging()
    if not cached:
        message(f"downloaded DenseNet169's ImageNet weights to {path}")
    return path


def _download_failure(exc: BaseException) -> str:
    """Why Keras's ``get_file`` failed, without the URL it repeats."""
    import urllib.error

    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, urllib.error.HTTPError):
        return f"HTTP {cause.code} {cause.msg}"
    if isinstance(cause, urllib.error.URLError):
        return str(cause.reason)
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def check_densenet_weights(path: Path) -> None:
    """Refuse a file that is not DenseNet169's weights without the top.

    Keras loads a file of the right format into whatever it fits and ignores
    extra arrays, so a file *with* the top would load silently: the arrays are
    counted first, then the file is loaded into a bare base (the weights do not
    depend on the input size, so a small one is built). Keras's ``.h5`` (its
    ImageNet files) and ``.weights.h5`` (``save_weights``) formats both work.
    """
    import warnings

    import h5py

    try:
        with h5py.File(path, "r") as f:
            arrays: list[int] = []
            f.visititems(lambda name, item: arrays.append(1) if isinstance(item, h5py.Dataset) else None)
    except OSError:
        raise ConfigError(f"densenet.weights {path} is not an HDF5 weights file; {_expected_file()}") from None

    from aidentify.native_logs import import_tensorflow

    import_tensorflow()
    import keras

    base = keras.applications.DenseNet169(include_top=False, weights=None, input_shape=(32, 32, 3))
    if len(arrays) != len(base.weights):
        top = " (weights with the top, or of another network?)" if len(arrays) > len(base.weights) else ""
        raise ConfigError(f"densenet.weights {path} holds {len(arrays)} arrays, DenseNet169 without its top has "
                          f"{len(base.weights)}{top}; {_expected_file()}")
    try:
        with warnings.catch_warnings():  # Keras warns once per layer it cannot match
            warnings.simplefilter("ignore")
            base.load_weights(str(path))
    except Exception as exc:  # Keras raises ValueError for shapes, others for formats
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].split(" Example error message")[0]
        raise ConfigError(f"densenet.weights {path} does not fit DenseNet169 without its top ({reason}); "
                          f"{_expected_file()}") from None


def _expected_file() -> str:
    return (f"expected DenseNet169's ImageNet weights without the top, {DENSENET169_NOTOP_FILE} "
            f"(from {DENSENET169_NOTOP_URL}), or save_weights of a DenseNet169(include_top=False) base")


def densenet_base(model: Any) -> Any:
    """The DenseNet169 sub-model inside a model built by :func:`build_densenet`."""
    return next(layer for layer in model.layers if layer.name.startswith("densenet"))


def unfreeze_top(model: Any, n_layers: int) -> int:
    """Make the top ``n_layers`` of the DenseNet base trainable; BatchNorm stays frozen.

    Returns how many layers became trainable. The caller must recompile.
    """
    import keras

    base = densenet_base(model)
    base.trainable = True
    cutoff = len(base.layers) - n_layers
    count = 0
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= cutoff and not isinstance(layer, keras.layers.BatchNormalization)
        count += layer.trainable
    return count
