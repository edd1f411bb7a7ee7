"""Knowledge distillation: teachers' predictions join the train targets of a real training run."""

import json

import numpy as np
import pytest
from train_helpers import cnn_config

from aidentify.config import Distillation
from aidentify.errors import ConfigError
from aidentify.files import sha256_file
from aidentify.inference.classify import TestTimeViews, load_classifier
from aidentify.train import fit
from aidentify.train.data import load_training_input
from aidentify.train.distill import distilled_targets, teacher_probabilities
from aidentify.train.evaluate import predict_probabilities
from aidentify.train.fit import TrainEvents, train


def test_distilled_targets_mix_teacher_and_label_targets_by_weight():
    labels = np.array([[1, 0, 0], [0.5, 0.5, 0]], dtype=np.float32)
    teacher = np.array([[0.2, 0.2, 0.6], [0, 0, 1]], dtype=np.float32)
    assert np.allclose(distilled_targets(labels, teacher, 0.0), labels)
    assert np.allclose(distilled_targets(labels, teacher, 1.0), teacher)
    mixed = distilled_targets(labels, teacher, 0.25)
    assert np.allclose(mixed[0], [0.8, 0.05, 0.15]) and np.allclose(mixed.sum(axis=1), 1)
    with pytest.raises(ValueError, match="do not match"):
        distilled_targets(labels, teacher[:1], 0.5)


def test_teacher_probabilities_average_the_teachers_and_their_views(tiny_keras_model, tiny_data):
    paths = sorted(str(p) for p in (tiny_data / "prepared").rglob("*.png"))[:12]
    one = teacher_probabilities([tiny_keras_model], paths, TestTimeViews())
    assert one.shape == (12, 3) and np.allclose(one.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(teacher_probabilities([tiny_keras_model, tiny_keras_model], paths, TestTimeViews()), one,
                       atol=1e-6)
    flipped = teacher_probabilities([tiny_keras_model], paths, TestTimeViews(flip=True))
    assert not np.allclose(flipped, one, atol=1e-6)
    zoomed = teacher_probabilities([tiny_keras_model], paths, TestTimeViews(flip=True, zooms=(0.9,)))
    assert not np.allclose(zoomed, flipped, atol=1e-6)
    classifier = load_classifier(tiny_keras_model)  # the same four views evaluate would average
    assert np.allclose(zoomed, predict_probabilities(classifier, paths, 256, TestTimeViews(flip=True, zooms=(0.9,))),
                       atol=1e-6)


def test_the_config_names_the_teachers_views():
    assert TestTimeViews.from_settings(Distillation()).count == 2  # flip only, as before zooms were offered
    assert TestTimeViews.from_settings(Distillation(tta_flip=True, tta_zooms=[0.96, 0.92, 0.88, 0.83])).count == 10


def test_a_distilled_run_trains_on_the_mixed_targets_and_records_its_teachers(tiny_data, tmp_path, monkeypatch):
    teacher = train(cnn_config(tiny_data, tmp_path, epochs=1, name="teacher")).run_dir
    config = cnn_config(tiny_data, tmp_path, name="student", distill={"teachers": [teacher], "weight": 0.7})
    seen = []
    real_make_dataset = fit.make_dataset

    def spy(paths, targets, *args, **kwargs):
        seen.append((paths, targets))
        return real_make_dataset(paths, targets, *args, **kwargs)

    monkeypatch.setattr(fit, "make_dataset", spy)
    messages = []
    student = train(config, TrainEvents(message=messages.append)).run_dir

    (train_paths, train_targets), (_, val_targets) = seen
    data = load_training_input(config.data_dir, config.labels, None, config.seed)
    teacher_file = teacher / "weights" / "best.keras"
    expected = distilled_targets(data.train.targets, teacher_probabilities([teacher_file], train_paths, TestTimeViews(flip=True)),
                                 0.7)
    assert np.allclose(train_targets, expected, atol=1e-5)
    assert not np.allclose(train_targets, data.train.targets, atol=1e-3)  # the check can fail
    assert np.array_equal(val_targets, data.val.targets)  # validation keeps its labels
    record = json.loads((student / "run.json").read_text())["distill"]
    assert record["weight"] == 0.7 and record["tta_flip"] is True and record["tta_zooms"] == []
    assert record["teachers"] == [{"path": str(teacher_file), "sha256": sha256_file(teacher_file)}]
    assert any("distilling from 1 teacher" in m for m in messages)


def test_a_teacher_of_other_classes_is_refused_before_any_run_folder_is_left(tiny_data, tmp_path):
    import keras

    from aidentify.inference.modelfile import save_model

    other = tmp_path / "other.keras"
    inputs = keras.Input((32, 32, 1))
    save_model(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs))), other,
               {"classes": ["happiness", "neutral"], "input_size": 32})
    with pytest.raises(ConfigError, match="same classes"):
        train(cnn_config(tiny_data, tmp_path, distill={"teachers": [other]}))
    assert not (tmp_path / "runs" / "cnn").exists() or not any((tmp_path / "runs" / "cnn").iterdir())
