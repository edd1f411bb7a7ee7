"""DenseNet169's base weights: Keras's ImageNet file, a local file, or none; offline failures are one line."""

import inspect
import json
import socket
import urllib.error

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from train_helpers import densenet_config

from aidentify.cli import app
from aidentify.errors import ConfigError
from aidentify.train.fit import train
from aidentify.train.models import (
    DENSENET169_NOTOP_FILE,
    DENSENET169_NOTOP_MD5,
    DENSENET169_NOTOP_URL,
    densenet_base,
    resolve_densenet_weights,
)

runner = CliRunner()


def densenet_cli(data, *extra):
    """`train --model densenet` on the tiny data: 32 px, a 16-unit head, no fine-tuning."""
    args = ["train", "--model", "densenet", "--epochs", "1", "--set", f"data_dir={data / 'augmented'}",
            "--set", "project=runs", "--set", "image_size=32", "--set", "max_samples=24", "--set", "batch_size=16",
            "--set", "tensorboard=false", "--set", "densenet.head_units=16", "--set", "densenet.fine_tune.epochs=0"]
    return runner.invoke(app, args + [item for pair in (("--set", e) for e in extra) for item in pair])


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "Downloading data from" not in result.output
    return lines[0]


def bare_base(include_top=False, network="DenseNet169"):
    import keras

    return getattr(keras.applications, network)(include_top=include_top, weights=None, input_shape=(32, 32, 3))


@pytest.fixture
def offline(monkeypatch):
    """No network, faked where Keras's get_file downloads (the call keras.applications.densenet goes through)."""
    from keras.src.utils import file_utils

    tried = []

    def unreachable(url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(file_utils, "urlretrieve", unreachable)
    return tried


def test_the_imagenet_file_is_the_one_keras_applications_fetches():
    from keras.src.applications import densenet

    source = inspect.getsource(densenet)
    assert densenet.DENSENET169_WEIGHT_PATH_NO_TOP == DENSENET169_NOTOP_URL
    assert f'"{DENSENET169_NOTOP_FILE}",\n                    DENSENET169_WEIGHT_PATH_NO_TOP' in source
    assert f'file_hash="{DENSENET169_NOTOP_MD5}"' in source


def test_a_weights_file_trains_through_the_config_key_and_the_base_holds_its_weights(tiny_data, workdir):
    from aidentify.inference.modelfile import load_model

    source = bare_base()
    source.save_weights(workdir / "base.weights.h5")
    result = densenet_cli(tiny_data, "densenet.weights=base.weights.h5")  # relative to the working folder
    assert result.exit_code == 0, result.output
    run = workdir / "runs" / "densenet" / "exp"
    recorded = yaml.safe_load((run / "config.yaml").read_text())["densenet"]["weights"]
    assert recorded == str(workdir / "base.weights.h5")
    info = json.loads((run / "run.json").read_text())
    assert info["densenet_weights"] == recorded and len(info["densenet_weights_sha256"]) == 64
    model, _ = load_model(run / "weights" / "last.keras")
    trained = densenet_base(model).get_weights()  # the base stays frozen in phase 1
    assert len(trained) == len(source.weights)
    assert all(np.array_equal(a, b) for a, b in zip(trained, source.get_weights()))


def test_an_offline_download_is_one_line_before_any_data_is_read(tiny_data, workdir, offline, monkeypatch):
    keras_home = workdir / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))

    def no_data(*args, **kwargs):
        raise AssertionError("training data loaded before the weights were fetched")

    monkeypatch.setattr("aidentify.train.fit.load_training_input", no_data)
    line = one_error_line(densenet_cli(tiny_data))
    assert offline == [DENSENET169_NOTOP_URL]
    assert line == (f"error: could not download DenseNet169's ImageNet weights from {DENSENET169_NOTOP_URL} "
                    f"([Errno -2] Name or service not known); Keras keeps them at "
                    f"{keras_home / 'models' / DENSENET169_NOTOP_FILE}: copy the file there or pass it with "
                    "--set densenet.weights=PATH, or train from random weights with --set densenet.weights=null")
    assert not (workdir / "runs").exists()


def test_a_file_in_keras_cache_needs_no_network(tmp_path, offline, monkeypatch):
    """The copy-it-there way on: Keras's own checksum is what lets the cached file through, so fake it."""
    from keras.src.utils import file_utils

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / DENSENET169_NOTOP_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"the ImageNet file")
    monkeypatch.setattr(file_utils, "validate_file", lambda path, file_hash, algorithm: file_hash == DENSENET169_NOTOP_MD5)
    assert resolve_densenet_weights("imagenet") == cached and offline == []


