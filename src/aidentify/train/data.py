"""The training input: manifests -> targets -> ``tf.data`` pipelines.

Images stay uint8 all the way into the model (scaling happens in its first
layers), so the same saved model takes raw face crops at inference time.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aidentify.classes import CLASSES
from aidentify.data.manifest import MANIFEST_NAME, VOTE_PREFIX, absolute_paths, read_manifest
from aidentify.errors import DataError

CACHE_LIMIT_BYTES = 2 * 1024**3


@dataclass
class Split:
    """One split's images, as paths and target distributions over ``classes``."""

    paths: list[str]
    targets: np.ndarray  # float32, shape (n, n_classes), rows sum to 1
    labels: list[str]


@dataclass
class TrainingInput:
    train: Split
    val: Split
    classes: list[str]
    manifest_sha256: str
    class_counts: dict[str, int]
    crops: str = "whole"


def load_training_input(data_dir: Path, labels: str, max_samples: int | None, seed: int,
                        vote_weights: dict[str, float] | None = None) -> TrainingInput:
    """Read the data manifest and build train/val targets (:func:`targets_for`; ``vote_weights`` train only)."""
    data_dir = Path(data_dir)
    frame = read_manifest(data_dir, produced_by="augment")
    frame["abs_path"] = [str(p) for p in absolute_paths(frame, data_dir)]
    train, val = frame[frame["split"] == "train"], frame[frame["split"] == "val"]
    if train.empty or val.empty:
        raise DataError(f"{data_dir / MANIFEST_NAME} needs both train and val images "
                        f"(found {len(train)} train, {len(val)} val); add images so that `clean` "
                        "can carve a val split from train (it warns when it cannot), or import a "
                        "dataset with its own val split (a val/ folder), then run clean, prepare "
                        "and augment again")
    classes = [c for c in CLASSES if c in set(train["label"])]
    if len(classes) < 2:
        raise DataError(f"training needs at least two classes; {data_dir} has {classes}")
    val = val[val["label"].isin(classes)]
    rng = np.random.default_rng(seed)
    if max_samples is not None:
        train = _sample(train, max_samples, rng)
        val = _sample(val, max_samples, rng)
    digest = hashlib.sha256((data_dir / MANIFEST_NAME).read_bytes()).hexdigest()
    counts = {c: int((train["label"] == c).sum()) for c in classes}
    return TrainingInput(_split(train, classes, labels, vote_weights), _split(val, classes, labels), classes,
                         digest, counts, crop_kind(train))


def crop_kind(frame: pd.DataFrame) -> str:
    """``detected`` when most crops were cut around a Haar box, ``whole`` when they were whole images.

    Live inference must cut faces the way the training crops were cut: around
    the Haar box with prepare's margin, or (for FER+'s own crops) as FER+ did.
    """
    if "face" not in frame.columns or frame.empty:
        return "whole"
    return "detected" if (frame["face"] == "face").mean() >= 0.5 else "whole"


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))]


def targets_for(frame: pd.DataFrame, classes: list[str], labels: str,
                vote_weights: dict[str, float] | None = None) -> np.ndarray:
    """One-hot targets (N, C) float32, or FER+ vote distributions where votes exist.

    ``labels`` is ``majority`` (one-hot everywhere), ``soft`` or ``drawn``
    (vote distributions; ``drawn`` draws from them at training time, see
    :func:`draw_labels`). ``vote_weights`` (class name → factor, others 1) multiplies
    each class's votes before they are normalised: class-aware targets, where two anger
    votes of ten can weigh as much as four. Only the training split is given them.
    """
    index = {c: i for i, c in enumerate(classes)}
    onehot = np.zeros((len(frame), len(classes)), dtype=np.float32)
    onehot[np.arange(len(frame)), [index[label] for label in frame["label"]]] = 1.0
    vote_columns = [VOTE_PREFIX + c for c in classes]
    if labels == "majority" or not set(vote_columns) <= set(frame.columns):
        return onehot
    votes = frame[vote_columns].to_numpy(dtype=np.float32)
    if vote_weights:
        votes = votes * np.array([vote_weights.get(c, 1.0) for c in classes], dtype=np.float32)
    totals = np.nansum(votes, axis=1, keepdims=True)
    usable = (~np.isnan(votes).any(axis=1)) & (totals[:, 0] > 0)
    soft = np.where(usable[:, None], np.nan_to_num(votes) / np.maximum(totals, 1e-9), onehot)
    return soft.astype(np.float32)


