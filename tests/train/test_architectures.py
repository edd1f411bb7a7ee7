"""The CNN's block variants: plain (the shipped VGG style), residual, depthwise-separable, squeeze-and-excitation."""

import numpy as np
import pytest
from train_helpers import TINY_CNN, cnn_config

from aidentify.config import Augmentation, CnnArchitecture
from aidentify.errors import ConfigError
from aidentify.inference.export import export_model
from aidentify.train.fit import train
from aidentify.train.models import build_cnn

VARIANT = {**TINY_CNN, "convs_per_block": 2, "block": "residual", "separable": True, "squeeze_excite": 4}


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_the_plain_cnn_keeps_the_layer_names_init_weights_matches():
    model = build_cnn(48, 8, CnnArchitecture(), Augmentation(), 0)
    convs = [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert convs == [f"block{b}_conv{c}" for b in range(1, 5) for c in (1, 2)]
    assert "Add" not in _kinds(model) and "SeparableConv2D" not in _kinds(model)
    assert model.count_params() == 1_243_176  # the shipped model's architecture (model card)


def test_residual_separable_squeeze_excite_blocks_are_built_as_configured():
    model = build_cnn(32, 3, CnnArchitecture(**VARIANT), Augmentation(), 0)
    kinds = _kinds(model)
    assert kinds.count("Add") == 2 and kinds.count("Multiply") == 2  # one shortcut and one gate per block
    assert kinds.count("SeparableConv2D") == 3  # every 3x3 but the first (1 input channel: nothing to separate)
    assert [layer.name for layer in model.layers if layer.name.endswith("_project")] == ["block1_project",
                                                                                      "block2_project"]
    faces = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 1), dtype=np.uint8)
    probs = model.predict(faces, verbose=0)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_a_residual_separable_cnn_trains_and_exports_to_int8(tiny_data, tmp_path):
    run = train(cnn_config(tiny_data, tmp_path, cnn=VARIANT)).run_dir
    exported = {e.kind: e for e in export_model(run)}
    assert exported["int8"].path.is_file() and exported["int8"].top1_agreement >= 0.9


def test_weights_of_the_plain_cnn_do_not_start_a_residual_run(tiny_data, tmp_path):
    plain = train(cnn_config(tiny_data, tmp_path)).run_dir
    with pytest.raises(ConfigError, match="does not match this architecture"):
        train(cnn_config(tiny_data, tmp_path, cnn=VARIANT, init_weights=plain))
    int8 = {e.kind: e for e in export_model(plain)}["int8"].path
    for variant in (VARIANT, {**TINY_CNN, "block": "residual"}):
        with pytest.raises(ConfigError, match="only the plain custom CNN"):
            train(cnn_config(tiny_data, tmp_path, cnn=variant, init_weights=int8))
