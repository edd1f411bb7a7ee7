"""analyze's inputs checked before work, and its faults: kill -9 of itself or of a worker, all failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from study_media import Respondent, write_recording
from typer.testing import CliRunner

from aidentify.cli import app

HAPPY = ((0.0, "happiness"),)


def _analyze(*args):
    return CliRunner().invoke(app, ["analyze", *map(str, args)])


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for i in range(3):
        write_recording(folder / f"r{i}.avi", Respondent(f"r{i}", "A", 0.0, HAPPY), 6.0)
    return folder


def test_every_bad_input_gets_its_own_error_line_and_nothing_is_written(clips, tmp_path):
    csv_path = tmp_path / "respondents.csv"
    csv_path.write_text(f"recording,ofset_s,group\n{clips}/r0.avi,1,A\nmissing.avi,0,B\n"
                        f"{clips}/r0.avi,zero,A\n")
    result = _analyze("--respondents", csv_path, "--out", tmp_path / "out")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert any("unknown column 'ofset_s'; did you mean 'offset_s'" in e for e in errors)
    assert any("line 3: recording missing.avi: no such file" in e for e in errors)
    assert any("line 4: recording" in e and "also on line 2" in e for e in errors)
    assert len(errors) == 3 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_bad_segments_and_a_bad_baseline_are_refused(clips, tmp_path):
    segments = tmp_path / "segments.csv"
    segments.write_text("name,start_s,end_s\nintro,0,5\nintro,5,3\n")
    result = _analyze(clips / "r0.avi", "--segments", segments, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "line 3: segment 'intro' is also on line 2" in result.stderr
    assert "line 3: end_s 3 is not after start_s 5" in result.stderr
    result = _analyze(clips / "r0.avi", "--set", "baseline=5:1", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "ends before it starts" in result.stderr


def test_a_folder_names_what_is_not_a_recording_and_fails_a_damaged_one(clips, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    whole = (clips / "r0.avi").read_bytes()
    (folder / "r0.avi").write_bytes(whole)
    (folder / "half.avi").write_bytes(whole[:len(whole) // 2])  # a copy cut short: the header still says 60 frames
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)  # named as video, damaged
    (folder / "notes.txt").write_text("who watched when")
    result = _analyze(folder, "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "notes.txt: not an image or video (not analysed)" in notes[0]
    assert "analysed 2 of 3 recordings" in result.stdout
    failed = (tmp_path / "out" / "failed.csv").read_text()
    assert "broken.mp4" in failed and "truncated or damaged" in failed
    assert "half: decoding stopped after 30 of the 60 frames" in " ".join(result.stderr.split())
    study = json.loads((tmp_path / "out" / "study.json").read_text())
    assert study["counts"]["ended_early"] == ["half"]
    half = json.loads((tmp_path / "out" / "recordings" / "half" / "summary.json").read_text())
    assert half["frames"] == 30 and half["frames_expected"] == 60 and half["ended_early"] is True


def test_when_every_recording_fails_the_exit_is_1(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    result = _analyze(bad, "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 1
    assert (tmp_path / "out" / "failed.csv").read_text().count("\n") == 2  # header and the one recording
    assert not (tmp_path / "out" / "report.html").exists()


def _start(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "aidentify", "analyze", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive: /proc says its state
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _long_clip(folder: Path, name: str, seconds: float = 40.0) -> Path:
    return write_recording(folder / f"{name}.avi", Respondent(name, "A", 0.0, HAPPY), seconds)


def test_a_worker_killed_mid_recording_costs_one_retry(tmp_path):
    clip = _long_clip(tmp_path, "long")
    out = tmp_path / "out"
    process = _start([clip, "--out", out, "--workers", "1"], tmp_path)
    progress = out / "recordings" / "long" / ".progress.json"
    first = _wait_for(lambda: progress.is_file() and json.loads(progress.read_text()))
    os.kill(first["pid"], signal.SIGKILL)
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 0, output
    assert "retry long: its worker died; starting it again (attempt 2)" in output
    summary = json.loads((out / "recordings" / "long" / "summary.json").read_text())
    assert summary["attempt"] == 2 and summary["pid"] != first["pid"] and summary["frames"] == 400
    assert (out / "failed.csv").read_text().strip() == "recording,reason"


def test_kill_9_of_analyze_leaves_no_worker_and_the_rerun_keeps_finished_work(tmp_path):
    quick = write_recording(tmp_path / "a_quick.avi", Respondent("a_quick", "A", 0.0, HAPPY), 3.0)
    slow = _long_clip(tmp_path, "b_slow", 60.0)
    out = tmp_path / "out"
    args = [quick, slow, "--out", out, "--workers", "1"]
    process = _start(args, tmp_path)
    done = out / "recordings" / "a_quick" / "summary.json"
    _wait_for(done.is_file)
    progress = out / "recordings" / "b_slow" / ".progress.json"
    worker = _wait_for(lambda: progress.is_file() and json.loads(progress.read_text()))["pid"]
    finished_at = done.stat().st_mtime_ns
    process.kill()
    process.wait(timeout=10)
    _wait_for(lambda: not _alive(worker), timeout=10)  # the worker follows its parent
    assert not (out / "recordings" / "b_slow" / "timeline.csv").exists()  # nothing half-written in place
    rerun = _start(args, tmp_path)
    output, _ = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, output
    assert "done before a_quick" in output and "done b_slow" in output
    assert done.stat().st_mtime_ns == finished_at
    assert not list(out.rglob(".*partial*"))
