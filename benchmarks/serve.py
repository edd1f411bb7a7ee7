"""`aidentify serve` under load: /api/predict with 1, 4 and 16 concurrent clients, memory, WebSocket frames/s.

Starts the real server (`python -m aidentify serve`, the shipped model, configs/serve.yaml
unless --set says otherwise) on a free localhost port and sends it a 640x480 JPEG of six
real faces (the astronaut and five LFW faces from scikit-image, composed by the demo
video's code). Each client sends its next request when the last one is answered (a
closed loop over one keep-alive connection), so with C clients there are always C
requests in the server. Reports requests/s and p50/p95 latency per client count; the
16 clients again beside 100 stalled sockets (sending nothing, half a request head, or a
head and no body; each one the server closes is opened again at once), with how long the
server took to close them and how fast /api/health answered beside them; the
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


STALL_KINDS = ("nothing", "half a head", "a head, no body")


class Stallers:
    """``count`` sockets kept stalled beside the load, as a slowloris client or dropped phones would.

    A third send nothing, a third half a request head, a third a whole head of a
    100 KB upload and then nothing. Each socket the server closes is replaced at
    once, so ``count`` stay open the whole time; ``closed_after`` records how long
    the server took to close each one, by kind (seconds).
    """

    def __init__(self, port: int, count: int):
        self.port, self.count = port, count
        self.closed_after: dict[str, list[float]] = {kind: [] for kind in STALL_KINDS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, kind: str) -> tuple[socket.socket, str, float]:
        sock = socket.create_connection(("127.0.0.1", self.port))
        head = ("POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                "boundary=x\r\nContent-Length: 100000\r\n\r\n").encode()
        if kind == "half a head":
            sock.sendall(head[:30])
        elif kind == "a head, no body":
            sock.sendall(head)
        sock.setblocking(False)
        return sock, kind, time.perf_counter()

    def _run(self) -> None:
        import selectors

        selector = selectors.DefaultSelector()
        for i in range(self.count):
            sock, kind, opened = self._open(STALL_KINDS[i % len(STALL_KINDS)])
            selector.register(sock, selectors.EVENT_READ, (kind, opened))
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                sock, (kind, opened) = key.fileobj, key.data
                try:
                    if sock.recv(65536):
                        continue  # the 408 answer; the close follows
                except OSError:
                    pass
                self.closed_after[kind].append(time.perf_counter() - opened)
                selector.unregister(sock)
                sock.close()
                new, kind, opened = self._open(kind)
                selector.register(new, selectors.EVENT_READ, (kind, opened))
        for key in list(selector.get_map().values()):
            key.fileobj.close()

    def __enter__(self) -> "Stallers":
        self._thread.start()
        time.sleep(0.5)  # all of them open before the load starts
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        parts = []
        for kind, times in self.closed_after.items():
            if times:
                parts.append(f"{kind}: {len(times)} closed, after {statistics.median(times):.2f} s (median)")
            else:
                parts.append(f"{kind}: none closed")
        return "; ".join(parts)


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
    parser.add_argument("--stalled", type=int, default=100,
                        help="stalled sockets kept open beside a second 16-client run (0: none)")
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
        if args.stalled:
            with Stallers(port, args.stalled) as stallers:
                r = load(port, body, content_type, 16, args.requests)
                health = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                start = time.perf_counter()
                health.request("GET", "/api/health")
                status = health.getresponse().status
                health_ms = (time.perf_counter() - start) * 1000
            print(f"| 16, beside {args.stalled} stalled sockets | {r['requests']} | {r['rps']:.1f} | {r['p50']:.0f} | "
                  f"{r['p95']:.0f} | {r['faces']:.1f} |" + (f" errors: {r['n_errors']} {r['errors']}"
                                                           if r["n_errors"] else ""))
            print(f"\nstalled sockets (kept at {args.stalled}, each one the server closed replaced at once): "
                  f"{stallers.summary()}; /api/health beside them: {status} in {health_ms:.0f} ms")
        sent = 20 + args.requests * (len(args.clients) + bool(args.stalled))
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