def _split(frame: pd.DataFrame, classes: list[str], labels: str,
           vote_weights: dict[str, float] | None = None) -> Split:
    return Split(list(frame["abs_path"]), targets_for(frame, classes, labels, vote_weights), list(frame["label"]))


def class_weights_for(mode: str, counts: dict[str, int], classes: list[str]) -> dict[int, float] | None:
    """Loss weight per class index, or None for ``mode`` "none".

    "balanced" is n / (k * n_c) (scikit-learn's 'balanced': each class weighs as much as the others in
    total); "sqrt" is its square root, the milder inverse-square-root frequency weighting (Mahajan et al.
    2018, "Exploring the limits of weakly supervised pretraining"), which lifts rare classes without
    letting a few hundred faces outweigh the common ones. ``counts`` are training faces per class name
    (after ``augment``'s oversampling); a class with none counts as one.
    """
    if mode == "none":
        return None
    power = {"balanced": 1.0, "sqrt": 0.5}[mode]
    total = sum(counts.values())
    return {i: (total / (len(classes) * max(counts.get(c, 0), 1))) ** power for i, c in enumerate(classes)}


def make_dataset(paths: list[str], targets: np.ndarray | None, image_size: int, batch_size: int,
                 shuffle: bool = False, seed: int = 0, cache: str = "auto") -> Any:
    """Decode, resize to ``image_size``, (cache), (shuffle), batch and prefetch.

    Yields uint8 tensors of shape (batch, size, size, 1). Resizing uses area
    averaging, like ``prepare``, so crops look the same at any size.
    """
    import tensorflow as tf

    def load(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=1, expand_animations=False)
        image = tf.image.resize(image, (image_size, image_size), method="area")
        return tf.cast(tf.round(image), tf.uint8)

    autotune = tf.data.AUTOTUNE
    if targets is None:
        ds = tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=autotune)
    else:
        ds = tf.data.Dataset.from_tensor_slices((paths, targets)).map(
            lambda p, t: (load(p), t), num_parallel_calls=autotune)
    if cache == "memory" or (cache == "auto" and len(paths) * image_size * image_size < CACHE_LIMIT_BYTES):
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(len(paths), 20_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(autotune)


def mixup_batches(dataset: Any, alpha: float, seed: int = 0) -> Any:
    """Mixup (Zhang et al., 2018): each face blended with another face of its batch, targets alike.

    ``dataset`` yields ``(images (B, s, s, 1) uint8, targets (B, C) float32)``
    batches; each image ``i`` becomes ``lam * x[i] + (1 - lam) * x[j]``
    (rounded back to uint8) for a random partner ``j`` of the same batch and
    ``lam ~ Beta(alpha, alpha)`` drawn per image, and its target the same blend
    of the two targets, so a vote distribution stays a distribution. Small
    ``alpha`` (0.2) keeps most blends close to one face. The draws are keyed
    per batch and per pass (:func:`with_batch_keys`): reproducible from
    ``seed``, new every epoch.
    """
    import tensorflow as tf

    def mix(batch, key):
        images, targets = batch
        n = tf.shape(images)[0]
        first = tf.random.stateless_gamma([n], op_seed(key, seed, 0), alpha)
        second = tf.random.stateless_gamma([n], op_seed(key, seed, 1), alpha)
        lam = first / tf.maximum(first + second, 1e-12)
        partner = tf.argsort(tf.random.stateless_uniform([n], op_seed(key, seed, 2)))  # a random permutation
        pixels = tf.cast(images, tf.float32)
        weight = tf.reshape(lam, (-1, 1, 1, 1))
        blended = weight * pixels + (1.0 - weight) * tf.gather(pixels, partner)
        mixed = tf.reshape(lam, (-1, 1)) * targets + tf.reshape(1.0 - lam, (-1, 1)) * tf.gather(targets, partner)
        return tf.cast(tf.round(blended), tf.uint8), mixed

    return with_batch_keys(dataset, seed).map(mix, num_parallel_calls=tf.data.AUTOTUNE)


def with_batch_keys(dataset: Any, seed: int) -> Any:
    """Pair every batch with an int64 key from a ``tf.data`` random stream that changes each pass.

    Random ops seeded per op inside ``Dataset.map`` restart their sequence on
    every pass over the data, so with a global seed (training sets one) the
    n-th batch of each epoch would draw alike; stateless ops keyed by this
    stream draw anew each epoch and still reproduce from ``seed``.
    """
    import tensorflow as tf

    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, keys))


