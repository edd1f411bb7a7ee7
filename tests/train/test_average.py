"""`average`: a model soup of CNN runs fine-tuned from one start, BatchNorm re-estimated, saved as a run."""

import json

import numpy as np
import pytest
from train_helpers import cnn_config

from aidentify.config import AverageConfig
from aidentify.errors import ConfigError
from aidentify.inference.export import export_model
from aidentify.inference.modelfile import load_model
from aidentify.train.average import average_runs, mean_weights, recalibrate_batch_norms
from aidentify.train.data import load_training_input, make_dataset
from aidentify.train.fit import train
from aidentify.train.starting_weights import sample_images


@pytest.fixture(scope="module")
def two_runs(tiny_keras_model, tiny_data, tmp_path_factory):
    """Two one-epoch runs from the tiny model, with different seeds: two ingredients of one soup."""
    project = tmp_path_factory.mktemp("soup")
    return [train(cnn_config(tiny_data, project, init_weights=tiny_keras_model, seed=seed, name=f"seed{seed}"))
            .run_dir for seed in (1, 2)]


def _config(tiny_data, tmp_path, models, **extra):
    return AverageConfig(data_dir=tiny_data / "augmented", project=tmp_path / "runs", models=[str(m) for m in models],
                         calibration_images=64, **extra)


def _batch_norm_inputs(model, norm, images):
    import keras

    return keras.Model(model.inputs, norm.input).predict(images, verbose=0).reshape(-1, norm.input.shape[-1])


def test_mean_weights_averages_the_floats_and_keeps_the_first_models_integers():
    first = [np.array([1.0, 2.0], np.float32), np.array([7, 7], np.int64)]
    second = [np.array([3.0, 6.0], np.float32), np.array([9, 9], np.int64)]
    mean = mean_weights([first, second])
    assert np.array_equal(mean[0], [2.0, 4.0]) and mean[0].dtype == np.float32
    assert np.array_equal(mean[1], [7, 7])


def test_recalibration_gives_every_batch_norm_the_statistics_of_its_input(tiny_keras_model, tiny_data):
    import keras

    model, _ = load_model(tiny_keras_model)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for norm in norms:  # statistics that describe nothing: what averaging leaves behind, exaggerated
        gamma, beta, mean, variance = norm.get_weights()
        norm.set_weights([gamma, beta, mean + 3.0, variance * 10.0])
    images = sample_images(load_training_input(tiny_data / "augmented", "soft", None, 0).train.paths, 32, 64)
    recalibrate_batch_norms(model, images, batch_size=16)
    assert len(norms) >= 2
    for norm in norms:  # measured on the finished model: the later layers saw the earlier ones set
        inputs = _batch_norm_inputs(model, norm, images)
        assert np.allclose(np.asarray(norm.moving_mean), inputs.mean(axis=0), rtol=1e-3, atol=1e-4)
        assert np.allclose(np.asarray(norm.moving_variance), inputs.var(axis=0), rtol=1e-3, atol=1e-4)


def test_two_runs_average_into_a_run_folder_others_can_use(two_runs, tiny_data, tmp_path):
    result = average_runs(_config(tiny_data, tmp_path, two_runs, name="soup"))
    assert result.run_dir == tmp_path / "runs" / "cnn" / "soup"
    averaged, metadata = load_model(result.run_dir / "weights" / "best.keras")
    runs = [load_model(run / "weights" / "best.keras")[0] for run in two_runs]
    kernel = [np.asarray(m.get_layer("block1_conv1").kernel) for m in runs]
    assert not np.allclose(kernel[0], kernel[1])  # two different ingredients: the check can fail
    assert np.allclose(np.asarray(averaged.get_layer("block1_conv1").kernel), (kernel[0] + kernel[1]) / 2, atol=1e-6)
    assert metadata["classes"] == load_model(two_runs[0])[1]["classes"] and metadata["run"] == "soup"

    run_info = json.loads((result.run_dir / "run.json").read_text())
    assert [item["model"] for item in run_info["averaged"]] == [str(r / "weights" / "best.keras") for r in two_runs]
    data = load_training_input(tiny_data / "augmented", "soft", None, 0)
    labels = np.array([data.classes.index(label) for label in data.val.labels])
    images = np.concatenate([b.numpy() for b in make_dataset(data.val.paths, None, 32, 16)])
    accuracy = float((averaged.predict(images, verbose=0).argmax(axis=1) == labels).mean())
    assert run_info["best"]["val_accuracy"] == pytest.approx(accuracy) == pytest.approx(result.val_accuracy)
    # init_weights and export take the folder like any training run
    assert train(cnn_config(tiny_data, tmp_path, init_weights=result.run_dir)).epochs_run == 1
    assert {e.kind for e in export_model(result.run_dir, tmp_path / "export")} >= {"int8"}


