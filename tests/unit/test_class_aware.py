"""Class-aware training: loss weights per class (`class_weights`) and vote weights in the targets (`vote_weights`); no TensorFlow."""

import math

import pytest

from aidentify.classes import CLASSES as CLASSES_8
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


def _voted(**votes):
    import pandas as pd

    from aidentify.data.manifest import VOTE_PREFIX

    label = max(votes, key=votes.get)
    return pd.DataFrame([{"label": label, **{VOTE_PREFIX + c: float(votes.get(c, 0)) for c in CLASSES_8}}])


def test_vote_weights_make_a_class_s_votes_count_more_in_soft_targets():
    from aidentify.train.data import targets_for

    frame = _voted(neutral=8, anger=2)
    plain = targets_for(frame, list(CLASSES_8), "soft")[0]
    weighted = targets_for(frame, list(CLASSES_8), "soft", {"anger": 2.0})[0]
    assert plain[4] == pytest.approx(0.2) and weighted[4] == pytest.approx(4 / 12)
    assert weighted.sum() == pytest.approx(1.0) and weighted[0] == pytest.approx(8 / 12)
    assert (targets_for(frame, list(CLASSES_8), "majority", {"anger": 2.0})[0] == [1, 0, 0, 0, 0, 0, 0, 0]).all()


def test_vote_weights_name_real_classes_and_are_positive():
    from pydantic import ValidationError

    from aidentify.config import CnnTrainConfig

    assert CnnTrainConfig(vote_weights={"anger": 2}).vote_weights == {"anger": 2.0}
    with pytest.raises(ValidationError, match="'angry' is not a class"):
        CnnTrainConfig(vote_weights={"angry": 2})
    with pytest.raises(ValidationError, match="above 0"):
        CnnTrainConfig(vote_weights={"fear": 0})
