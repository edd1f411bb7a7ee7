"""evaluate: on the pipeline's split and on a generated folder with other class names."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import texture, write_image
from train_helpers import cnn_config

from aidentify.cli import app
from aidentify.config import EvaluateConfig
from aidentify.errors import ConfigError
from aidentify.train.evaluate import evaluate
from aidentify.train.fit import train


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    return train(cnn_config(tiny_data, tmp_path_factory.mktemp("eval_runs"))).run_dir


def test_evaluate_the_pipeline_test_split(tiny_data, trained, tmp_path):
    [result] = evaluate([trained], None, tmp_path / "out", EvaluateConfig(data_dir=tiny_data / "prepared"))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "per_class", "n"} <= set(metrics)
    assert metrics["n"] == result.metrics["n"] > 0 and 0.0 <= metrics["accuracy"] <= 1.0
    assert set(metrics["per_class"]) == {"happiness", "sadness", "anger"}
    for name in ("confusion_matrix.png", "worst_mistakes.png", "predictions.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 0


def test_external_folder_with_synonyms_and_classes_on_one_side(trained, tmp_path):
    folder = tmp_path / "external"
    for i in range(4):
        write_image(folder / "Happy" / f"h{i}.png", texture(70_000 + i, 48) // 4 + 40)
        write_image(folder / "angry" / f"a{i}.png", texture(71_000 + i, 48) // 4 + 200)
        write_image(folder / "fearful" / f"f{i}.png", texture(72_000 + i, 48))  # not a model class
    config = EvaluateConfig(detect="never", tta_flip=True)
    [result] = evaluate([trained], str(folder), tmp_path / "out", config)
    metrics = result.metrics
    assert metrics["n"] == 8
    assert metrics["excluded"] == {"class not in model: fear": 4}
    assert metrics["classes_missing_from_data"] == ["sadness"]
    assert set(metrics["per_class"]) == {"happiness", "anger"}
    assert metrics["tta_flip"] is True


def test_zoom_views_change_the_predictions_and_are_recorded(tiny_data, trained, tmp_path):
    config = EvaluateConfig(data_dir=tiny_data / "prepared")
    [plain] = evaluate([trained], "val", tmp_path / "plain", config)
    [viewed] = evaluate([trained], "val", tmp_path / "views",
                        config.model_copy(update={"tta_flip": True, "tta_zooms": [0.9, 0.8]}))
    assert viewed.metrics["tta_zooms"] == [0.9, 0.8] and viewed.metrics["n"] == plain.metrics["n"]
    columns = [f"p_{c}" for c in plain.metrics["classes"]]
    before, after = (pd.read_csv(r.out_dir / "predictions.csv")[columns] for r in (plain, viewed))
    assert not np.allclose(before, after, atol=1e-4)
    assert np.allclose(after.sum(axis=1), 1.0, atol=1e-3)


def test_two_models_side_by_side(tiny_data, trained, tmp_path):
    results = evaluate([trained, trained / "weights" / "last.keras"], "val", tmp_path / "out",
                       EvaluateConfig(data_dir=tiny_data / "prepared"))
    assert [r.out_dir.name for r in results] == ["cnn-exp", "cnn-exp-2"]
    comparison = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert set(comparison) == {"cnn-exp", "cnn-exp-2"}



def test_ensemble_scores_the_mean_of_the_members_predictions(tiny_data, trained, tmp_path):
    members = [trained, train(cnn_config(tiny_data, tmp_path, seed=7)).run_dir]  # another seed: other predictions
    results = evaluate(members, "val", tmp_path / "out", EvaluateConfig(data_dir=tiny_data / "prepared", ensemble=True))
    assert [r.name for r in results][2] == "ensemble"
    columns = [f"p_{c}" for c in results[0].metrics["classes"]]
    tables = [pd.read_csv(r.out_dir / "predictions.csv") for r in results]
    assert not np.allclose(tables[0][columns], tables[1][columns], atol=1e-3)  # the members disagree somewhere
    assert np.allclose((tables[0][columns] + tables[1][columns]) / 2, tables[2][columns], atol=1e-5)
    assert results[2].metrics["n"] == results[0].metrics["n"]
    assert list(json.loads((tmp_path / "out" / "comparison.json").read_text())) == [r.name for r in results]


def test_ensemble_of_one_model_is_refused(trained, tmp_path):
    with pytest.raises(ConfigError, match="two or more"):
        evaluate([trained], "val", tmp_path / "out", EvaluateConfig(ensemble=True))

def test_cli_evaluate_prints_tables_and_errors_in_one_line(tiny_data, trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "--model", str(trained), "--set", f"data_dir={tiny_data / 'prepared'}",
                                 "--out", "report"])
    assert result.exit_code == 0, result.output + result.stderr
    assert "macro-F1" in result.output and (tmp_path / "report" / "metrics.json").is_file()
    missing = runner.invoke(app, ["evaluate", "--model", "nope.keras"])
    assert missing.exit_code == 1
    assert missing.stderr.strip() == ("error: model not found: nope.keras; pass a .keras or .tflite file, "
                                      "a run folder, or default (the shipped model)")
    bad_split = runner.invoke(app, ["evaluate", "--model", str(trained), "--data", "tset"])
    assert bad_split.exit_code == 1 and "not a split name" in bad_split.stderr


def test_a_failed_cli_evaluate_leaves_no_run_folder(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-dataset").mkdir()
    (tmp_path / "not-a-dataset" / "notes.txt").write_text("nothing to evaluate on")
    result = CliRunner().invoke(app, ["evaluate", "--model", str(trained), "--data", "not-a-dataset"])
    assert result.exit_code == 1 and result.stderr.startswith("error:")
    missing = CliRunner().invoke(app, ["evaluate", "--model", "nope.keras"])
    assert missing.exit_code == 1
    assert not (tmp_path / "runs").exists()


def test_cli_train_errors(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    typo = runner.invoke(app, ["train", "--model", "cnn", "--set", "epoch=3"])
    assert typo.exit_code == 1 and "did you mean 'epochs'" in typo.stderr
    no_data = runner.invoke(app, ["train-cnn"])
    assert no_data.exit_code == 1 and "aidentify augment" in no_data.stderr
    not_a_run = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert not_a_run.exit_code == 1 and "not a training run folder" in not_a_run.stderr
    wrong_model = runner.invoke(app, ["train", "--model", "resnet"])
    assert wrong_model.exit_code == 1 and "choose cnn or densenet" in wrong_model.stderr


def test_tflite_export_scores_like_its_keras_model_and_no_model_means_the_shipped_one(tiny_data, trained, tmp_path):
    from aidentify.inference.export import export_model
    from aidentify.inference.modelfile import default_model_path

    exported = {e.kind: e.path for e in export_model(trained, tmp_path / "export")}
    config = EvaluateConfig(data_dir=tiny_data / "prepared")
    keras_result, tflite_result = evaluate([trained, exported["float32"]], None, tmp_path / "both", config)
    assert tflite_result.metrics["n"] == keras_result.metrics["n"]
    assert tflite_result.metrics["accuracy"] == pytest.approx(keras_result.metrics["accuracy"], abs=1e-9)
    [shipped] = evaluate([], None, tmp_path / "default", config)
    assert shipped.model_path == default_model_path()
    assert shipped.metrics["n"] == keras_result.metrics["n"]


@pytest.mark.parametrize("side", [96, 100, 61])
def test_a_tflite_model_is_scored_on_the_pixels_its_keras_model_trained_on(tmp_path, side):
    # Keras models read crops through the training loader (TensorFlow), .tflite files through OpenCV.
    # Shrinking 96 px crops to 48 by a whole factor once rounded differently there (12% of pixels).
    from aidentify.faces.crop import resize_square
    from aidentify.train.data import make_dataset
    from aidentify.train.evaluate import _read_crop

    paths = []
    for seed in range(4):
        paths.append(str(tmp_path / f"{seed}.png"))
        write_image(Path(paths[-1]), texture(seed, side))
    [loaded] = list(make_dataset(paths, None, 48, batch_size=4, cache="none").as_numpy_iterator())
    read = np.stack([resize_square(_read_crop(p), 48) for p in paths])[..., None]
    difference = np.abs(loaded.astype(int) - read)
    if side % 48 == 0:
        assert np.array_equal(loaded, read)
    else:  # the two float sums may land on either side of a half on a rare pixel
        assert difference.max() <= 1 and (difference > 0).mean() < 0.005
