"""Training can start from a .tflite export: its folded weights are unfolded back into the CNN."""

import json

import numpy as np
import pytest
from train_helpers import cnn_config

from aidentify.errors import ConfigError
from aidentify.inference.export import export_model
from aidentify.train.fit import TrainEvents, train
from aidentify.inference.modelfile import load_model


@pytest.fixture(scope="module")
def exported(tiny_keras_model, tmp_path_factory):
    """The tiny CNN and its float32 and int8 exports."""
    files = {e.kind: e.path for e in export_model(tiny_keras_model, tmp_path_factory.mktemp("export"))}
    return tiny_keras_model, files


def _crops(seed=0, n=48):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 1), dtype=np.uint8)


def _rebuilt(tiny_data, tmp_path, source, **cnn):
    from aidentify.train.fit import _build
    from aidentify.train.tflite_weights import load_tflite_weights

    config = cnn_config(tiny_data, tmp_path)
    if cnn:
        config = config.model_copy(update={"cnn": config.cnn.model_copy(update=cnn)})
    model = _build(config, 3)
    difference = load_tflite_weights(model, source, _crops(1, 64))
    return model, difference


@pytest.mark.parametrize("kind, tolerance", [("float32", 1e-4), ("int8", 0.05)])
def test_an_export_unfolds_into_a_model_that_computes_what_the_original_did(
        exported, tiny_data, tmp_path, kind, tolerance):
    original_path, files = exported
    original, _ = load_model(original_path)
    model, difference = _rebuilt(tiny_data, tmp_path, files[kind])
    crops = _crops()
    expected = original.predict(crops, verbose=0)
    assert difference <= tolerance
    assert np.abs(model.predict(crops, verbose=0) - expected).max() <= tolerance
    # The BatchNorm layers hold real statistics of their inputs, not the placeholders of a folded model.
    import keras

    norm = model.get_layer("block1_bn1")
    inputs = keras.Model(model.inputs, model.get_layer("block1_conv1").output).predict(_crops(1, 64), verbose=0)
    assert np.allclose(np.asarray(norm.moving_mean), inputs.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-4)
    assert np.allclose(np.asarray(norm.moving_variance), inputs.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-4)


def test_an_export_of_another_architecture_is_refused(exported, tiny_data, tmp_path):
    _, files = exported
    with pytest.raises(ConfigError, match="does not match this architecture"):
        _rebuilt(tiny_data, tmp_path, files["int8"], filters=[8, 32])
    with pytest.raises(ConfigError, match="convolution and dense layers"):
        _rebuilt(tiny_data, tmp_path, files["int8"], convs_per_block=2)


def test_training_from_a_tflite_export_starts_from_its_weights(exported, tiny_data, tmp_path):
    original_path, files = exported
    messages = []
    # a rate so small that one epoch cannot move the weights: the run's model is the one it started from
    run = train(cnn_config(tiny_data, tmp_path, init_weights=files["float32"], learning_rate=1e-12),
                TrainEvents(message=messages.append)).run_dir
    trained, _ = load_model(run / "weights" / "last.keras")
    original, _ = load_model(original_path)
    crops = _crops(2)
    assert np.abs(trained.predict(crops, verbose=0) - original.predict(crops, verbose=0)).max() < 1e-3
    info = json.loads((run / "run.json").read_text())
    assert info["init_weights"] == str(files["float32"]) and len(info["init_weights_sha256"]) == 64
    assert any("unfolded from TFLite" in m for m in messages)


def test_an_export_of_another_image_size_is_refused(exported, tiny_data, tmp_path):
    # Unfolding compares the rebuilt model with the file on the same images, so the sizes must agree;
    # the message points to the .keras model, which can start a run at another size.
    _, files = exported
    with pytest.raises(ConfigError, match=r"input_size 32, this run needs 40; .*--set image_size=32 \(a \.keras model can start"):
        train(cnn_config(tiny_data, tmp_path, init_weights=files["int8"]).model_copy(update={"image_size": 40}))


def test_default_names_the_shipped_model_and_its_classes_must_match(tiny_data, tmp_path):
    # The tiny data has three classes; the shipped model knows FER+'s eight, so it cannot seed this run.
    with pytest.raises(ConfigError, match=r"default\.tflite has classes .*this run needs"):
        train(cnn_config(tiny_data, tmp_path, init_weights="default"))
