"""Training both models for an epoch on tiny data, resuming, determinism, evaluate."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from train_helpers import cnn_config, densenet_config, interrupted_after_first_epoch

from aidentify.train.fit import TrainEvents, train
from aidentify.inference.modelfile import load_model, read_metadata


def test_cnn_one_epoch_writes_a_complete_run(tiny_data, tmp_path):
    result = train(cnn_config(tiny_data, tmp_path))
    run = result.run_dir
    assert run == tmp_path / "runs" / "cnn" / "exp"
    for name in ("config.yaml", "run.json", "results.csv", "curves.png", "weights/best.keras",
                 "weights/last.keras", "weights/state.json", "tensorboard"):
        assert (run / name).exists(), name
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and len(info["data_manifest_sha256"]) == 64
    assert info["classes"] == ["happiness", "sadness", "anger"] and "tensorflow" in info["versions"]
    metadata = read_metadata(run)
    assert metadata["classes"] == ["happiness", "sadness", "anger"]
    assert metadata["input_size"] == 32 and metadata["faces"]["detect"] == "never"
    assert len(pd.read_csv(run / "results.csv")) == 1
    assert list(pd.read_csv(run / "results.csv").columns) == documented_results_columns()
    # a second run never overwrites the first
    assert train(cnn_config(tiny_data, tmp_path)).run_dir.name == "exp2"


def documented_results_columns():
    """The ``results.csv`` columns docs/training.md lists for a run folder."""
    doc = (Path(__file__).parents[2] / "docs" / "training.md").read_text(encoding="utf-8")
    listed = re.search(r"^  results\.csv +one row per epoch \(([^;)]*)", doc, re.M)
    assert listed, "docs/training.md no longer describes results.csv"
    return [column.strip() for column in listed.group(1).split(",")]


def test_saved_model_takes_raw_uint8_crops_and_is_deterministic_at_inference(tiny_data, tmp_path):
    result = train(cnn_config(tiny_data, tmp_path))
    model, metadata = load_model(result.run_dir)
    batch = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 1), dtype=np.uint8)
    first = np.asarray(model(batch, training=False))
    assert first.shape == (4, 3) and np.allclose(first.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(first, np.asarray(model(batch, training=False)))
    assert np.allclose(first, model.predict(batch, verbose=0), atol=1e-5)


def test_random_erasing_greys_out_one_rectangle_in_training_only(tiny_data, tmp_path):
    """Half the training faces lose one grey rectangle; a saved model reads its faces untouched."""
    from aidentify.config import Augmentation
    from aidentify.inference.export import export_model
    from aidentify.train.models import ERASE_FILL, augmentation_layers

    only_erasing = {"flip": False, "rotation": 0, "shift": 0, "zoom": 0, "contrast": 0, "erasing": 0.5}
    result = train(cnn_config(tiny_data, tmp_path, augmentation=only_erasing))
    model, _ = load_model(result.run_dir)
    erase = model.get_layer("aug_erase")
    faces = np.full((400, 32, 32, 1), 7, dtype=np.float32)
    grey = (np.asarray(erase(faces, training=True)) == ERASE_FILL).reshape(len(faces), -1)
    erased = grey.any(axis=1)
    assert 0.4 < erased.mean() < 0.6
    share = grey[erased].mean(axis=1)
    assert share.min() >= 0.015 and share.max() <= 0.34
    rows, cols = np.nonzero(grey[erased][0].reshape(32, 32))  # one filled rectangle, not scattered pixels
    assert len(rows) == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
    assert np.array_equal(np.asarray(erase(faces, training=False)), faces)
    assert [exported.kind for exported in export_model(result.run_dir, tmp_path)] == ["float32", "int8"]
    assert "aug_erase" not in [layer.name for layer in augmentation_layers(Augmentation(), seed=0)]  # off by default


def test_densenet_trains_head_then_fine_tunes_top_layers(tiny_data, tmp_path):
    messages = []
    result = train(densenet_config(tiny_data, tmp_path), TrainEvents(message=messages.append))
    results = pd.read_csv(result.run_dir / "results.csv")
    assert len(results) == 2  # one frozen-base epoch, one fine-tuning epoch
    assert any("fine-tuning" in m for m in messages)
    model, _ = load_model(result.run_dir / "weights" / "last.keras")
    from aidentify.train.models import densenet_base

    import keras

    base = densenet_base(model)
    trainable = [layer for layer in base.layers if layer.trainable]
    assert 0 < len(trainable) <= 20
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    with_weights = [layer for layer in base.layers if layer.weights]
    assert not with_weights[0].trainable and with_weights[-1].trainable is not None
    assert any(layer.trainable for layer in with_weights[-20:])


def test_interrupted_run_resumes_to_the_planned_epochs(tiny_data, tmp_path):
    config = cnn_config(tiny_data, tmp_path, epochs=3)
    run = interrupted_after_first_epoch(config)
    assert json.loads((run / "weights" / "state.json").read_text())["epoch"] == 1
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    result = train(config, resume=run)
    assert result.run_dir == run and result.epochs_run == 3
    assert list(pd.read_csv(run / "results.csv")["epoch"]) == [0, 1, 2]
    assert not (run / ".lock").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_a_resumed_run_draws_new_augmentations_dropout_and_batch_order(tiny_data, tmp_path):
    """Resuming must not replay epoch 1's random draws: the model has already fitted those exact images."""
    import keras

    from aidentify.train.device import random_stream_seed, reseed_random_layers, seed_everything
    from aidentify.train.fit import _build

    config = cnn_config(tiny_data, tmp_path, epochs=2)
    run = interrupted_after_first_epoch(config)
    last = run / "weights" / "last.keras"
    faces = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 1), dtype=np.uint8)

    def first_draws(model):
        """What the first training step draws: the augmented faces and the head's dropout mask."""
        augment = keras.Model(model.input, model.get_layer("aug_contrast").output)
        return (np.asarray(augment(faces, training=True)),
                np.asarray(model.get_layer("head_drop")(np.ones((1, 64)), training=True)))

    seed_everything(config.seed)
    epoch_one = first_draws(_build(config, 3))
    seed_everything(config.seed)
    loaded = keras.models.load_model(last)
    for replayed, fresh in zip(first_draws(loaded), epoch_one):  # why reseeding is needed
        assert np.array_equal(replayed, fresh)

    seed = random_stream_seed(config.seed, resumes=1, epochs_done=1)
    assert seed != config.seed and seed != random_stream_seed(config.seed, resumes=2, epochs_done=1)
    assert random_stream_seed(config.seed, resumes=0, epochs_done=0) == config.seed  # fresh runs unchanged
    seed_everything(seed)
    resumed = keras.models.load_model(last)
    reseed_random_layers(resumed, seed)
    for new, fresh in zip(first_draws(resumed), epoch_one):
        assert not np.array_equal(new, fresh)
    assert train(config, resume=run).epochs_run == 2


