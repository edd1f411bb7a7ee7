"""Who is the chief of a multi-worker cluster, read from TF_CONFIG (no TensorFlow needed)."""

import json

import pytest

from aidentify.errors import ConfigError
from aidentify.train.device import WorkerRole, worker_role

WORKERS = {"worker": ["host1:12345", "host2:12345"]}


def _role(monkeypatch, cluster, kind, index):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))
    return worker_role()


def test_worker_0_is_the_chief_unless_the_cluster_names_one(monkeypatch):
    assert _role(monkeypatch, WORKERS, "worker", 0) == WorkerRole(0, 2, True)
    assert _role(monkeypatch, WORKERS, "worker", 1) == WorkerRole(1, 2, False)
    with_chief = {"chief": ["host0:1"], **WORKERS}
    assert _role(monkeypatch, with_chief, "chief", 0) == WorkerRole(0, 3, True)
    assert _role(monkeypatch, with_chief, "worker", 0) == WorkerRole(1, 3, False)


def test_a_missing_or_wrong_tf_config_is_a_config_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs TF_CONFIG"):
        worker_role()
    with pytest.raises(ConfigError, match="does not describe this process"):
        _role(monkeypatch, WORKERS, "worker", 2)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="does not describe this process"):
        worker_role()
