"""Issue 36, item 12: `evaluate` names the class folders it does not know, suggests the class a misspelt one
meant, and counts what it left out; `download` gives the same note. Uses the shipped model (no TensorFlow)."""

import json

from conftest import texture, write_image
from typer.testing import CliRunner

from aidentify.cli import app
from aidentify.config import EvaluateConfig
from aidentify.data.sources import index_dataset
from aidentify.train.evaluate import evaluate


def misspelt_folders(root):
    for i in range(3):
        for folder in ("happy", "sad", "angery", "suprised", "holiday"):
            write_image(root / folder / f"{folder}{i}.png", texture(80_000 + i * 7 + len(folder), 48))
    return root


def test_unknown_folders_are_listed_with_did_you_mean_and_counted(tmp_path):
    data = misspelt_folders(tmp_path / "faces")
    [result] = evaluate([], str(data), tmp_path / "out", EvaluateConfig(detect="never"))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n"] == 6 and metrics["n_left_out"] == 9
    assert metrics["excluded"] == {"folder angery: not an emotion; did you mean anger?": 3,
                                   "folder holiday: not an emotion": 3,
                                   "folder suprised: not an emotion; did you mean surprise?": 3}
    assert result.metrics["excluded"] == metrics["excluded"]


def test_the_cli_says_it_and_download_gives_the_same_note(tmp_path):
    data = misspelt_folders(tmp_path / "faces")
    result = CliRunner().invoke(app, ["evaluate", "--data", str(data), "--out", str(tmp_path / "out"),
                                      "--set", "detect=never"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "n=6 (9 left out)" in text
    assert "left out: 3 images (folder angery: not an emotion; did you mean anger?)" in text
    assert "the folders left out above may hold them" in text
    [note] = index_dataset(data, "faces", tmp_path / "derived").notes
    assert note.startswith("ignored 9 images in folders not named after an emotion: angery (3; did you mean "
                           "anger?), holiday (3), suprised (3; did you mean surprise?)")
