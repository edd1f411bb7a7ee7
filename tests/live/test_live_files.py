"""`aidentify live` on images and folders as users have them: mac-zipped folders, broken files,
and outputs that fit the input (an image gives an image, a folder gives a folder)."""

import errno
import os

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from aidentify.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def jpeg_bytes(image):
    return cv2.imencode(".jpg", image)[1].tobytes()


def warnings_in(output):
    return [line for line in output.splitlines() if line.startswith("warning:")]


def test_a_mac_zipped_folder_skips_the_clutter(astronaut, tmp_path):
    folder = tmp_path / "happy"
    (folder / "__MACOSX").mkdir(parents=True)
    cv2.imwrite(str(folder / "img0.png"), astronaut)
    cv2.imwrite(str(folder / "img1.jpg"), astronaut[:, ::-1])
    (folder / "._img0.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 60)
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 100)
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    (folder / "__MACOSX" / "._img1.jpg").write_bytes(b"\x00\x05\x16\x07")
    out = tmp_path / "annotated"
    result = invoke("live", "--source", folder, "--no-window", "--output", out)
    assert result.exit_code == 0, result.output
    assert "2 frames in" in result.output and "skipped" not in result.output
    assert not warnings_in(result.output)  # clutter is not a bad file: not a word about it
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.jpg"]


