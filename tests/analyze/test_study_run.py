"""aidentify analyze end to end on a study whose expressions are known (tests/analyze/study_media.py).

Group A sees a neutral face, then at 6 s a smiling one; group B the reverse; p2's face is gone from
8 to 10 s; every recording starts at its own offset before the stimulus; broken.mp4 is cut at 30%.
"""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from study_media import Respondent, write_study
from typer.testing import CliRunner

from aidentify.cli import app

NEUTRAL_THEN_HAPPY = ((0.0, "neutral"), (6.0, "happiness"))
HAPPY_THEN_NEUTRAL = ((0.0, "happiness"), (6.0, "neutral"))
RESPONDENTS = [
    Respondent("p1", "A", 1.0, NEUTRAL_THEN_HAPPY),
    Respondent("p2", "A", 2.5, ((0.0, "neutral"), (6.0, "happiness"), (8.0, None), (10.0, "happiness"))),
    Respondent("p3", "B", 0.5, HAPPY_THEN_NEUTRAL),
    Respondent("p4", "B", 3.0, HAPPY_THEN_NEUTRAL),
]
STIMULUS_S = 12.0


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    respondents = write_study(folder / "data", RESPONDENTS, STIMULUS_S)
    segments = folder / "segments.csv"
    segments.write_text("name,start_s,end_s\nbefore,0,6\nafter,6,12\n")
    out = folder / "out"
    result = CliRunner().invoke(app, ["analyze", "--respondents", str(respondents), "--segments", str(segments),
                                      "--out", str(out), "--workers", "2"])
    return out, result


def test_the_study_finishes_naming_the_failure(study):
    out, result = study
    assert result.exit_code == 0, result.output
    assert "analysed 4 of 5 recordings" in result.stdout
    assert "1 failed" in result.stderr and "broken.mp4" in result.stderr
    for name in ("epochs.csv", "aggregate.csv", "moments.csv", "segment_summary.csv", "failed.csv",
                 "study.json", "report.html"):
        assert (out / name).is_file(), name
    for r in RESPONDENTS:
        assert (out / "recordings" / r.name / "timeline.csv").is_file()
    assert not list(out.rglob(".*partial*")) and not list(out.rglob(".progress.json"))


def test_only_the_truncated_file_failed(study):
    out, _ = study
    rows = list(csv.DictReader(open(out / "failed.csv")))
    assert [r["recording"].rsplit("/", 1)[-1] for r in rows] == ["broken.mp4"]
    assert rows[0]["reason"]
    counts = json.loads((out / "study.json").read_text())["counts"]
    assert (counts["recordings"], counts["analysed"], counts["failed"]) == (5, 4, 1)


def _curve(out, group, metric):
    table = pd.read_csv(out / "aggregate.csv")
    rows = table[(table.group == group) & (table.metric == metric)].set_index("time_s")
    return rows


def test_curves_follow_the_schedule_on_the_stimulus_clock(study):
    out, _ = study
    a, b = _curve(out, "A", "happiness"), _curve(out, "B", "happiness")
    # the switch is at 6 s of the stimulus, whatever each recording's offset
    assert (a.loc[0:5, "mean"] < 0.2).all() and (a.loc[6:11, "mean"] > 0.8).all()
    assert (b.loc[0:5, "mean"] > 0.8).all() and (b.loc[7:11, "mean"] < 0.2).all()
    neutral_a = _curve(out, "A", "neutral")
    assert (neutral_a.loc[0:5, "mean"] > 0.6).all()
    assert list(a.index) == list(range(12))  # 12 one-second epochs: the stimulus, not the offsets
    valence = _curve(out, "A", "valence")
    assert abs(valence.loc[2, "mean"]) < 0.1 and valence.loc[9, "mean"] > 0.8  # neutral: near 0


def test_n_drops_while_a_face_is_absent(study):
    out, _ = study
    n = _curve(out, "A", "happiness")["n"]
    assert list(n.loc[8:9]) == [1, 1]
    assert (n.drop([8, 9]) == 2).all()
    epochs = pd.read_csv(out / "epochs.csv")
    p2 = epochs[epochs.respondent == "p2"].set_index("time_s")
    assert p2.loc[8, "face_share"] == 0 and pd.isna(p2.loc[8, "happiness"])


def test_key_moments_within_a_second_of_the_true_changes(study):
    out, _ = study
    moments = pd.read_csv(out / "moments.csv")
    rise = moments[(moments.group == "A") & (moments.metric == "happiness")].sort_values("change").iloc[-1]
    fall = moments[(moments.group == "B") & (moments.metric == "happiness")].sort_values("change").iloc[0]
    assert rise.change > 0.5 and abs(rise.time_s - 6.0) <= 1.0
    assert fall.change < -0.5 and abs(fall.time_s - 6.0) <= 1.0


def test_segments_and_the_test_between_groups(study):
    out, _ = study
    table = pd.read_csv(out / "segment_summary.csv")
    happy = table[table.metric == "happiness"].set_index(["group", "segment"])
    assert happy.loc[("A", "before"), "mean"] < 0.2 < 0.8 < happy.loc[("A", "after"), "mean"]
    assert happy.loc[("B", "before"), "mean"] > 0.8
    assert happy.loc[("all", "before"), "n"] == 4
    assert 0 <= happy.loc[("A", "before"), "p_value"] < 0.05  # the groups differ clearly before 6 s


def test_a_second_run_reuses_finished_recordings(study, tmp_path):
    out, _ = study
    before = {r.name: (out / "recordings" / r.name / "summary.json").stat().st_mtime_ns for r in RESPONDENTS}
    respondents = out.parent / "data" / "respondents.csv"
    again = CliRunner().invoke(app, ["analyze", "--respondents", str(respondents), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert again.stdout.count("done before") == 4
    after = {r.name: (out / "recordings" / r.name / "summary.json").stat().st_mtime_ns for r in RESPONDENTS}
    assert before == after


def test_a_changed_setting_redoes_the_recordings(study, tmp_path):
    out, _ = study
    data = out.parent / "data"
    result = CliRunner().invoke(app, ["analyze", str(data / "p3.avi"), "--out", str(tmp_path / "o"),
                                      "--set", "detect.every=2"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["analyze", str(data / "p3.avi"), "--out", str(tmp_path / "o"),
                                      "--set", "detect.every=4"])
    assert "done before" not in result.stdout and "done p3" in result.stdout


def test_serve_shows_the_finished_study_s_report(study):
    from fastapi.testclient import TestClient

    from aidentify.config import ServeConfig
    from aidentify.serve.app import create_app

    out, _ = study
    with TestClient(create_app(ServeConfig(study=out, workers=1))) as client:
        page = client.get("/study")
        assert page.status_code == 200 and page.text == (out / "report.html").read_text(encoding="utf-8")
    with TestClient(create_app(ServeConfig(study=out / "nowhere", workers=1))) as client:
        missing = client.get("/study")
        assert missing.status_code == 404 and "run `aidentify analyze" in missing.json()["error"]
