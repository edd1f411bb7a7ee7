"""`kill` (SIGTERM) stops `live` the way Ctrl-C does: what was recorded is kept (issue 23, kind 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from live_helpers import count_frames

from aidentify.live.demo import write_demo_video

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_sigterm_keeps_the_recording_and_timeline(tmp_path):
    video = write_demo_video(tmp_path / "long.mp4", faces=1, seconds=30.0, size=(320, 240))
    out, timeline = tmp_path / "out.mp4", tmp_path / "t.csv"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    live = subprocess.Popen([sys.executable, "-m", "aidentify", "live", "--source", str(video), "--no-window",
                             "--output", str(out), "--timeline", str(timeline)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and live.poll() is None:  # wait until frames are being written
            partial = list(tmp_path.glob(".out.partial-*.mp4"))
            if partial and partial[0].stat().st_size > 20_000:
                break
            time.sleep(0.05)
        assert live.poll() is None, live.stdout.read()
        live.send_signal(signal.SIGTERM)
        output, _ = live.communicate(timeout=60)
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == 0, output
    frames = count_frames(out)
    assert 0 < frames < 900
    assert len(timeline.read_text().splitlines()) == frames + 1  # one face per frame, plus the header
    assert not list(tmp_path.glob(".*partial*"))