def test_a_damaged_file_in_keras_cache_is_named_as_such(tmp_path, offline, monkeypatch):
    from aidentify.errors import DownloadError

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / DENSENET169_NOTOP_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"half a download")
    with pytest.raises(DownloadError, match="the file that was there failed Keras's checksum, and Keras deleted it"):
        resolve_densenet_weights("imagenet")
    assert offline == [DENSENET169_NOTOP_URL]


def test_a_real_offline_download_gives_the_same_line(tiny_data, workdir, monkeypatch):
    try:
        socket.getaddrinfo("storage.googleapis.com", 443)
    except OSError:
        pass
    else:
        pytest.skip("this machine is online: the real call would download the file (about 50 MB)")
    monkeypatch.setenv("KERAS_HOME", str(workdir / "keras-home"))
    line = one_error_line(densenet_cli(tiny_data))
    assert line.startswith(f"error: could not download DenseNet169's ImageNet weights from {DENSENET169_NOTOP_URL} (")
    assert f"Keras keeps them at {workdir / 'keras-home' / 'models' / DENSENET169_NOTOP_FILE}:" in line
    assert line.endswith("--set densenet.weights=PATH, or train from random weights with --set densenet.weights=null")
    assert not (workdir / "runs").exists()


def test_a_file_of_the_wrong_shape_is_refused_naming_the_expected_file(tiny_data, workdir):
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    def legacy_h5(model, name):  # the format of Keras's own ImageNet files
        with h5py.File(workdir / name, "w") as f:
            save_weights_to_hdf5_group(f, model)
        return workdir / name

    legacy_notop = legacy_h5(bare_base(), "notop.h5")
    assert resolve_densenet_weights(legacy_notop) == legacy_notop
    bare_base(include_top=True).save_weights(workdir / "top.weights.h5")
    bare_base(network="DenseNet121").save_weights(workdir / "densenet121.weights.h5")
    (workdir / "junk.h5").write_text("not HDF5")
    wrong = {
        "top.weights.h5": "holds 846 arrays, DenseNet169 without its top has 844 (weights with the top",
        legacy_h5(bare_base(include_top=True), "top.h5").name: "holds 846 arrays",
        "densenet121.weights.h5": "holds 604 arrays",
        "junk.h5": "is not an HDF5 weights file",
        "missing.h5": "no such file",
    }
    for name, reason in wrong.items():
        with pytest.raises(ConfigError, match=DENSENET169_NOTOP_FILE) as refused:
            resolve_densenet_weights(name)
        assert f"densenet.weights {workdir / name}" in str(refused.value) and reason in str(refused.value)
    line = one_error_line(densenet_cli(tiny_data, "densenet.weights=top.weights.h5"))
    assert DENSENET169_NOTOP_FILE in line and "846 arrays" in line
    assert not (workdir / "runs").exists()


def test_a_file_of_the_right_size_that_does_not_load_is_refused(workdir):
    """As many arrays as the base, one of another shape: Keras's own refusal, as one line."""
    import h5py

    bare_base().save_weights(workdir / "base.weights.h5")
    with h5py.File(workdir / "base.weights.h5", "r+") as f:
        del f["layers/conv2d/vars/0"]
        f["layers/conv2d/vars/0"] = np.zeros((1, 1, 1, 1), dtype="float32")
    with pytest.raises(ConfigError, match=f"does not fit DenseNet169 without its top .*{DENSENET169_NOTOP_FILE}") as refused:
        resolve_densenet_weights(workdir / "base.weights.h5")
    assert "\n" not in str(refused.value)


def test_a_run_starting_from_init_weights_fetches_nothing(tiny_data, tmp_path, offline):
    """init_weights replaces every weight of the base: offline, such a run needs no ImageNet file."""
    from aidentify.inference.modelfile import save_model
    from aidentify.train.fit import _build

    config = densenet_config(tiny_data, tmp_path)
    save_model(_build(config, 3), tmp_path / "start.keras",
               {"model": "densenet", "classes": ["happiness", "sadness", "anger"], "input_size": 32})
    fine_tune = config.densenet.fine_tune.model_copy(update={"epochs": 0})
    config = config.model_copy(update={
        "init_weights": tmp_path / "start.keras", "max_samples": 24,
        "densenet": config.densenet.model_copy(update={"weights": "imagenet", "fine_tune": fine_tune})})
    result = train(config)
    assert offline == [] and "densenet_weights" not in json.loads((result.run_dir / "run.json").read_text())
