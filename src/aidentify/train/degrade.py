"""Webcam-like degradation of training faces: gamma, blur, low resolution and JPEG, in the input pipeline.

FER+ faces are web photos; a webcam face is often darker or washed out, softer, smaller
(enlarged from few pixels) and compressed. Degrading some training faces the same ways is the
usual remedy for such a gap between training and use (photometric and resolution
augmentation; e.g. the "degradation model" of Real-ESRGAN, Wang et al. 2021, and the blur,
downscale and JPEG steps of Albumentations' ``ImageCompression``/``Downscale``/``GaussianBlur``).

Applied to uint8 batches after decoding, before mixup, never to validation. Unlike the
augmentation layers inside the model (flip, rotation, zoom...), these steps are not part of
the saved model: inference sees the faces as they come.
"""

from __future__ import annotations

import math
from typing import Any

from aidentify.config.train import Degrade
from aidentify.train.data import op_seed, with_batch_keys


def degrade_batches(dataset: Any, settings: Degrade, seed: int = 0) -> Any:
    """Degrade a share of the faces of each ``(images (B, s, s, 1) uint8, targets (B, C))`` batch.

    Each face independently, with probability ``settings.share`` for each step: gamma in
    ``[1/gamma, gamma]`` (log-uniform), Gaussian blur of sigma up to ``settings.blur`` pixels,
    shrinking to a side of ``settings.downscale``..1 of the input (area) and back (bilinear), and
    JPEG re-encoding at quality ``settings.jpeg``..95. A step whose setting is neutral (gamma 1,
    blur 0, downscale 1, jpeg 100) is left out. Blur sigma and shrink factor are drawn per
    batch (one kernel, one size), the rest per face. Targets are unchanged. Draws are keyed per batch
    and per pass, so they are reproducible from ``seed`` and new each epoch.
    """
    import tensorflow as tf

    share = float(settings.share)

    def chosen(key, op, n):
        return tf.random.stateless_uniform([n], op_seed(key, seed, op)) < share

    def pick(mask, changed, original):
        return tf.where(tf.reshape(mask, (-1, 1, 1, 1)), changed, original)

    def degrade(batch, key):
        images, targets = batch
        n, side = tf.shape(images)[0], tf.shape(images)[1]
        x = tf.cast(images, tf.float32) / 255.0
        if settings.gamma > 1:
            log_gamma = tf.random.stateless_uniform([n], op_seed(key, seed, 1), -1.0, 1.0) * math.log(settings.gamma)
            gamma = tf.reshape(tf.exp(log_gamma), (-1, 1, 1, 1))
            x = pick(chosen(key, 0, n), tf.pow(tf.maximum(x, 1e-6), gamma), x)
        if settings.blur > 0:
            sigma = tf.random.stateless_uniform([], op_seed(key, seed, 3), 0.3, max(settings.blur, 0.3))
            x = pick(chosen(key, 2, n), _gaussian_blur(x, sigma), x)
        if settings.downscale < 1:
            scale = tf.random.stateless_uniform([], op_seed(key, seed, 5), settings.downscale, 1.0)
            small = tf.maximum(tf.cast(tf.round(tf.cast(side, tf.float32) * scale), tf.int32), 4)
            resampled = tf.image.resize(tf.image.resize(x, (small, small), method="area"), (side, side),
                                        method="bilinear")
            x = pick(chosen(key, 4, n), resampled, x)
        pixels = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
        if settings.jpeg < 100:
            top = max(settings.jpeg, 95) + 1
            qualities = tf.random.stateless_uniform([n], op_seed(key, seed, 7), settings.jpeg, top, dtype=tf.int32)
            jpeg = tf.map_fn(lambda item: tf.image.adjust_jpeg_quality(item[0], item[1]), (pixels, qualities),
                             fn_output_signature=tf.uint8)
            pixels = pick(chosen(key, 6, n), tf.reshape(jpeg, tf.shape(pixels)), pixels)
        return pixels, targets

    return with_batch_keys(dataset, seed).map(degrade, num_parallel_calls=tf.data.AUTOTUNE)


def _gaussian_blur(x: Any, sigma: Any) -> Any:
    """A separable Gaussian blur of ``x`` (B, H, W, 1) float32; a 7-tap kernel of standard deviation
    ``sigma`` pixels (scalar tensor), edges reflected."""
    import tensorflow as tf

    taps = tf.range(-3.0, 4.0)
    kernel = tf.exp(-0.5 * tf.square(taps / sigma))
    kernel = kernel / tf.reduce_sum(kernel)
    padded = tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]], mode="REFLECT")
    rows = tf.nn.conv2d(padded, tf.reshape(kernel, (7, 1, 1, 1)), strides=1, padding="VALID")
    return tf.nn.conv2d(rows, tf.reshape(kernel, (1, 7, 1, 1)), strides=1, padding="VALID")
