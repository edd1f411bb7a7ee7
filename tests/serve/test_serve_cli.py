"""The `serve` command: its errors are one line, 0.0.0.0 is warned about, and it never imports TensorFlow."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from typer.testing import CliRunner

from aidentify.cli import app

runner = CliRunner()


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_lists_the_options():
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--model", "--camera", "--source", "--set"):
        assert option in result.output


def test_missing_model_and_source_fail_in_one_line(workdir):
    one_line_error(runner.invoke(app, ["serve", "--port", "0", "--model", "nope.tflite"]), "nope.tflite")
    one_line_error(runner.invoke(app, ["serve", "--port", "0", "--camera", "0", "--source", "x.mp4"]), "not both")


def test_any_address_is_warned_about_and_a_busy_port_is_one_line(workdir):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", str(port)])
    assert "warning" in result.stderr and "anyone" in result.stderr
    one_line_error(result, f"port {port}", "in use")


def test_serving_never_imports_tensorflow(tmp_path):
    """The server process and its workers, through a photo, a WebSocket session and a stream."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path

        HEAVY = ("tensorflow", "keras", "kaggle")

        def heavy_modules():
            return sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)

        if __name__ == "__main__":
            import cv2
            from fastapi.testclient import TestClient
            from aidentify.config import ServeConfig
            from aidentify.live.demo import demo_frames, write_demo_video
            from aidentify.serve.app import create_app

            video = write_demo_video(Path({str(tmp_path)!r}) / "demo.avi", faces=2, seconds=1.0)
            frame = cv2.imencode(".jpg", next(iter(demo_frames(faces=2, seconds=0.1))))[1].tobytes()
            app = create_app(ServeConfig(source=str(video), workers=1))
            with TestClient(app) as client:
                assert client.post("/api/predict", files={{"image": ("a.jpg", frame)}}).status_code == 200
                with client.websocket_connect("/ws/live") as ws:
                    ws.send_bytes(frame)
                    assert len(ws.receive_json()["faces"]) == 2
                workers = app.state.service.pool.call(heavy_modules)
            print("HEAVY", heavy_modules(), workers)
    """)
    path = tmp_path / "check_serve.py"  # a file, so that the worker processes can import heavy_modules
    path.write_text(script)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY [] []" in out.stdout, out.stdout[-1000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_stop_the_server_the_same_way(signum, tmp_path):
    import aidentify

    src = os.path.dirname(os.path.dirname(aidentify.__file__))  # this checkout's package, from any folder
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AIDENTIFY_PROGRESS": "0", "PYTHONPATH": src}
    server = subprocess.Popen([sys.executable, "-m", "aidentify", "serve", "--port", "0", "--set", "workers=1"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in server.stdout:
            seen.append(line)
            if "serving on" in line:
                break
        assert any("serving on" in line for line in seen), "".join(seen) + server.stderr.read()
        time.sleep(0.5)
        server.send_signal(signum)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, err[-2000:]
    assert out.strip().splitlines()[-1] == "server stopped", out
    assert "Traceback" not in err, err[-2000:]


def test_a_model_only_the_worker_can_refuse_is_the_same_one_line_as_live(tmp_path):
    """Metadata that reads fine (input_size 48) on a 64 px network: LiteRT refuses it when a worker loads it."""
    import aidentify
    from aidentify.inference.modelfile import default_model_path, embed_tflite_metadata, read_tflite_metadata

    flatbuffer = default_model_path().read_bytes()
    metadata = {**read_tflite_metadata(flatbuffer), "input_size": 48}
    (tmp_path / "bad.tflite").write_bytes(embed_tflite_metadata(flatbuffer, metadata))
    src = os.path.dirname(os.path.dirname(aidentify.__file__))
    env = {**os.environ, "AIDENTIFY_PROGRESS": "0", "PYTHONPATH": src, "COLUMNS": "400"}

    def error_lines(*args):
        out = subprocess.run([sys.executable, "-m", "aidentify", *args], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
        assert out.returncode == 1, out.stderr[-2000:]
        return [line for line in out.stderr.splitlines() if line.strip()]

    live = error_lines("live", "--model", "bad.tflite", "--source", "none.mp4", "--no-window")
    serve = error_lines("serve", "--port", "0", "--model", "bad.tflite", "--set", "workers=1")
    assert len(serve) == 1 and serve[0].startswith("error: ") and "does not match its metadata" in serve[0], serve
    assert serve == live
