"""The two architectures. Both take raw uint8 grayscale crops.

Augmentation and scaling are layers inside the model: augmentation is active
only while training, and a saved model needs no separate preprocessing.
Call models with ``training=False`` (or ``predict``) at inference: in Keras 3
a bare ``model(x)`` runs the random augmentation layers.
"""

from __future__ import annotations

from typing import Any

from aidentify.config import Augmentation, CnnArchitecture, DenseNetArchitecture

# DenseNet's own preprocessing ("torch" mode): x/255, then ImageNet mean and std per channel.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Grey level of an erased rectangle: the middle of the 0-255 range the augmentation layers see.
ERASE_FILL = 128.0


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
    """A VGG-style CNN for 48-96 px grayscale faces.

    Blocks of ``convs_per_block`` 3x3 convolutions (BatchNorm, ReLU), each
    block followed by 2x2 max pooling and light dropout; then global average
    pooling, a dense layer and a softmax. Global pooling keeps the parameter
    count (about 1.3M by default) independent of the input size.
    """
    import keras
    from keras import layers

    inputs, x = _input_and_augment(size, augmentation, seed)
    x = layers.Rescaling(1 / 255.0, name="scale")(x)
    for b, filters in enumerate(arch.filters, 1):
        for c in range(arch.convs_per_block):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"block{b}_conv{c + 1}")(x)
            x = layers.BatchNormalization(name=f"block{b}_bn{c + 1}")(x)
            x = layers.ReLU(name=f"block{b}_relu{c + 1}")(x)
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


def build_densenet(size: int, n_classes: int, arch: DenseNetArchitecture, augmentation: Augmentation,
                   seed: int) -> Any:
    """DenseNet169 transfer model: grayscale repeated to RGB, DenseNet's preprocessing inside.

    The base is created frozen and called with ``training=False`` so its
    BatchNorm statistics never change, even after :func:`unfreeze_top`.
    """
    import keras
    from keras import layers

    inputs, x = _input_and_augment(size, augmentation, seed)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = layers.Rescaling(1 / 255.0, name="scale")(x)
    x = layers.Normalization(mean=list(IMAGENET_MEAN), variance=[s * s for s in IMAGENET_STD],
                             name="imagenet_norm")(x)
    base = keras.applications.DenseNet169(include_top=False, weights=arch.weights, input_shape=(size, size, 3))
    base.trainable = False
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(arch.dropout, name="head_drop1")(x)
    if arch.head_units:
        x = layers.Dense(arch.head_units, activation="relu", name="head_fc")(x)
        x = layers.Dropout(arch.dropout, name="head_drop2")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name="aidentify_densenet")


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
