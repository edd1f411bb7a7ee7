"""`aidentify live` and `aidentify export` end to end, as a user runs them."""

import csv
import time
from collections import Counter

import cv2
import numpy as np
import pytest
from live_helpers import count_frames, virtual_display
from typer.testing import CliRunner

from aidentify.cli import app
from aidentify.live import capture
from aidentify.live.demo import write_demo_video
from aidentify.inference.modelfile import read_metadata

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_video(tmp_path_factory):
    """Three real faces drifting over 2 s of 640x480 video."""
    return write_demo_video(tmp_path_factory.mktemp("video") / "faces.mp4", faces=3, seconds=2.0)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def read_timeline(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_video_to_annotated_video_and_complete_timeline(demo_video, tmp_path):
    out, timeline, chart = tmp_path / "out.mp4", tmp_path / "t.csv", tmp_path / "summary.png"
    result = invoke("live", "--source", demo_video, "--no-window", "--output", out, "--timeline", timeline,
                    "--chart", chart)
    assert result.exit_code == 0, result.output
    frames = count_frames(demo_video)
    assert frames == 60
    assert count_frames(out) == frames
    rows = read_timeline(timeline)
    assert {int(r["frame"]) for r in rows} == set(range(frames))
    assert Counter(r["track_id"] for r in rows) == {"1": frames, "2": frames, "3": frames}  # stable ids
    classes = read_metadata(None)["classes"]
    for row in rows[:10]:
        probs = [float(row[f"p_{c}"]) for c in classes]
        assert sum(probs) == pytest.approx(1.0, abs=1e-3)
        assert row["label"] == classes[int(np.argmax(probs))]
    assert chart.stat().st_size > 1000
    assert "Emotion shares per face" in result.output and "#3" in result.output
    assert "frames/s" in result.output
    assert not list(tmp_path.glob(".*partial*"))  # temporary names renamed away


def test_frames_without_a_face_get_a_row(tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 90, np.uint8))
    timeline = tmp_path / "t.csv"
    result = invoke("live", "--source", blank, "--no-window", "--timeline", timeline)
    assert result.exit_code == 0, result.output
    rows = read_timeline(timeline)
    assert len(rows) == 1 and rows[0]["frame"] == "0" and rows[0]["track_id"] == ""


def test_folder_of_images(tmp_path):
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "a.jpg"), astronaut)
    cv2.imwrite(str(folder / "b.png"), astronaut[:, ::-1])
    timeline = tmp_path / "t.csv"
    result = invoke("live", "--source", folder, "--no-window", "--timeline", timeline)
    assert result.exit_code == 0, result.output
    rows = read_timeline(timeline)
    assert [r["frame"] for r in rows] == ["0", "1"] and all(r["track_id"] for r in rows)


def test_demo_runs_with_no_camera_and_no_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("live", "--demo", "--no-window", "--max-frames", "20", "--output", "demo.mp4",
                    "--timeline", "demo.csv")
    assert result.exit_code == 0, result.output
    assert count_frames(tmp_path / "demo.mp4") == 20
    rows = read_timeline(tmp_path / "demo.csv")
    assert len({r["track_id"] for r in rows}) == 4  # four people, each followed as one track
    per_frame = [sum(r["frame"] == str(i) for r in rows) for i in range(20)]
    assert per_frame == [4] * 20, per_frame  # and all four labelled in every frame


@pytest.mark.parametrize("args, message", [
    (["--camera", "97", "--no-window"], "cannot open camera 97"),
    (["--source", "missing.mp4", "--no-window"], "no such file or folder"),
    (["--source", "{bad_video}", "--no-window"], "cannot read video"),
    (["--source", "{bad_image}", "--no-window"], "cannot read image"),
    (["--source", "{video}", "--no-window", "--output", "out.gif"], "use a .mp4 or .avi"),
    (["--source", "{video}", "--no-window", "--model", "{bad_model}"], "not a readable .tflite"),
    (["--camera", "0", "--source", "{video}", "--no-window"], "one of --demo, --camera INDEX or --source"),
    (["--no-window"], "one of --demo, --camera INDEX or --source"),
    (["--demo", "--camera", "0", "--no-window"], "one of --demo, --camera INDEX or --source"),
    (["--demo", "--no-window", "--model", "nope.tflite"], "model not found: nope.tflite"),
    (["--demo", "--no-window", "--output", "out.gif"], "use a .mp4 or .avi"),
    (["--source", "{video}"], "no display to open a window on"),
])
def test_errors_are_one_line_and_leave_nothing_behind(args, message, demo_video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    (tmp_path / "bad.mp4").write_text("not a video")
    (tmp_path / "bad.png").write_text("not an image")
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    names = {"bad_video": tmp_path / "bad.mp4", "bad_image": tmp_path / "bad.png", "video": demo_video,
             "bad_model": tmp_path / "bad.tflite"}
    result = invoke("live", *[a.format(**names) for a in args])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output
    assert "demo:" not in result.output  # no banner of a demo that will not run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "bad.png", "bad.tflite"]


class FakeCamera:
    """A camera that plays a video file and records whether it was released."""

    released = False

    def __init__(self, path):
        self._capture = cv2.VideoCapture(str(path))

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self._capture.isOpened()

    def read(self):
        time.sleep(1 / 30)  # a camera delivers frames at its own pace
        return self._capture.read()

    def get(self, prop):
        return self._capture.get(prop)

    def release(self):
        FakeCamera.released = True
        self._capture.release()


def test_window_with_a_camera_under_xvfb_snapshot_then_quit(demo_video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(capture, "open_camera_device", lambda index: FakeCamera(demo_video))
    keys = iter([-1, -1, ord("s"), -1, ord("q")])
    real_wait_key = cv2.waitKey
    monkeypatch.setattr(cv2, "waitKey", lambda ms: (real_wait_key(1), next(keys, ord("q")))[1])
    FakeCamera.released = False
    with virtual_display():
        result = invoke("live", "--camera", "0", "--bars")
    assert result.exit_code == 0, result.output
    snapshots = list((tmp_path / "snapshots").glob("snapshot-*.png"))
    assert len(snapshots) == 1, result.output
    assert cv2.imread(str(snapshots[0])).shape == (480, 640, 3)
    assert "5 frames" in result.output
    assert FakeCamera.released
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshots"]  # nothing else written


def test_export_writes_checked_tflite_files_that_live_can_run(tiny_keras_model, demo_video, tmp_path):
    result = invoke("export", "--model", tiny_keras_model, "--out", tmp_path / "export")
    assert result.exit_code == 0, result.output
    float32, int8 = tmp_path / "export" / "best.tflite", tmp_path / "export" / "best.int8.tflite"
    assert "same top class" in result.output
    for path in (float32, int8):
        assert read_metadata(path)["classes"] == read_metadata(tiny_keras_model)["classes"]
    assert int8.stat().st_size < float32.stat().st_size
    for model in (float32, tiny_keras_model):  # LiteRT and the tf.function path
        run = invoke("live", "--source", demo_video, "--no-window", "--max-frames", "3", "--model", model)
        assert run.exit_code == 0, run.output
        assert "3 frames" in run.output


def test_export_refuses_a_tflite_input():
    result = invoke("export", "--model", str(read_metadata.__globals__["default_model_path"]()))
    assert result.exit_code == 1 and "already a .tflite" in result.output
