"""Probabilistic label drawing: each step's target a one-hot drawn from the face's vote distribution."""

import json

import numpy as np
from train_helpers import cnn_config

from aidentify.train.data import draw_labels, targets_for
from aidentify.train.fit import train


def test_drawn_labels_follow_each_vote_distribution_and_change_between_epochs():
    import tensorflow as tf

    tf.random.set_seed(0)  # as training sets it: a global seed must not make every epoch draw alike
    votes = np.array([[0.7, 0.3, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=np.float32)
    targets = np.repeat(votes, 2000, axis=0)
    images = np.zeros((len(targets), 4, 4, 1), np.uint8)
    batches = draw_labels(tf.data.Dataset.from_tensor_slices((images, targets)).batch(500), seed=5)
    first = np.concatenate([t for _, t in batches.as_numpy_iterator()])
    second = np.concatenate([t for _, t in batches.as_numpy_iterator()])

    assert set(np.unique(first)) == {0.0, 1.0} and np.all(first.sum(axis=1) == 1)  # one-hot rows
    ambiguous, agreed = first[:2000], first[2000:]
    assert abs(ambiguous[:, 0].mean() - 0.7) < 0.04 and ambiguous[:, 2:].sum() == 0  # never an unvoted class
    assert np.all(agreed[:, 2] == 1)                                                    # a one-hot stays
    assert not np.array_equal(first[:2000], second[:2000])                              # drawn anew each epoch
    again = np.concatenate([t for _, t in draw_labels(
        tf.data.Dataset.from_tensor_slices((images, targets)).batch(500), seed=5).as_numpy_iterator()])
    assert np.array_equal(first, again)                                                 # reproducible from the seed


def test_drawn_targets_start_from_the_vote_distributions():
    import pandas as pd

    frame = pd.DataFrame({"label": ["neutral"], "votes_neutral": [6.0], "votes_happiness": [4.0]})
    classes = ["neutral", "happiness"]
    assert np.allclose(targets_for(frame, classes, "drawn"), [[0.6, 0.4]])
    assert np.allclose(targets_for(frame, classes, "majority"), [[1.0, 0.0]])


def test_a_run_with_drawn_labels_trains_and_records_it(tiny_data, tmp_path):
    run = train(cnn_config(tiny_data, tmp_path, labels="drawn")).run_dir
    assert "labels: drawn" in (run / "config.yaml").read_text()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
