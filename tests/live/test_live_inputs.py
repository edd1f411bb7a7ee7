"""Issue 36: every input read by what it holds. Animations frame by frame at their own times, HEIC and
AVIF as photos, folders file by file (videos each with their own tracks), camera indices checked."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import defaultdict

import cv2
import numpy as np
import pytest
from live_helpers import count_frames
from PIL import Image
from typer.testing import CliRunner

from aidentify.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def astronaut_rgb():
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def cat_rgb(astronaut_rgb):
    """scikit-image's cat (no human face), at the astronaut's size so both can be frames of one animation."""
    from skimage import data

    return cv2.resize(data.chelsea(), astronaut_rgb.shape[1::-1])


def save_frames(path, frames, **params):
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], **params)
    return path


@pytest.mark.parametrize("name, params, times", [
    ("anim.webp", {"duration": [400, 400], "loop": 0}, ["0.000", "0.400"]),
    ("anim.gif", {"duration": [300, 100], "loop": 0}, ["0.000", "0.300"]),
    ("pages.tif", {}, ["0.000", "1.000"]),  # pages carry no duration: one second each, like photos
])
def test_a_face_in_frame_two_is_found_at_the_frames_own_time(name, params, times, cat_rgb, astronaut_rgb,
                                                              tmp_path):
    source = save_frames(tmp_path / name, [cat_rgb, astronaut_rgb], **params)
    result = invoke("live", "--source", source, "--no-window", "--timeline", tmp_path / "t.csv",
                    "--output", tmp_path / "out.mp4")
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "t.csv")
    assert [row["time_s"] for row in rows] == times
    assert [bool(row["track_id"]) for row in rows] == [False, True]  # the cat, then the astronaut's face
    assert "no face found" not in result.output
    assert count_frames(tmp_path / "out.mp4") >= 2  # an animation is a short video: it writes a video


def test_an_animation_as_an_image_output_is_refused_before_work(cat_rgb, astronaut_rgb, tmp_path):
    source = save_frames(tmp_path / "anim.webp", [cat_rgb, astronaut_rgb], duration=400)
    result = invoke("live", "--source", source, "--no-window", "--output", tmp_path / "out.jpg")
    assert result.exit_code == 1
    assert "a video source writes an annotated video" in result.output


def heic_bytes(rgb):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    import io

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="HEIF", quality=90)
    return buffer.getvalue()


def avif_bytes(rgb):
    import io

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="AVIF", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("name, encode", [("photo.heic", heic_bytes), ("photo.avif", avif_bytes)])
def test_heic_and_avif_are_photos_with_an_image_output(name, encode, astronaut_rgb, tmp_path):
    (tmp_path / name).write_bytes(encode(astronaut_rgb))
    result = invoke("live", "--source", tmp_path / name, "--no-window", "--output", tmp_path / "out.jpg",
                    "--timeline", tmp_path / "t.csv")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "out.jpg")).shape == astronaut_rgb.shape
    rows = read_rows(tmp_path / "t.csv")
    assert len(rows) == 1 and rows[0]["file"] == name and rows[0]["track_id"] == "1"


def test_content_not_the_suffix_decides(astronaut_rgb, cat_rgb, tmp_path):
    """A still GIF is a photo; an animated WebP named .jpg is still an animation."""
    from aidentify.live.capture import source_kind

    Image.fromarray(astronaut_rgb).save(tmp_path / "still.gif")
    save_frames(tmp_path / "moving.jpg", [cat_rgb, astronaut_rgb], format="WEBP", duration=100)
    assert source_kind(source=str(tmp_path / "still.gif")) == "image"
    assert source_kind(source=str(tmp_path / "moving.jpg")) == "video"


def write_video(path, rgb, frames=6, fps=10.0):
    """A short video of a photo drifting right (MJPG .avi or mp4v .mp4, as OpenCV writes them here)."""
    bgr = cv2.cvtColor(cv2.resize(rgb, (320, 320)), cv2.COLOR_RGB2BGR)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (400, 320))
    assert writer.isOpened()
    for i in range(frames):
        canvas = np.full((320, 400, 3), 90, np.uint8)
        canvas[:, 8 * i:8 * i + 320] = bgr
        writer.write(canvas)
    writer.release()
    return path


def test_a_folder_is_read_file_by_file_videos_each_with_their_own_tracks(astronaut_rgb, cat_rgb, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_video(folder / "a.avi", astronaut_rgb)
    write_video(folder / "b.mp4", astronaut_rgb[:, ::-1].copy(), frames=4)
    Image.fromarray(astronaut_rgb).save(folder / "c-photo.jpg")
    save_frames(folder / "d-anim.gif", [cat_rgb, astronaut_rgb], duration=[250, 250])
    (folder / "notes.txt").write_text("shot on the 3rd\n")
    out = tmp_path / "annotated"
    result = invoke("live", "--source", folder, "--no-window", "--timeline", tmp_path / "t.csv", "--output", out)
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "t.csv")
    by_file = defaultdict(list)
    for row in rows:
        by_file[row["file"]].append(row)
    assert list(by_file) == ["a.avi", "b.mp4", "c-photo.jpg", "d-anim.gif"]
    assert [len(by_file[name]) for name in by_file] == [6, 4, 1, 2]
    for name in ("a.avi", "b.mp4"):  # each video starts afresh: frame 0, media time 0, track #1
        frames = by_file[name]
        assert frames[0]["frame"] == "0" and frames[0]["time_s"] == "0.000"
        assert {row["track_id"] for row in frames} == {"1"}
    assert [row["time_s"] for row in by_file["d-anim.gif"]] == ["0.000", "0.250"]
    assert "notes.txt" in result.output and "not an image or video" in result.output
    assert "1 file skipped (1 not an image or video)" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.avi", "b.mp4", "c-photo.jpg", "d-anim.mp4"]
    assert count_frames(out / "a.avi") == 6 and count_frames(out / "b.mp4") == 4
    assert "a.avi #1" in result.output and "b.mp4 #1" in result.output  # the summary names each file's faces


def test_a_folder_of_only_other_files_names_them(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "readme.txt").write_text("nothing here")
    result = invoke("live", "--source", tmp_path / "f", "--no-window")
    assert result.exit_code == 1
    assert "readme.txt: not an image or video (skipped)" in result.output
    assert "contains no images or videos live can read" in result.output


@pytest.mark.parametrize("index", ["-1", "99999999999"])
def test_a_camera_index_out_of_range_is_one_error_line(index):
    """In a child process: today's -1 is a segfault, which would take pytest down with it."""
    done = subprocess.run([sys.executable, "-m", "aidentify", "live", "--camera", index, "--no-window"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, (done.returncode, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [f"error: --camera {index}: a camera index is a whole number from 0 to 9999 "
                      "(0 is usually the built-in webcam)"], done.stderr


def test_serve_checks_the_camera_index_before_starting():
    result = invoke("serve", "--port", "0", "--camera", "99999999999")
    assert result.exit_code == 1
    assert "error: --camera 99999999999: a camera index is a whole number from 0 to 9999" in result.output


def crowd_photo(rgb, rows=4, cols=5, side=160):
    """``rows x cols`` copies of a face photo, as one crowd photo (BGR)."""
    face = cv2.cvtColor(cv2.resize(rgb[:300, 100:400], (side, side)), cv2.COLOR_RGB2BGR)
    return np.vstack([np.hstack([face] * cols)] * rows)


def test_a_photo_keeps_more_than_sixteen_faces_and_a_cap_that_cuts_says_so(astronaut_rgb, tmp_path):
    """Issue 36, item 13: photos were cut to detect.max_faces (16) without a word."""
    cv2.imwrite(str(tmp_path / "crowd.jpg"), crowd_photo(astronaut_rgb))
    result = invoke("live", "--source", tmp_path / "crowd.jpg", "--no-window", "--timeline", tmp_path / "t.csv")
    assert result.exit_code == 0, result.output
    assert len(read_rows(tmp_path / "t.csv")) > 16
    assert "warning" not in result.output
    capped = invoke("live", "--source", tmp_path / "crowd.jpg", "--no-window", "--set", "detect.photo_max_faces=5",
                    "--timeline", tmp_path / "t5.csv")
    assert capped.exit_code == 0, capped.output
    assert len(read_rows(tmp_path / "t5.csv")) == 5
    text = " ".join(capped.output.split())
    assert "warning: in 1 photo the detector found more faces than the 5 kept (up to" in text
    assert "--set detect.photo_max_faces=N" in text


def test_an_mp4_output_is_h264_and_smaller_than_mp4v_where_pyav_has_libx264(tmp_path, monkeypatch):
    """Issue 36, item 14: OpenCV's mp4v made a 165 MB file of a 7 MB input."""
    av = pytest.importorskip("av")
    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx264")
    from aidentify.live import encode
    from aidentify.live.demo import write_demo_video

    source = write_demo_video(tmp_path / "in.avi", faces=2, seconds=1.0)
    assert invoke("live", "--source", source, "--no-window", "--output", tmp_path / "h264.mp4").exit_code == 0
    monkeypatch.setattr(encode, "h264_available", lambda: False)
    assert invoke("live", "--source", source, "--no-window", "--output", tmp_path / "mp4v.mp4").exit_code == 0
    with av.open(str(tmp_path / "h264.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.frames in (0, 30)
    assert count_frames(tmp_path / "h264.mp4") == count_frames(tmp_path / "mp4v.mp4") == 30
    assert (tmp_path / "h264.mp4").stat().st_size < (tmp_path / "mp4v.mp4").stat().st_size / 2