def test_same_seed_same_split_same_metrics(tiny_data, tmp_path):
    a = train(cnn_config(tiny_data, tmp_path / "a", epochs=2))
    b = train(cnn_config(tiny_data, tmp_path / "b", epochs=2))
    ra, rb = pd.read_csv(a.run_dir / "results.csv"), pd.read_csv(b.run_dir / "results.csv")
    pd.testing.assert_frame_equal(ra, rb)


def test_mirrored_strategy_on_two_logical_cpus(tiny_data, tmp_path):
    script = textwrap.dedent(f"""
        import json, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import sys; sys.path.insert(0, {str(tmp_path.parent)!r})
        from aidentify.config import CnnTrainConfig
        from aidentify.train.fit import train
        cfg = CnnTrainConfig(data_dir={str(tiny_data / "augmented")!r}, project={str(tmp_path / "runs")!r},
                             image_size=32, epochs=1, batch_size=8, strategy="mirrored", tensorboard=False,
                             cnn={{"filters": [8, 16], "convs_per_block": 1, "dense_units": 16}})
        result = train(cfg)
        print("RUN", json.dumps(json.loads((result.run_dir / "run.json").read_text())))
    """)
    # Two logical CPUs stand in for two GPUs. On some CPUs (one with AVX512_FP16 and AMX, 2026-11-25),
    # TensorFlow 2.21's oneDNN rewrite breaks this setup by itself, before any AIdentify code differs
    # (replica 1's BatchNorm gets another layer's 8-channel tensor: "Incompatible shapes: [16] vs. [8]").
    # GPUs never take that path, so it is off here.
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.split("RUN ", 1)[1])
    assert info["strategy"] == "MirroredStrategy" and info["replicas"] == 2 and info["status"] == "finished"


