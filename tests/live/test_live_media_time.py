"""Media time, not index / fps: a variable-frame-rate video keeps its true frame times in the
timeline and the annotated video, and a finite file behind an http:// URL is read as a file."""

import contextlib
import csv
import functools
import http.server
import struct
import threading

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from aidentify.cli import app
from aidentify.live.capture import open_source
from aidentify.live.outputs import VideoOutput

runner = CliRunner()
TIMES = [0.0, 0.1, 0.5, 0.6, 1.4, 1.5]  # a phone's VFR: a burst, a hold, a long hold
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def gray_frames(n):
    return [np.full((48, 64, 3), 20 + 40 * i, np.uint8) for i in range(n)]


def retime_mp4(data: bytes, times: list[float]) -> bytes:
    """Give an mp4 (moov after mdat, as OpenCV writes it) one sample duration per frame.

    OpenCV writes constant-rate video only; rewriting the time-to-sample table (``stts``) and
    the durations, and dropping the edit list, turns it into a true variable-frame-rate file.
    """
    scale = [0]

    def walk(buf: bytes) -> bytes:
        out, i = b"", 0
        while i < len(buf):
            size, kind = struct.unpack(">I4s", buf[i:i + 8])
            body, i = buf[i + 8:i + size], i + size
            if kind == b"edts":
                continue
            if kind in CONTAINERS:
                body = walk(body)
            elif kind in (b"mvhd", b"mdhd"):  # version 0: timescale at 12, duration at 16
                timescale = struct.unpack(">I", body[12:16])[0]
                end = times[-1] + (times[-1] - times[-2])
                body = body[:16] + struct.pack(">I", round(end * timescale)) + body[20:]
                if kind == b"mdhd":
                    scale[0] = timescale
            elif kind == b"stts":
                ticks = [round(t * scale[0]) for t in times]
                deltas = [b - a for a, b in zip(ticks, ticks[1:])] + [ticks[-1] - ticks[-2]]
                body = body[:4] + struct.pack(">I", len(deltas)) + b"".join(
                    struct.pack(">II", 1, d) for d in deltas)
            out += struct.pack(">I4s", len(body) + 8, kind) + body
        return out

    return walk(data)


def write_vfr(path, times=TIMES):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for frame in gray_frames(len(times)):
        writer.write(frame)
    writer.release()
    path.write_bytes(retime_mp4(path.read_bytes(), times))
    return path


def read_timeline(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def frame_times(rows):
    seen = {}
    for row in rows:
        seen.setdefault(int(row["frame"]), float(row["time_s"]))
    return [seen[i] for i in sorted(seen)]


def decoded_levels(path):
    capture, levels = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        levels.append(int(frame[24, 32].mean()))
    capture.release()
    return levels


def test_a_vfr_video_gets_its_true_frame_times_in_the_timeline(tmp_path):
    video = write_vfr(tmp_path / "phone.mp4")
    timeline = tmp_path / "t.csv"
    result = invoke("live", "--source", video, "--no-window", "--timeline", timeline)
    assert result.exit_code == 0, result.output
    assert frame_times(read_timeline(timeline)) == TIMES  # not 0, 0.25, 0.5, … (index / average fps)


def test_a_vfr_video_is_written_on_its_media_time(tmp_path):
    video = write_vfr(tmp_path / "phone.mp4")
    out = tmp_path / "out.avi"
    result = invoke("live", "--source", video, "--no-window", "--output", out)
    assert result.exit_code == 0, result.output
    fps = len(TIMES) / (TIMES[-1] + 0.1)  # the writer's rate: the file's average, 3.75 frames/s
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS) == pytest.approx(fps, rel=1e-3)
    # slots every 0.267 s: frames 0-3 (0, 0.1, 0.5, 0.6 s) come faster than that and go one a
    # slot, frame 3 is repeated through the hold, frame 4 (1.4 s) lands on its own slot 5
    levels = decoded_levels(out)
    index = [min(range(6), key=lambda i: abs(20 + 40 * i - level)) for level in levels]
    assert index == [0, 1, 2, 3, 3, 4, 5]


def test_the_writer_repeats_held_frames_and_drops_none_in_a_burst(tmp_path):
    out = VideoOutput(tmp_path / "v.avi")
    frames = gray_frames(5)
    for frame, t in zip(frames, [0.0, 0.01, 0.02, 0.3, 0.6]):  # a burst at 10 frames/s, then holds
        out.write(frame, 10.0, time_s=t)
    out.release()
    out.commit()
    levels = decoded_levels(tmp_path / "v.avi")
    index = [min(range(5), key=lambda i: abs(20 + 40 * i - level)) for level in levels]
    assert index == [0, 1, 2, 3, 3, 3, 4]  # burst frames late by a slot or two, then back on time


@contextlib.contextmanager
def http_folder(folder):
    """Serve ``folder`` on 127.0.0.1 and a free port for the length of the block."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_video_file_over_http_is_read_as_a_file_every_frame_with_media_time(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    write_vfr(served / "clip.mp4")
    timeline = tmp_path / "t.csv"
    with http_folder(served) as base:
        url = f"{base}/clip.mp4"
        with open_source(source=url) as source:
            assert not source.live and source.frame_count == len(TIMES)
        result = invoke("live", "--source", url, "--no-window", "--timeline", timeline)
    assert result.exit_code == 0, result.output
    assert f"{len(TIMES)} frames in" in result.output
    assert frame_times(read_timeline(timeline)) == TIMES
