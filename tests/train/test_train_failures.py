"""Training that fails or collides: through the real CLI in fresh processes, as a user meets it.

An unreadable image in the data, an error inside the epoch loop, and two
``train --resume`` of the same run started at the same moment.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from train_helpers import cnn_config, interrupted_after_first_epoch

from aidentify.config import dump_config
from aidentify.data.manifest import absolute_paths, read_manifest
from aidentify.train.fit import train


def _cli(*args, cwd=None):
    """``aidentify ARGS`` in a fresh process, the command a user types."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "aidentify", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)


def _finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _copy_of(tiny_data, tmp_path):
    """A private copy of the session's tiny data (the manifests' relative paths still hold)."""
    return Path(shutil.copytree(tiny_data, tmp_path / "data"))


def _first_train_image(data):
    frame = read_manifest(data / "augmented", produced_by="augment")
    train_rows = frame[frame["split"] == "train"]
    return absolute_paths(train_rows, data / "augmented")[0]


def _config_file(config, tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(dump_config(config))
    return path


@pytest.mark.parametrize("damage, why", [("truncated", "it is truncated or not an image"),
                                         ("text", "it is truncated or not an image"),
                                         ("missing", "it is missing")])
def test_an_unreadable_training_image_is_one_line_naming_it(tiny_data, tmp_path, damage, why):
    data = _copy_of(tiny_data, tmp_path)
    broken = _first_train_image(data)
    if damage == "truncated":
        broken.write_bytes(broken.read_bytes()[:40])
    elif damage == "text":
        broken.write_text("this is not an image\n")
    else:
        broken.unlink()
    config = cnn_config(data, tmp_path)
    code, _, err = _finish(_cli("train", "--config", _config_file(config, tmp_path)))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith(f"error: cannot read training image {broken}: {why}; "), lines[0]
    assert "aidentify prepare" in lines[0]
    assert not (tmp_path / "runs" / "cnn" / "exp").exists()  # refused before its first epoch: nothing left


def test_a_resumed_run_that_meets_an_unreadable_image_is_marked_failed(tiny_data, tmp_path):
    data = _copy_of(tiny_data, tmp_path)
    config = cnn_config(data, tmp_path, epochs=2)
    run = interrupted_after_first_epoch(config)
    broken = _first_train_image(data)
    broken.write_bytes(broken.read_bytes()[:40])
    code, _, err = _finish(_cli("train", "--resume", run))
    assert code == 1 and len(err.strip().splitlines()) == 1 and str(broken) in err, err[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and str(broken) in info["error"]
    assert (run / "weights" / "last.keras").is_file()  # the epoch already trained is kept


def test_any_error_inside_the_epoch_loop_marks_the_run_failed(tiny_data, tmp_path, monkeypatch):
    import keras

    def broken_fit(self, *args, **kwargs):
        raise RuntimeError("out of memory on the device")

    config = cnn_config(tiny_data, tmp_path, epochs=2)
    run = interrupted_after_first_epoch(config)
    monkeypatch.setattr(keras.Model, "fit", broken_fit)
    with pytest.raises(RuntimeError, match="out of memory"):
        train(config, resume=run)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and info["error"] == "RuntimeError: out of memory on the device"
    assert info["epochs_done"] == 1


def test_two_resumes_of_one_run_started_together_train_it_once(tiny_data, tmp_path):
    config = cnn_config(tiny_data, tmp_path, epochs=3)
    run = interrupted_after_first_epoch(config)
    started = time.monotonic()
    both = [_cli("train", "--resume", run), _cli("train", "--resume", run)]
    results = [_finish(process) for process in both]
    assert time.monotonic() - started < 300
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], [err[-2000:] for _, _, err in results]
    refused = next((process, err) for process, (code, _, err) in zip(both, results) if code == 1)
    trainer = next(process for process, (code, _, _) in zip(both, results) if code == 0)
    assert refused[1].strip() == (f"error: {run} is being trained by process {trainer.pid}; "
                                  "wait for it or stop it first")
    assert list(pd.read_csv(run / "results.csv")["epoch"]) == [0, 1, 2]
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
