"""`aidentify serve` under load: /api/predict with 1, 4 and 16 concurrent clients, memory, WebSocket frames/s.

Starts the real server (`python -m aidentify serve`, the shipped model, configs/serve.yaml
unless --set says otherwise) on a free localhost port and sends it a 640x480 JPEG of six
real faces (the astronaut and five LFW faces from scikit-image, composed by the demo
video's code). Each client sends its next request when the last one is answered (a
closed loop over one keep-alive connection), so with C clients there are always C
requests in the server. Reports requests/s and p50/p95 latency per client count; the
server's resident memory (VmRSS) after 100 requests and after 2,000 (no growth wanted);
and the WebSocket live view's frames/s with one client sending the demo video's frames
(each sent when the last is answered, as the page does).

    .venv/bin/python benchmarks/serve.py [--requests 300] [--set detect.detector=blazeface ...]

Clients run in this process on the same machine, so they take some of its CPU too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def six_face_jpeg() -> bytes:
    from aidentify.live.demo import demo_frames

    frame = next(iter(demo_frames(faces=6, seconds=1 / 30, fps=30.0, size=(640, 480))))
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def multipart(image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"six.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (the server and its worker processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its workers together, MB."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def start_server(port: int, sets: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "aidentify", "serve", "--port", str(port)]
    for item in sets:
        command += ["--set", item]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stdout.read()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/health")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("server did not start within 120 s")


def load(port: int, body: bytes, content_type: str, clients: int, requests: int) -> dict:
    """``requests`` POSTs from ``clients`` closed-loop clients; latency percentiles and throughput."""
    latencies: list[float] = []
    faces: list[int] = []
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            start = time.perf_counter()
            connection.request("POST", "/api/predict", body, {"Content-Type": content_type})
            response = connection.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if response.status == 200:
                    faces.append(len(json.loads(payload)["faces"]))
                else:
                    errors.append(f"{response.status} {payload[:200]!r}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies or [0.0]) * 1000
    return {"clients": clients, "requests": len(latencies), "rps": len(latencies) / wall,
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "faces": statistics.mean(faces) if faces else 0, "errors": errors[:3], "n_errors": len(errors)}


def websocket_fps(port: int, frames: int) -> dict:
    from websockets.sync.client import connect

    from aidentify.live.demo import demo_frames

    jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
             for f in demo_frames(faces=4, seconds=frames / 30, fps=30.0)]
    found = []
    with connect(f"ws://127.0.0.1:{port}/ws/live", max_size=2**22) as ws:
        for jpeg in jpegs[:10]:  # warm-up
            ws.send(jpeg)
            ws.recv()
        start = time.perf_counter()
        for jpeg in jpegs:
            ws.send(jpeg)
            found.append(len(json.loads(ws.recv())["faces"]))
        wall = time.perf_counter() - start
    return {"frames": len(jpegs), "fps": len(jpegs) / wall, "faces": statistics.mean(found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--memory-requests", type=int, default=2000)
    parser.add_argument("--ws-frames", type=int, default=150)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="server config override")
    args = parser.parse_args()

    port = free_port()
    server = start_server(port, args.sets)
    try:
        body, content_type = multipart(six_face_jpeg())
        load(port, body, content_type, 2, 20)  # warm-up: interpreters for every batch size and image size
        print(f"# aidentify serve on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
              f"--set {' '.join(args.sets) or '(none)'}")
        print("| clients | requests | requests/s | p50 ms | p95 ms | faces found |")
        print("|---:|---:|---:|---:|---:|---:|")
        for clients in args.clients:
            r = load(port, body, content_type, clients, args.requests)
            print(f"| {clients} | {r['requests']} | {r['rps']:.1f} | {r['p50']:.0f} | {r['p95']:.0f} | "
                  f"{r['faces']:.1f} |" + (f" errors: {r['n_errors']} {r['errors']}" if r["n_errors"] else ""))
        sent = 20 + args.requests * len(args.clients)
        load(port, body, content_type, 16, max(0, 100 - sent))
        first = rss_mb(server.pid)
        sent = max(sent, 100)
        r = load(port, body, content_type, 16, max(0, args.memory_requests - sent))
        after = rss_mb(server.pid)
        print(f"\nserver memory: {first:.0f} MB after {sent} requests, {after:.0f} MB after "
              f"{max(sent, args.memory_requests)} ({after - first:+.0f} MB)")
        ws = websocket_fps(port, args.ws_frames)
        print(f"WebSocket live view, one client: {ws['fps']:.1f} frames/s over {ws['frames']} frames "
              f"of the 4-face demo video ({ws['faces']:.1f} faces a frame)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
