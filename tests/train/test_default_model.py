"""The shipped default model's provenance is complete, reproducible from the repo, and what the README and model card say."""

import re
import shlex
from pathlib import Path

import pytest

from aidentify.config import CnnArchitecture, CnnTrainConfig, load_config
from aidentify.inference.modelfile import default_model_path, read_metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def provenance():
    return read_metadata(default_model_path())["provenance"]


def test_each_training_stage_is_a_config_in_the_repo_that_gives_the_recorded_settings(provenance):
    commands, stages = provenance["commands"], provenance["stages"]
    assert len(commands) == len(stages) >= 1
    assert not stages[0]["config"].get("init_weights")
    for stage in stages:  # a stage that started from or learnt from other models names their exact files
        assert ("init_weights_sha256" in stage) == bool(stage["config"].get("init_weights"))
        teachers = (stage["config"].get("distill") or {}).get("teachers") or []
        assert [len(t["sha256"]) for t in stage.get("distill", {}).get("teachers", [])] == [64] * len(teachers)
    for command, stage in zip(commands, stages):
        args = shlex.split(command)
        config_file = ROOT / args[args.index("--config") + 1]
        config, _ = load_config(CnnTrainConfig, config_file)
        recorded = stage["config"]
        for key in ("epochs", "learning_rate", "schedule", "seed", "labels", "name", "image_size"):
            assert getattr(config, key) == recorded[key], (config_file, key)
        # Keys added after the model was trained must sit at their defaults, which build the network it had.
        assert config.cnn.model_dump() == {**CnnArchitecture().model_dump(), **recorded["cnn"]}
        assert config.distill.weight == (recorded.get("distill") or {}).get("weight", config.distill.weight)
        assert stage["data_manifest_sha256"] == provenance["data_manifest_sha256"]
    assert provenance["epochs"] == sum(s["epochs"] for s in stages)
    makefile = (ROOT / "Makefile").read_text()
    for command in commands:  # make default-model runs exactly these, in this order
        assert command.split("--config ")[1] in makefile


@pytest.mark.parametrize("page", ["docs/model-card.md", "README.md"])
def test_the_model_card_publishes_the_recorded_scores(provenance, page):
    readme = (ROOT / page).read_text()
    scores = provenance["fer_plus_valid"]
    shipped = scores[provenance["shipped"]]
    row = re.search(r"^\| shipped int8 TFLite \| \*\*([0-9.]+)\*\* \| ([0-9.]+) \|$", readme, re.MULTILINE)
    assert row, "model card row for the shipped model not found"
    assert float(row[1]) == round(shipped["accuracy"], 4)
    assert float(row[2]) == round(shipped["macro_f1"], 4)
    per_class = shipped["recall"].items() if page == "docs/model-card.md" else ()  # the per-class table is the card's
    for name, recall in per_class:
        assert re.search(rf"^\| {name} \| [0-9.]+ \| {recall:.3f} \|", readme, re.MULTILINE), name
    viewed = provenance["fer_plus_valid_with_views"]
    row = re.search(r"^\| shipped int8 TFLite, 10 test-time views \| \*\*([0-9.]+)\*\* \| ([0-9.]+) \|$", readme, re.MULTILINE)
    assert row, "model card row for the shipped model with test-time views not found"
    assert (float(row[1]), float(row[2])) == (round(viewed["accuracy"], 4), round(viewed["macro_f1"], 4))
    views = provenance["test_time_views"]
    command = f'--set tta_flip=true --set "tta_zooms=[{", ".join(str(z) for z in views["tta_zooms"])}]"'
    assert views["tta_flip"] and command in readme  # the page gives the command that reproduces the row


def test_an_averaged_default_model_names_each_averaged_file_and_its_config(provenance):
    average = provenance.get("average")
    if average is None:  # a model from one run: nothing averaged to check
        assert len(provenance["stages"]) == len(provenance["commands"])
        return
    from aidentify.config import AverageConfig

    args = shlex.split(average["command"])
    config, _ = load_config(AverageConfig, ROOT / args[args.index("--config") + 1])
    assert config.name == average["config"]["name"]
    assert config.calibration_images == average["calibration_images"]
    assert average["command"].split("--config ")[1] in (ROOT / "Makefile").read_text()
    fine_tunes = [s for s in provenance["stages"] if s["run"] in {m["model"] for m in average["models"]}]
    starts = {s["init_weights_sha256"] for s in fine_tunes}
    assert len(fine_tunes) >= 2 and len(starts) == 1  # fine-tunes of one file...
    assert len(average["models"]) == len(fine_tunes) + 1 and starts <= {m["sha256"] for m in average["models"]}


@pytest.mark.parametrize("page", ["docs/model-card.md", "README.md"])
def test_the_pages_publish_the_recorded_posed_expression_scores(provenance, page):
    text = (ROOT / page).read_text()
    prose = " ".join(text.split())  # prose wraps anywhere
    scores = provenance["posed_expressions"]  # scripts/ship_default_model.py measures them on CK+48 dev
    for key in ("accuracy", "accuracy_without_contempt", "macro_f1"):
        assert f"{scores[key]:.3f}" in prose, key
    assert "benchmarks/posed_expressions.py" in prose  # the benchmark that reproduces them
    per_class = scores["recall"].items() if page == "docs/model-card.md" else ()  # the confusion table is the card's
    for name, recall in per_class:  # each row of the card's confusion table ends with the class's recall
        assert re.search(rf"^\| {name} \([0-9]+\) \|.* \| {recall:.2f} \|$", text, re.MULTILINE), name
