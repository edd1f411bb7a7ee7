"""The same study on a real 2-worker Dask LocalCluster gives the same outputs as on local processes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from study_media import Respondent, write_study
from typer.testing import CliRunner

from aidentify.cli import app

distributed = pytest.importorskip("distributed", reason="the cluster extra: pip install 'aidentify[cluster]'")

SCHEDULE = ((0.0, "neutral"), (3.0, "happiness"))


def test_a_dask_cluster_gives_the_local_run_s_outputs(tmp_path):
    people = [Respondent(f"p{i}", "AB"[i % 2], 0.5 * i, SCHEDULE) for i in range(4)]
    respondents = write_study(tmp_path / "data", people, 6.0, truncated=False)
    local = CliRunner().invoke(app, ["analyze", "--respondents", str(respondents), "--out", str(tmp_path / "local"),
                                     "--workers", "2"])
    assert local.exit_code == 0, local.output
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = CliRunner().invoke(app, ["analyze", "--respondents", str(respondents), "--out",
                                          str(tmp_path / "cluster"), "--cluster", cluster.scheduler_address])
    assert remote.exit_code == 0, remote.output
    assert "Dask cluster" in remote.stdout
    pids = {json.loads((tmp_path / "cluster" / "recordings" / p.name / "summary.json").read_text())["pid"]
            for p in people}
    assert len(pids) == 2  # both workers took recordings
    for name in ("epochs.csv", "aggregate.csv", "moments.csv", "segment_summary.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "local" / name), pd.read_csv(tmp_path / "cluster" / name))
    for p in people:
        assert ((tmp_path / "local" / "recordings" / p.name / "timeline.csv").read_text()
                == (tmp_path / "cluster" / "recordings" / p.name / "timeline.csv").read_text())


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    people = [Respondent("p0", "A", 0.0, SCHEDULE)]
    respondents = write_study(tmp_path / "data", people, 2.0, truncated=False)
    result = CliRunner().invoke(app, ["analyze", "--respondents", str(respondents), "--out", str(tmp_path / "o"),
                                      "--cluster", "tcp://127.0.0.1:9", "--set", "workers=1"])
    assert result.exit_code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.stderr
