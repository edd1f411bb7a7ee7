"""The Python API: aidentify.load().predict / .stream, its dataclasses, and live --json on top of it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from api_media import astronaut_bgr, write_clip, write_photo
from typer.testing import CliRunner

import aidentify
from aidentify.cli import app
from aidentify.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def recognizer():
    return aidentify.load()


def test_labelling_imports_no_tensorflow(tmp_path):
    photo = write_photo(tmp_path / "a.png")
    script = textwrap.dedent(f"""
        import sys, aidentify
        faces = aidentify.load().predict({str(photo)!r})
        print(faces[0].label, 'tensorflow' in sys.modules, 'keras' in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["happiness", "False", "False"]


def test_predict_takes_bgr_gray_and_pil_alike(recognizer):
    from PIL import Image

    bgr = astronaut_bgr()
    from_bgr = recognizer.predict(bgr)
    from_pil = recognizer.predict(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    from_gray = recognizer.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert len(from_bgr) == len(from_pil) == len(from_gray) == 1
    assert from_bgr[0].box == from_pil[0].box
    assert np.allclose(list(from_bgr[0].probabilities.values()), list(from_pil[0].probabilities.values()), atol=1e-6)
    assert from_gray[0].label == from_bgr[0].label == "happiness"
    # the face is where the astronaut's face is (hand-marked: x 178-270, y 76-182)
    x, y, w, h = from_bgr[0].box
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 200


def test_predict_on_a_faceless_image_is_an_empty_list(recognizer):
    assert recognizer.predict(np.full((240, 320, 3), 127, np.uint8)) == []


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((10, 10, 2), np.uint8), "(H, W, 3)"),
    ("missing.jpg", "no such image file"),
])
def test_predict_refuses_what_is_not_an_image_with_our_error(recognizer, bad, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        recognizer.predict(bad)


def test_a_file_that_is_not_an_image_is_our_error(recognizer, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("not a photo")
    with pytest.raises(aidentify.AidentifyError):
        recognizer.predict(fake)


def test_load_names_a_bad_setting_and_a_missing_model(tmp_path):
    with pytest.raises(ConfigError, match="min_face"):
        aidentify.load(detect__min_fase=40)
    with pytest.raises(aidentify.AidentifyError):
        aidentify.load(tmp_path / "nope.tflite")


def test_stream_tracks_one_face_with_media_times(recognizer, tmp_path):
    clip = write_clip(tmp_path / "clip.avi", frames=30, fps=15.0)
    frames = list(recognizer.stream(clip))
    assert [f.index for f in frames] == list(range(30))
    assert np.allclose([f.time_s for f in frames], np.arange(30) / 15.0, atol=1e-3)
    assert all(len(f.faces) == 1 for f in frames)
    assert {f.faces[0].track_id for f in frames} == {1}
    # the head drifts right by 2 px a frame: the box follows it
    assert frames[-1].faces[0].box[0] - frames[0].faces[0].box[0] > 40
    assert frames[0].file is None and not any(f.detected for f in frames[1:3])


def test_stream_max_frames_and_a_folder_of_photos(recognizer, tmp_path):
    clip = write_clip(tmp_path / "clip.avi", frames=30)
    assert len(list(recognizer.stream(clip, max_frames=5))) == 5
    folder = tmp_path / "photos"
    folder.mkdir()
    write_photo(folder / "a.png")
    cv2.imwrite(str(folder / "b.png"), np.full((100, 100, 3), 90, np.uint8))
    frames = list(recognizer.stream(folder))
    assert [(f.file, len(f.faces)) for f in frames] == [("a.png", 1), ("b.png", 0)]


def test_to_dict_is_json_and_matches_the_face(recognizer):
    face = recognizer.predict(astronaut_bgr())[0]
    row = json.loads(json.dumps(face.to_dict()))
    assert row["box"] == list(face.box) and row["label"] == face.label and row["track"] == face.track_id
    assert set(row["probabilities"]) == set(recognizer.classes)
    assert set(row["keypoints"]) == {"right_eye", "left_eye", "nose", "mouth_right", "mouth_left"}
    right_eye = row["keypoints"]["right_eye"]
    x, y, w, h = face.box
    assert x <= right_eye[0] <= x + w and y <= right_eye[1] <= y + h


def test_live_json_prints_one_object_per_frame_on_stdout_only(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    write_photo(folder / "a.png")
    cv2.imwrite(str(folder / "b.png"), np.full((100, 100, 3), 90, np.uint8))
    result = CliRunner().invoke(app, ["live", "--source", str(folder), "--no-window", "--json"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    rows = [json.loads(line) for line in lines]  # every line is JSON: no table, no config line
    assert [(r["file"], len(r["faces"])) for r in rows] == [("a.png", 1), ("b.png", 0)]
    assert rows[0]["faces"][0]["label"] == "happiness"
    assert set(rows[0]) >= {"model", "classes", "image", "faces", "timings_ms"}
    assert "Emotion per face per photo" in result.stderr


def test_live_json_stops_quietly_when_its_reader_goes(tmp_path):
    """`live --json | head -n 1`: the reader closes the pipe; live stops at once, exit 0, no error line."""
    clip = write_clip(tmp_path / "clip.avi", frames=400, fps=12.0)  # far more JSON than a pipe buffers
    process = subprocess.Popen([sys.executable, "-m", "aidentify", "live", "--source", str(clip), "--no-window",
                                "--json", "--output", str(tmp_path / "out.avi")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = json.loads(process.stdout.readline())
    process.stdout.close()  # as `head -n 1` does
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0, stderr
    assert first["frame"] == 0
    assert "error" not in stderr.lower() and "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert "wrote" in stderr and (tmp_path / "out.avi").is_file()  # what it did is kept, as on a user's stop
    written = cv2.VideoCapture(str(tmp_path / "out.avi")).get(cv2.CAP_PROP_FRAME_COUNT)
    assert 0 < written < 400  # it stopped when the reader went, not at the end of the clip


def test_live_json_on_a_video(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", frames=12, fps=12.0)
    result = CliRunner().invoke(app, ["live", "--source", str(clip), "--no-window", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["frame"] for r in rows] == list(range(12))
    assert rows[-1]["time_s"] == pytest.approx(11 / 12, abs=1e-3)
    assert all(r["faces"][0]["track"] == 1 for r in rows)