def test_a_tflite_export_joins_the_average_unfolded(two_runs, tiny_keras_model, tiny_data, tmp_path):
    from aidentify.inference.classify import load_classifier
    int8 = next(e.path for e in export_model(tiny_keras_model, tmp_path / "export") if e.kind == "int8")
    result = average_runs(_config(tiny_data, tmp_path, [two_runs[0], int8]))
    assert [i.source for i in result.ingredients] == [two_runs[0] / "weights" / "best.keras", int8]
    # the unfolded file scores what the file itself scores on LiteRT (one borderline face may flip)
    data = load_training_input(tiny_data / "augmented", "soft", None, 0)
    images = np.concatenate([b.numpy() for b in make_dataset(data.val.paths, None, 32, 16)])
    labels = np.array([data.classes.index(label) for label in data.val.labels])
    on_litert = float((load_classifier(int8, backend="litert")(images).argmax(axis=1) == labels).mean())
    assert abs(result.ingredients[1].val_accuracy - on_litert) <= 1 / len(labels) + 1e-9
    assert (result.run_dir / "weights" / "best.keras").is_file()


def test_models_that_cannot_be_averaged_are_refused_before_any_folder(two_runs, tiny_keras_model, tiny_data,
                                                                      tmp_path):
    wide = train(cnn_config(tiny_data, tmp_path, cnn={"filters": [8, 24], "convs_per_block": 1, "dense_units": 16},
                            name="wide")).run_dir
    larger = train(cnn_config(tiny_data, tmp_path, name="larger").model_copy(update={"image_size": 40})).run_dir
    int8 = next(e.path for e in export_model(tiny_keras_model, tmp_path / "export") if e.kind == "int8")
    cases = [([two_runs[0]], "at least two models"),
             ([two_runs[0], wide], "architecture"),
             ([two_runs[0], larger], "input_size"),
             ([int8, int8], "at least one .keras")]
    for models, message in cases:
        with pytest.raises(ConfigError, match=message):
            average_runs(_config(tiny_data, tmp_path, models, name="refused"))
    assert not (tmp_path / "runs" / "cnn" / "refused").exists()


def test_the_command_prints_each_score_and_bad_input_is_one_line(two_runs, tiny_data, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from aidentify.cli import app

    monkeypatch.chdir(tmp_path)
    common = ["--set", f"data_dir={tiny_data / 'augmented'}", "--set", "calibration_images=64"]
    result = CliRunner().invoke(app, ["average", "-m", str(two_runs[0]), "-m", str(two_runs[1]), "--name", "soup",
                                      *common])
    assert result.exit_code == 0, result.output
    assert "average" in result.output and "runs/cnn/soup/weights/best.keras" in result.output.replace("\n", "")
    for bad, fragment in ((["-m", str(two_runs[0])], "at least two models"),
                          (["-m", str(two_runs[0]), "-m", "missing-run"], "model not found: missing-run")):
        refused = CliRunner().invoke(app, ["average", *bad, "--name", "bad", *common])
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert not (tmp_path / "runs" / "cnn" / "bad").exists()
