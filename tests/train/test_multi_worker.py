"""`strategy: multi_worker`: two `aidentify train` processes on this machine form one cluster."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from train_helpers import TINY_CNN, cnn_config

# Each worker runs the real CLI (`python -m aidentify train`), with Keras's `fit` wrapped only to
# save the weights the worker ends with, so the test can compare the two processes' models.
WORKER = textwrap.dedent("""
    import runpy, sys
    import keras
    import numpy as np

    out = sys.argv.pop(1)
    fit = keras.Model.fit

    def fit_and_keep_weights(self, *args, **kwargs):
        history = fit(self, *args, **kwargs)
        np.savez(out, **{w.path: np.asarray(w) for w in self.weights})
        return history

    keras.Model.fit = fit_and_keep_weights
    sys.argv[0] = "aidentify"
    runpy.run_module("aidentify", run_name="__main__")
""")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _weights(path):
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


@pytest.mark.slow
def test_two_workers_on_localhost_train_one_model(tiny_data, tmp_path):
    from aidentify.inference.modelfile import load_model

    config = tmp_path / "train_cnn.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "data_dir": str(tiny_data / "augmented"), "project": str(tmp_path / "runs"), "image_size": 32,
        "epochs": 1, "batch_size": 16, "tensorboard": False, "strategy": "multi_worker", "cnn": TINY_CNN,
    }))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    started = time.monotonic()
    for index in (0, 1):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, "-c", WORKER, str(tmp_path / f"worker{index}.npz"),
                   "train", "--model", "cnn", "--config", str(config)]
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=env, cwd=tmp_path))
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=480))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    print(f"two workers trained in {time.monotonic() - started:.0f} s")
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stdout[-2000:] + stderr[-4000:]

    # only the chief (worker 0) writes a run folder; worker 1 says where the run went
    runs = sorted(p.name for p in (tmp_path / "runs" / "cnn").iterdir())
    assert runs == ["exp"], runs
    run = tmp_path / "runs" / "cnn" / "exp"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["strategy"] == "CollectiveAllReduceStrategy"  # TensorFlow's class behind the name
    assert info["replicas"] == 2 and info["workers"] == 2
    assert len(pd.read_csv(run / "results.csv")) == 1
    assert "worker 1 of 2" in outputs[1][0] and "saved by the chief" in outputs[1][0]

    # both processes end with the same model, and it is the one the chief saved
    chief, other = _weights(tmp_path / "worker0.npz"), _weights(tmp_path / "worker1.npz")
    assert chief.keys() == other.keys() and len(chief) > 0
    differ = [name for name in chief if not np.array_equal(chief[name], other[name])]
    assert not differ, f"the workers' weights differ in {differ}"
    saved, _ = load_model(run / "weights" / "last.keras")
    assert {w.path: np.asarray(w) for w in saved.weights}.keys() == chief.keys()
    for w in saved.weights:
        np.testing.assert_array_equal(np.asarray(w), chief[w.path], err_msg=w.path)


def test_a_multi_worker_run_is_not_resumed(tiny_data, tmp_path):
    from aidentify.config import dump_config
    from aidentify.errors import ConfigError
    from aidentify.train.fit import train

    config = cnn_config(tiny_data, tmp_path, strategy="multi_worker")
    run = tmp_path / "runs" / "cnn" / "exp"
    (run / "weights").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(config))
    (run / "weights" / "last.keras").write_bytes(b"")
    (run / "weights" / "state.json").write_text(json.dumps({"phase": 1, "epoch": 1, "best": None}))
    with pytest.raises(ConfigError, match="--set init_weights="):
        train(config, resume=run)