def op_seed(key: Any, seed: int, op: int) -> Any:
    """The ``(2,) int64`` seed of the ``op``-th stateless draw of a keyed batch (TensorFlow's fold-in)."""
    import tensorflow as tf

    return tf.random.experimental.stateless_fold_in(tf.stack([key, tf.constant(seed, tf.int64)]), op)


def draw_labels(dataset: Any, seed: int = 0) -> Any:
    """Probabilistic label drawing (FER+'s "PLD" scheme, Barsoum et al. 2016).

    ``dataset`` yields ``(images, targets (B, C) float32)`` batches whose
    targets are distributions (the votes); each target becomes a one-hot
    drawn from its own distribution, anew every time the batch is read, so
    over the epochs a face is taught each emotion as often as its taggers
    chose it. One-hot targets stay as they are. Each batch's draw is keyed
    per batch and per pass (:func:`with_batch_keys`), so the draws are
    reproducible from ``seed`` and differ between epochs even when the
    batches come in the same order.
    """
    import tensorflow as tf

    def draw(batch, key):
        images, targets = batch
        logits = tf.math.log(tf.maximum(tf.cast(targets, tf.float32), 1e-12))
        drawn = tf.random.stateless_categorical(logits, 1, seed=op_seed(key, seed, 0))
        return images, tf.one_hot(drawn[:, 0], tf.shape(targets)[1], dtype=targets.dtype)

    return with_batch_keys(dataset, seed).map(draw, num_parallel_calls=tf.data.AUTOTUNE)


def unreadable_images(paths: list[str]) -> list[str]:
    """The files among ``paths`` that :func:`make_dataset` cannot read: missing, truncated or not images.

    Decodes every file with the training pipeline's own decoder, in parallel,
    keeping the paths that fail; run it only when training has already failed,
    so a healthy run never pays for a second pass over its data.
    """
    import tensorflow as tf

    def decodes(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=1, expand_animations=False)
        return path, tf.shape(image)

    readable = tf.data.Dataset.from_tensor_slices(paths).map(decodes, num_parallel_calls=tf.data.AUTOTUNE)
    good = {path.decode() for path, _ in readable.ignore_errors().as_numpy_iterator()}
    return [path for path in paths if path not in good]


def check_images_readable(paths: list[str], manifest: Path) -> None:
    """Raise a :class:`DataError` naming the first unreadable image among ``paths``, if there is one."""
    bad = unreadable_images(paths)
    if not bad:
        return
    why = _why_unreadable(Path(bad[0]))
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    raise DataError(f"cannot read training image {bad[0]}{more}: {why}; rebuild the data with "
                    f"`aidentify prepare` and `aidentify augment`, or remove its row from {manifest}")


def _why_unreadable(path: Path) -> str:
    if not path.exists():
        return "it is missing"
    if not os.access(path, os.R_OK):
        return "permission denied; check its permissions"
    return "it is truncated or not an image"
