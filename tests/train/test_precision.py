"""`mixed_precision: bfloat16`: training computes in bfloat16, and the model still exports and runs in float32."""

import json

import numpy as np
import pytest

from train_helpers import cnn_config

from aidentify.train.fit import train


@pytest.fixture
def float32_afterwards():
    """Training sets Keras's global precision policy; later tests expect float32."""
    yield
    import keras

    keras.mixed_precision.set_global_policy("float32")


def test_a_bfloat16_trained_cnn_infers_in_float32_and_exports_to_int8(tiny_data, tmp_path, float32_afterwards):
    import keras

    from aidentify.inference.classify import LiteRTClassifier, ModelInfo
    from aidentify.inference.export import check_crops, export_model
    from aidentify.inference.modelfile import load_model, read_metadata

    run = train(cnn_config(tiny_data, tmp_path, mixed_precision="bfloat16")).run_dir
    info = json.loads((run / "run.json").read_text())
    assert info["precision_policy"] == "mixed_bfloat16" and info["mixed_precision"] is True

    # it trained in bfloat16: the saved layers say so, and the softmax layer stays float32
    saved = keras.models.load_model(run / "weights" / "best.keras", compile=False)
    assert saved.get_layer("block1_conv1").dtype_policy.name == "mixed_bfloat16"
    assert saved.get_layer("emotion").dtype_policy.name == "float32"
    crops = check_crops(32)
    assert saved(crops, training=False).dtype == "float32"

    # inference loads a float32 network with the same weights, a little more exact than the bfloat16 one
    model, _ = load_model(run)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    for a, b in zip(model.weights, saved.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(model(crops, training=False), saved(crops, training=False), atol=0.05)

    exported = {e.kind: e for e in export_model(run / "weights" / "best.keras", tmp_path / "export")}
    assert exported.keys() == {"float32", "int8"}
    assert exported["float32"].max_difference < 1e-4 and exported["int8"].max_difference < 0.05
    int8 = LiteRTClassifier(exported["int8"].path.read_bytes(), ModelInfo.from_metadata(run, read_metadata(run)))
    reference = model(crops, training=False).numpy()
    np.testing.assert_allclose(int8(crops), reference, atol=0.05)
