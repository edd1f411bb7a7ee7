"""Mixup: pairs of training faces and their targets blended by the same weight."""

import json

import numpy as np
from train_helpers import cnn_config

from aidentify.train.data import mixup_batches
from aidentify.train.fit import train


def test_mixup_blends_each_face_and_its_target_by_the_same_weight():
    import tensorflow as tf

    classes = 4
    shades = np.array([0.0, 60.0, 150.0, 250.0])  # one flat grey per class: a blend's grey reveals its weights
    labels = np.arange(64) % classes
    images = np.broadcast_to(shades[labels].astype(np.uint8)[:, None, None, None], (64, 8, 8, 1)).copy()
    targets = np.eye(classes, dtype=np.float32)[labels]
    batches = tf.data.Dataset.from_tensor_slices((images, targets)).batch(32)
    mixed = list(mixup_batches(batches, alpha=0.4, seed=3).as_numpy_iterator())

    pixels = np.concatenate([b[0] for b in mixed]).astype(float)
    blended = np.concatenate([b[1] for b in mixed])
    assert mixed[0][0].dtype == np.uint8 and np.allclose(blended.sum(axis=1), 1, atol=1e-6)
    assert np.all(pixels.std(axis=(1, 2, 3)) == 0)  # each face is blended whole
    assert np.allclose(pixels[:, 0, 0, 0], blended @ shades, atol=0.51)  # image and target: the same weights
    assert (blended.max(axis=1) < 0.99).mean() > 0.25  # the check can fail: many faces really are blends


def test_mixup_draws_new_blends_each_epoch_and_reproduces_from_its_seed():
    import tensorflow as tf

    tf.random.set_seed(0)  # as training sets it: a global seed must not make every epoch blend alike
    labels = np.arange(64) % 4
    images = np.broadcast_to((labels * 60).astype(np.uint8)[:, None, None, None], (64, 8, 8, 1)).copy()
    targets = np.eye(4, dtype=np.float32)[labels]

    def one_pass(dataset):
        return np.concatenate([t for _, t in dataset.as_numpy_iterator()])

    def mixed(seed):
        return mixup_batches(tf.data.Dataset.from_tensor_slices((images, targets)).batch(32), 0.4, seed=seed)

    dataset = mixed(3)
    first, second = one_pass(dataset), one_pass(dataset)
    assert not np.allclose(first, second)          # the same batches, blended anew in the next epoch
    assert np.array_equal(first, one_pass(mixed(3)))  # reproducible from the seed
    assert not np.allclose(first, one_pass(mixed(4)))


def test_a_run_with_mixup_trains_and_records_it(tiny_data, tmp_path):
    run = train(cnn_config(tiny_data, tmp_path, mixup=0.2)).run_dir
    assert "mixup: 0.2" in (run / "config.yaml").read_text()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
