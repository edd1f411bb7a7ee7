"""The real `aidentify serve` (uvicorn, its protocol with read deadlines) against raw sockets: stalls, hang-ups, caps.

One server for the module, on a free localhost port, with 2-second head and
body deadlines (`--set limits.head_timeout_s=2 ...`) so each test takes
seconds; the mechanism is the one the default 5-second deadlines use.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import uuid

import cv2
import pytest
from serve_helpers import encode, serve_process, six_face_photo

DEADLINE_S = 2.0
CLOSE_WAIT_S = DEADLINE_S + 6.0  # generous: the test machine is shared; the deadline itself is exact
STALL_KINDS = ("nothing", "half head", "head, no body", "half body")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m aidentify serve` with short deadlines; yields (port, path of its log)."""
    import aidentify

    folder = tmp_path_factory.mktemp("serve-sockets")
    src = os.path.dirname(os.path.dirname(aidentify.__file__))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AIDENTIFY_PROGRESS": "0", "PYTHONPATH": src}
    with serve_process(["--set", "workers=1", "--set", f"limits.head_timeout_s={DEADLINE_S}",
                        "--set", f"limits.body_timeout_s={DEADLINE_S}"], folder, env) as running:
        yield running


def get(port: int, path: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        connection.close()


def form(image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_head(port: int, length: int, content_type: str = "multipart/form-data; boundary=x") -> bytes:
    return (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def stall(port: int, kind: str) -> socket.socket:
    """A socket that sends part of a request, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = post_head(port, 100_000)
    if kind == "half head":
        sock.sendall(head[:30])
    elif kind == "head, no body":
        sock.sendall(head)
    elif kind == "half body":
        sock.sendall(head + b"--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n"
                     + b"\xff\xd8\xff" + bytes(20_000))
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """What the server sent and whether it closed the socket within ``timeout`` seconds."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
        return received, True
    except (TimeoutError, socket.timeout):
        return received, False
    except ConnectionResetError:
        return received, True


@pytest.mark.parametrize("kind", STALL_KINDS)
def test_a_stalled_socket_is_closed_after_the_deadline(server, kind):
    port, _ = server
    sock = stall(port, kind)
    try:
        received, closed = read_until_closed(sock, CLOSE_WAIT_S)
    finally:
        sock.close()
    assert closed, f"{kind}: still open after {CLOSE_WAIT_S} s"
    if kind == "nothing":
        assert received == b""  # nothing asked, nothing answered
    else:
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408") and b"application/json" in head, received[:300]
        assert "not received in time" in json.loads(body)["error"]


def test_health_and_photos_answered_while_100_sockets_stall(server):
    """100 stalled sockets (= limits.max_connections) no longer lock everyone out."""
    port, _ = server
    socks = [stall(port, ("nothing", "half head")[i % 2]) for i in range(100)]
    socks += [stall(port, "head, no body") for _ in range(20)]
    try:
        time.sleep(0.3)  # every stalled request has reached the server
        status, content_type, body = get(port, "/api/health")
        assert status == 200 and content_type == "application/json" and json.loads(body)["status"] == "ready"
        photo, content_type = form(encode(six_face_photo()))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/api/predict", photo, {"Content-Type": content_type})
        response = connection.getresponse()
        assert response.status == 200 and len(json.loads(response.read())["faces"]) == 6
        closed = [read_until_closed(sock, CLOSE_WAIT_S)[1] for sock in socks]
        assert all(closed), f"{closed.count(False)} of {len(socks)} stalled sockets still open"
    finally:
        for sock in socks:
            sock.close()


def test_over_the_cap_is_503_json_and_health_still_answers(server):
    """100 requests in progress (uploads that stalled after their head): the 101st is told, in JSON."""
    port, _ = server
    socks = [stall(port, "head, no body") for _ in range(100)]
    try:
        time.sleep(0.3)
        status, content_type, body = get(port, "/api/models")
        assert status == 503 and content_type == "application/json", body
        assert "limits.max_connections" in json.loads(body)["error"]
        status, content_type, _ = get(port, "/api/health")
        assert status == 200 and content_type == "application/json"
    finally:
        for sock in socks:
            sock.close()


def test_a_malformed_request_is_400_json(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        received, closed = read_until_closed(sock, 10)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head, received[:300]
    assert "malformed HTTP request" in json.loads(body)["error"]


def test_a_client_hanging_up_mid_upload_leaves_no_traceback(server):
    port, log_path = server
    before = log_path.read_text()
    for _ in range(3):
        sock = stall(port, "half body")
        sock.close()  # a phone losing its Wi-Fi mid-upload
    time.sleep(1.0)
    assert get(port, "/api/health")[0] == 200
    added = log_path.read_text()[len(before):]
    assert "Traceback" not in added and len(added.splitlines()) <= 3, added[-3000:]


def test_work_whose_client_left_is_dropped_before_it_runs(server):
    """Eight clients send a large photo and hang up at once: their work is dropped, not queued for the worker."""
    port, _ = server
    frame = cv2.resize(six_face_photo(), (2560, 1920))
    body, content_type = form(encode(frame))
    before = json.loads(get(port, "/api/health")[2])["queue"]
    for _ in range(8):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(post_head(port, len(body), content_type) + body)
    deadline = time.time() + 60
    while True:  # until every one of them is settled (ran, or dropped)
        queue = json.loads(get(port, "/api/health")[2])["queue"]
        if queue["waiting"] == 0 and queue["running"] == 0 or time.time() > deadline:
            break
        time.sleep(0.1)
    dropped = queue["dropped"] - before["dropped"]
    assert dropped >= 6, queue  # at most the one worker's photo and one more may have started
