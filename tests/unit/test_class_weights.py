"""Loss weights per class for `class_weights: balanced | sqrt` (train/data.py; no TensorFlow)."""

import math

import pytest

from aidentify.train.data import class_weights_for

COUNTS = {"neutral": 800, "anger": 200, "contempt": 0}
CLASSES = ["neutral", "anger", "contempt"]


def test_none_gives_keras_no_weights():
    assert class_weights_for("none", COUNTS, CLASSES) is None


def test_balanced_gives_each_class_the_same_total_weight():
    weights = class_weights_for("balanced", {"neutral": 800, "anger": 200}, ["neutral", "anger"])
    assert weights[0] * 800 == pytest.approx(weights[1] * 200)
    assert weights == {0: pytest.approx(1000 / 1600), 1: pytest.approx(1000 / 400)}


def test_sqrt_is_the_square_root_of_balanced_and_keeps_the_order():
    balanced = class_weights_for("balanced", COUNTS, CLASSES)
    sqrt = class_weights_for("sqrt", COUNTS, CLASSES)
    assert sqrt == {i: pytest.approx(math.sqrt(w)) for i, w in balanced.items()}
    assert sqrt[0] < sqrt[1] < sqrt[2]               # rarer weighs more, a class with no faces counts as one
    assert sqrt[2] / sqrt[0] < balanced[2] / balanced[0]