def test_a_run_busy_in_another_process_is_not_resumed(tiny_data, tmp_path):
    import os

    from aidentify.errors import DataError

    config = cnn_config(tiny_data, tmp_path, epochs=2)
    run = interrupted_after_first_epoch(config)
    import signal
    import subprocess
    import sys

    hold = ("import sys, time; from pathlib import Path; from aidentify.train.runs import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    other = subprocess.Popen([sys.executable, "-c", hold, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    assert other.stdout.readline().strip() == "locked"
    with pytest.raises(DataError, match=f"is being trained by process {other.pid}; wait for it"):
        train(config, resume=run)
    os.kill(other.pid, signal.SIGKILL)  # a killed trainer's lock is free at once
    other.wait()
    (run / ".lock").write_text("999999999")  # a stale PID file is no lock either
    assert train(config, resume=run).epochs_run == 2


def _trainable_arrays(path):
    model, _ = load_model(path)
    return [np.asarray(w) for w in model.trainable_weights]


def test_init_weights_starts_a_new_run_from_a_trained_model(tiny_data, tmp_path):
    first = train(cnn_config(tiny_data, tmp_path, epochs=1))
    messages = []
    # a rate so small that one epoch cannot move the weights: what the run holds is what it started from
    second = train(cnn_config(tiny_data, tmp_path, epochs=1, init_weights=first.run_dir, learning_rate=1e-12),
                   TrainEvents(message=messages.append))
    assert second.run_dir != first.run_dir
    before = _trainable_arrays(first.run_dir / "weights" / "best.keras")
    after = _trainable_arrays(second.run_dir / "weights" / "last.keras")
    assert len(before) == len(after) > 0
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(before, after))
    fresh = _trainable_arrays(train(cnn_config(tiny_data, tmp_path, epochs=1, learning_rate=1e-12)).run_dir)
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(before, fresh))  # the check can fail
    info = json.loads((second.run_dir / "run.json").read_text())
    assert info["init_weights"].endswith("best.keras") and len(info["init_weights_sha256"]) == 64
    assert any("starting from the weights" in m for m in messages)


def test_init_weights_from_a_keras_model_of_another_image_size_carries_its_weights_over(tiny_data, tmp_path):
    # The CNN is convolutional up to a global average pooling: weights trained at 32 px fit a 40 px build
    # (the default model's 48 -> 64 px stages).
    first = train(cnn_config(tiny_data, tmp_path, epochs=1))
    messages = []
    config = cnn_config(tiny_data, tmp_path, init_weights=first.run_dir, learning_rate=1e-12)
    larger = train(config.model_copy(update={"image_size": 40}), TrainEvents(message=messages.append))
    before = _trainable_arrays(first.run_dir / "weights" / "best.keras")
    after = _trainable_arrays(larger.run_dir / "weights" / "last.keras")
    assert len(before) == len(after) > 0
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(before, after))
    model, metadata = load_model(larger.run_dir / "weights" / "best.keras")
    assert model.input_shape[1:3] == (40, 40) and metadata["input_size"] == 40
    assert any("(trained at 32 px, this run is 40 px)" in m for m in messages)


def test_a_resumed_run_keeps_where_its_weights_came_from(tiny_data, tmp_path):
    first = train(cnn_config(tiny_data, tmp_path, epochs=1))
    config = cnn_config(tiny_data, tmp_path, epochs=2, init_weights=first.run_dir)
    run = interrupted_after_first_epoch(config)
    started = json.loads((run / "run.json").read_text())
    train(config, resume=run)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["epochs_done"] == 2
    for key in ("init_weights", "init_weights_sha256", "started"):  # what the ship script's provenance follows
        assert info[key] == started[key]
    assert len(info["resumed"]) == 1


def test_init_weights_from_another_architecture_or_an_unreadable_file_is_refused(tiny_data, tmp_path):
    from aidentify.errors import ConfigError, DataError

    first = train(cnn_config(tiny_data, tmp_path, epochs=1))
    wider = cnn_config(tiny_data, tmp_path, init_weights=first.run_dir)
    wider = wider.model_copy(update={"cnn": wider.cnn.model_copy(update={"filters": [8, 32]})})
    with pytest.raises(ConfigError, match="does not match this architecture"):
        train(wider)
    flat = tmp_path / "model.tflite"
    flat.write_bytes(b"not a flatbuffer")
    with pytest.raises(DataError, match="not a readable .tflite"):
        train(cnn_config(tiny_data, tmp_path, init_weights=flat))
    assert sorted(p.name for p in (tmp_path / "runs" / "cnn").iterdir()) == ["exp"]  # refused runs leave nothing