def test_broken_files_in_a_folder_are_skipped_counted_and_the_rest_kept(astronaut, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    whole = jpeg_bytes(astronaut)
    (folder / "a-good.jpg").write_bytes(whole)
    (folder / "b-truncated.jpg").write_bytes(whole[: len(whole) * 3 // 10])
    (folder / "c-garbage.png").write_bytes(b"this is not an image")
    (folder / "d-good.jpg").write_bytes(jpeg_bytes(astronaut[:, ::-1]))
    out = tmp_path / "out"
    result = invoke("live", "--source", folder, "--no-window", "--output", out)
    assert result.exit_code == 0, result.output
    warnings = warnings_in(result.output)
    assert len(warnings) == 2, result.output
    assert "b-truncated.jpg: truncated (skipped)" in warnings[0]
    assert "c-garbage.png: cannot read it (skipped)" in warnings[1]
    assert "2 frames in" in result.output
    assert "2 files skipped (1 truncated, 1 unreadable)" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["a-good.jpg", "d-good.jpg"]  # the first one kept


def test_a_truncated_png_is_skipped_too(astronaut, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    whole = cv2.imencode(".png", astronaut)[1].tobytes()
    (folder / "a.png").write_bytes(whole)
    (folder / "b.png").write_bytes(whole[: len(whole) // 2])
    result = invoke("live", "--source", folder, "--no-window")
    assert result.exit_code == 0, result.output
    assert any("b.png: truncated (skipped)" in w for w in warnings_in(result.output)), result.output
    assert "1 frame in" in result.output and "1 file skipped (1 truncated)" in result.output


@pytest.mark.parametrize("name", ["annotated.jpg", "annotated.png", "annotated.webp", "annotated.bmp"])
def test_an_image_gives_an_annotated_image_in_the_format_asked(name, astronaut, tmp_path):
    source = tmp_path / "astronaut.png"
    cv2.imwrite(str(source), astronaut)
    out = tmp_path / name
    result = invoke("live", "--source", source, "--no-window", "--output", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output.replace("\n", "")
    magic = {".jpg": b"\xff\xd8", ".png": b"\x89PNG", ".webp": b"RIFF", ".bmp": b"BM"}[out.suffix]
    assert out.read_bytes().startswith(magic)
    annotated = cv2.imread(str(out))
    assert annotated.shape == astronaut.shape
    face_area = np.s_[0:240, 100:340]  # the astronaut's face and the box drawn around it
    changed = np.abs(annotated[face_area].astype(int) - astronaut[face_area].astype(int)).max(axis=2) > 60
    assert changed.sum() > 300  # the box and label, not just compression noise
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["astronaut.png", name])


def test_a_folder_gives_a_folder_of_annotated_images_with_the_same_names(astronaut, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "one.jpg"), astronaut)
    cv2.imwrite(str(folder / "two.png"), astronaut[:, ::-1])
    (folder / "three.webp").write_bytes(b"broken")
    out = tmp_path / "outdir"
    result = invoke("live", "--source", folder, "--no-window", "--output", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["one.jpg", "two.png"]
    assert (out / "one.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert (out / "two.png").read_bytes()[:4] == b"\x89PNG"
    assert not np.array_equal(cv2.imread(str(out / "two.png")), astronaut[:, ::-1])  # annotated
    assert not list(out.glob(".*"))  # no temporary names left


@pytest.mark.parametrize("source, output, message", [
    ("folder", "out.mp4", "a folder of images writes a folder of annotated images with the same names; "
                          "give a folder name (no .mp4)"),
    ("folder", "out.jpg", "give a folder name (no .jpg)"),
    ("folder", "folder", "is the source folder"),
    ("image", "out.mp4", "an image source writes an annotated image; use an image file name"),
    ("image", "photo.png", "would overwrite the source image"),
    ("video", "out.jpg", "a video source writes an annotated video; use a .mp4 or .avi file name"),
    ("video", "outdir", "a video source writes an annotated video; use a .mp4 or .avi file name"),
])
def test_an_output_that_does_not_fit_the_input_is_one_error_before_any_work(source, output, message, astronaut,
                                                                           tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    cv2.imwrite(str(tmp_path / "folder" / "a.png"), astronaut)
    cv2.imwrite(str(tmp_path / "photo.png"), astronaut)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    given = {"folder": "folder", "image": "photo.png", "video": "clip.mp4"}[source]
    result = invoke("live", "--source", given, "--no-window", "--output", output)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in result.output.replace("\n", " "), result.output
    assert "frames in" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def _error_lines(result):
    return [line for line in result.output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("source, output", [("video", "blocker/out.mp4"), ("image", "blocker/sub/out.png"),
                                            ("folder", "blocker/annotated")])
def test_an_output_under_a_file_is_one_error_before_any_work(source, output, astronaut, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder would go")
    (tmp_path / "folder").mkdir()
    cv2.imwrite(str(tmp_path / "folder" / "a.png"), astronaut)
    cv2.imwrite(str(tmp_path / "photo.png"), astronaut)
    _write_video(tmp_path / "clip.avi", np.zeros((48, 64, 3), np.uint8))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    given = {"folder": "folder", "image": "photo.png", "video": "clip.avi"}[source]
    result = invoke("live", "--source", given, "--no-window", "--output", output)
    assert result.exit_code == 1, result.output
    assert _error_lines(result) == [f"error: cannot write --output {output}: blocker is a file, not a folder; "
                                    "choose another path"], result.output
    assert "frames in" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("option, path, cause", [
    ("--timeline", "blocker/t.csv", "blocker is a file, not a folder; choose another path"),
    ("--chart", "blocker/c.png", "blocker is a file, not a folder; choose another path"),
    ("--timeline", "blocker/sub/t.csv", "blocker is a file, not a folder; choose another path"),
    ("--timeline", "adir", "adir is a folder, not a file; give a file name"),
    ("--chart", "adir", "adir is a folder, not a file; give a file name"),
])
def test_every_file_live_writes_is_checked_before_any_work(option, path, cause, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder would go")
    (tmp_path / "adir").mkdir()
    _write_video(tmp_path / "clip.avi", np.zeros((48, 64, 3), np.uint8))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = invoke("live", "--source", "clip.avi", "--no-window", "--output", "out.avi", option, path)
    assert result.exit_code == 1, result.output
    assert _error_lines(result) == [f"error: cannot write {option} {path}: {cause}"], result.output
    assert "frames in" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_the_snapshot_folder_is_checked_before_a_window_opens(tmp_path, monkeypatch):
    from aidentify.live import player

    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder would go")
    _write_video(tmp_path / "clip.avi", np.zeros((48, 64, 3), np.uint8))
    monkeypatch.setattr(player, "has_display", lambda: True)
    monkeypatch.setattr(player, "_show", lambda *args: pytest.fail("a window was opened"))
    result = invoke("live", "--source", "clip.avi", "--set", "snapshot_dir=blocker/snaps")
    assert result.exit_code == 1, result.output
    assert _error_lines(result) == ["error: cannot write snapshots in blocker/snaps: blocker is a file, not a "
                                    "folder; choose another path"], result.output


def test_a_folder_without_write_permission_is_one_error_before_any_work(astronaut, tmp_path, monkeypatch):
    if os.geteuid() == 0:
        pytest.skip("running as root: permission bits do not stop root from writing (the probe is tested "
                    "with a faked refusal below)")
    monkeypatch.chdir(tmp_path)
    cv2.imwrite(str(tmp_path / "photo.png"), astronaut)
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o555)
    try:
        result = invoke("live", "--source", "photo.png", "--no-window", "--output", "locked/out.png")
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert result.exit_code == 1, result.output
    assert _error_lines(result) == ["error: cannot write --output locked/out.png: permission denied on "
                                    "locked; check its permissions or choose another folder"], result.output
    assert not list((tmp_path / "locked").iterdir())


@pytest.mark.parametrize("code, cause", [(errno.EACCES, "permission denied on out; check its permissions or "
                                                         "choose another folder"),
                                         (errno.EROFS, "out is on a read-only file system; choose another folder"),
                                         (errno.ENOSPC, "the disk holding out is full; free some space")])
def test_a_refused_or_full_folder_is_named_with_what_to_do(code, cause, astronaut, tmp_path, monkeypatch):
    from aidentify import files

    def refuse(folder):
        raise OSError(code, os.strerror(code))

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    cv2.imwrite(str(tmp_path / "photo.png"), astronaut)
    monkeypatch.setattr(files, "probe_write", refuse)
    result = invoke("live", "--source", "photo.png", "--no-window", "--output", "out/annotated.png")
    assert result.exit_code == 1 and len(_error_lines(result)) == 1, result.output
    assert f"error: cannot write --output out/annotated.png: {cause}" in result.output.replace("\n", " ")
    assert "frames in" not in result.output


def _write_video(path, frame, count=3):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (frame.shape[1], frame.shape[0]))
    assert writer.isOpened()
    for _ in range(count):
        writer.write(frame)
    writer.release()
    return path


def test_frames_too_small_for_the_codec_say_so_and_another_container_works(tmp_path, monkeypatch):
    from aidentify.live import encode

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(encode, "h264_available", lambda: False)  # OpenCV's mp4v, what .mp4 falls back to
    _write_video(tmp_path / "dot.avi", np.full((1, 1, 3), 128, np.uint8))
    result = invoke("live", "--source", "dot.avi", "--no-window", "--output", "out.mp4")
    assert result.exit_code == 1, result.output
    assert _error_lines(result) == ["error: cannot write video out.mp4: frames of 1x1 are too small for OpenCV's "
                                    "mp4v encoder (.mp4); try .avi, or a larger input"], result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dot.avi"]  # no partial video left
    assert invoke("live", "--source", "dot.avi", "--no-window", "--output", "out.avi").exit_code == 0
    assert (tmp_path / "out.avi").stat().st_size > 0


def test_a_one_pixel_image_gives_a_one_pixel_annotated_image(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cv2.imwrite(str(tmp_path / "dot.png"), np.full((1, 1, 3), 128, np.uint8))
    result = invoke("live", "--source", "dot.png", "--no-window", "--output", "out.png")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "out.png")).shape == (1, 1, 3)


def test_no_encoder_is_said_only_when_the_codec_is_missing(tmp_path, monkeypatch):
    from aidentify.live import outputs

    monkeypatch.chdir(tmp_path)
    _write_video(tmp_path / "clip.avi", np.zeros((48, 64, 3), np.uint8))
    from aidentify.live import encode

    monkeypatch.setattr(encode, "h264_available", lambda: False)
    monkeypatch.setitem(outputs.FOURCC_BY_SUFFIX, ".mp4", "avc1")  # OpenCV's pip wheels have no H.264 writer
    result = invoke("live", "--source", "clip.avi", "--no-window", "--output", "out.mp4")
    assert result.exit_code == 1, result.output
    assert _error_lines(result) == ["error: cannot write video out.mp4: OpenCV has no avc1 encoder for .mp4 here; "
                                    "try .avi"], result.output


def test_an_image_the_encoder_refuses_is_told_apart_from_a_missing_encoder(tmp_path):
    from aidentify.errors import DataError
    from aidentify.live.outputs import ImageOutput

    huge = np.zeros((8, 20_000, 3), np.uint8)  # WebP stops at 16383 pixels a side
    with pytest.raises(DataError, match=r"OpenCV's \.webp encoder does not take a 20000x8 image"):
        ImageOutput(tmp_path / "wide.webp").write(huge, 30.0)
    assert not list(tmp_path.iterdir())
