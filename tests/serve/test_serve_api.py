"""The server's API through FastAPI's test client: real photos, every error status, the WebSocket."""

from __future__ import annotations

import shutil
import tempfile
import time

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from conftest import ASTRONAUT_FACE
from serve_helpers import encode, png_bomb, six_face_photo

from aidentify.config import ServeConfig
from aidentify.inference.modelfile import default_model_path
from aidentify.live.demo import demo_frames
from aidentify.serve.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The app with the shipped model and two more models whose files share a stem (names made unique)."""
    folder = tmp_path_factory.mktemp("models")
    for sub in ("a", "b"):
        (folder / sub).mkdir()
        shutil.copy(default_model_path(), folder / sub / "mine.tflite")
    config = ServeConfig(models=[folder / "a" / "mine.tflite", folder / "b" / "mine.tflite"], workers=1)
    with TestClient(create_app(config)) as test_client:
        yield test_client


def predict(client, data: bytes, name: str = "photo.jpg", model: str | None = None):
    return client.post("/api/predict", files={"image": (name, data, "application/octet-stream")},
                       data={"model": model} if model else None)


def assert_still_serving(client):
    response = predict(client, encode(six_face_photo()))
    assert response.status_code == 200 and len(response.json()["faces"]) == 6


def test_astronaut_one_face_labelled_in_image_pixels(client, astronaut_bgr):
    response = predict(client, encode(astronaut_bgr))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == "default" and answer["image"] == {"width": 512, "height": 512}
    assert answer["classes"][:2] == ["neutral", "happiness"] and len(answer["classes"]) == 8
    [face] = answer["faces"]
    x, y, w, h = face["box"]
    fx, fy, fw, fh = ASTRONAUT_FACE
    assert abs((x + w / 2) - (fx + fw / 2)) < 25 and abs((y + h / 2) - (fy + fh / 2)) < 25
    assert face["label"] in answer["classes"]
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=2e-3)
    assert face["confidence"] == max(face["probabilities"].values())
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert {"decode", "detect", "classify", "total"} <= set(answer["timings_ms"])


def test_six_face_photo_all_found_largest_first(client):
    answer = predict(client, encode(six_face_photo())).json()
    boxes = [face["box"] for face in answer["faces"]]
    assert len(boxes) == 6
    areas = [w * h for _, _, w, h in boxes]
    assert areas == sorted(areas, reverse=True)
    assert all(0 <= x and 0 <= y and x + w <= 640 and y + h <= 480 for x, y, w, h in boxes)


@pytest.mark.parametrize("ext", [".png", ".webp", ".bmp"])
def test_png_webp_and_bmp_are_read_like_jpeg(client, astronaut_bgr, ext):
    response = predict(client, encode(astronaut_bgr, ext), name=f"photo{ext}")
    assert response.status_code == 200, response.text
    assert len(response.json()["faces"]) == 1


def test_models_default_first_then_each_model_by_a_unique_name(client):
    models = client.get("/api/models").json()["models"]
    assert [m["name"] for m in models] == ["default", "mine", "mine-2"]
    default = models[0]
    assert default["input_size"] == 64 and default["classes"][0] == "neutral"
    assert default["accuracy"]["dataset"] == "FER+ Valid" and 0.8 < default["accuracy"]["accuracy"] < 0.9
    assert "path" not in str(models)  # a client never sees, nor sends, a file path
    response = predict(client, encode(six_face_photo()), model="mine-2")
    assert response.status_code == 200 and response.json()["model"] == "mine-2"


def test_health_says_ready_and_what_is_loaded(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ready" and health["detector"] == "mtcnn"
    assert health["models"] == ["default", "mine", "mine-2"] and health["stream"] is None


def test_text_file_named_jpg_is_415(client):
    response = predict(client, b"just some text, not a photo\n" * 20, name="photo.jpg")
    assert response.status_code == 415
    assert "JPEG" in response.json()["error"]
    assert_still_serving(client)


def test_png_bomb_is_refused_from_its_header_before_decoding(client):
    bomb = png_bomb(20000)
    assert len(bomb) < 100_000
    start = time.perf_counter()
    response = predict(client, bomb, name="bomb.png")
    assert response.status_code == 413
    assert "400 MP" in response.json()["error"] and "before decoding" in response.json()["error"]
    assert time.perf_counter() - start < 2.0  # decoding 400 MP would take far longer (and 400 MB)
    assert_still_serving(client)


def test_pixel_limit_below_pillows_own(client):
    big = np.zeros((8000, 8000), np.uint8)  # 64 MP: over our 50 MP limit, under Pillow's bomb threshold
    response = predict(client, encode(big, ".png"), name="big.png")
    assert response.status_code == 413 and "8000x8000" in response.json()["error"]


def test_upload_over_10_mb_is_413(client):
    response = predict(client, b"\xff\xd8\xff" + b"\0" * (10 * 2**20), name="huge.jpg")
    assert response.status_code == 413 and "limit of 10 MB" in response.json()["error"]
    response = client.post("/api/predict", content=b"\0" * (11 * 2**20),  # refused on Content-Length alone
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413 and "limit of 10 MB" in response.json()["error"]
    assert_still_serving(client)


@pytest.mark.parametrize("data", [b"\xff\xd8\xff\xe0" + b"\x13" * 500, "damaged png"], ids=["jpeg", "png"])
def test_damaged_image_is_400(client, astronaut_bgr, data):
    if data == "damaged png":
        png = bytearray(encode(astronaut_bgr, ".png"))
        start = png.index(b"IDAT") + 4
        png[start:start + 2000] = bytes(2000)  # the pixel data wiped: header fine, decoding fails
        data = bytes(png)
    response = predict(client, data, name="broken")
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert_still_serving(client)


def test_unknown_model_is_404(client, astronaut_bgr):
    response = predict(client, encode(astronaut_bgr), model="../../etc/passwd")
    assert response.status_code == 404 and "GET /api/models" in response.json()["error"]


def test_missing_image_field_is_422(client):
    response = client.post("/api/predict", files={"photo": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")})
    assert response.status_code == 422 and "image" in response.json()["error"]
    response = client.post("/api/predict", json={"image": "aGVsbG8="})
    assert response.status_code == 422 and "image" in response.json()["error"]
    assert_still_serving(client)


def test_empty_image_is_400_and_unknown_routes_answer_json(client):
    assert predict(client, b"").status_code == 400
    response = client.get("/api/nothing")
    assert response.status_code == 404 and "error" in response.json()
    response = client.get("/api/predict")
    assert response.status_code == 405 and "error" in response.json()


def test_uploads_never_touch_the_disk(client, monkeypatch, astronaut_bgr):
    def refuse(*args, **kwargs):
        raise AssertionError("an upload was about to be written to a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    padded = encode(astronaut_bgr, ".bmp")  # 768 KB; plus a 5 MB text field-sized file part
    assert predict(client, padded, name="a.bmp").status_code == 200
    big = encode(cv2.resize(astronaut_bgr, (1400, 1400)), ".bmp")
    assert len(big) > 5_000_000
    assert predict(client, big, name="big.bmp").status_code == 200


def test_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "http" not in page.text.split("<body")[0]
    for path in ("/static/app.js", "/static/style.css"):
        response = client.get(path)
        assert response.status_code == 200 and "https://" not in response.text  # no CDN: works offline
    assert client.get("/stream.mjpg").status_code == 404
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]


def test_websocket_tracks_faces_per_connection(client):
    frames = [encode(f) for f in demo_frames(faces=4, seconds=0.3, fps=30.0)]
    with client.websocket_connect("/ws/live") as socket:
        answers = []
        for frame in frames:
            socket.send_bytes(frame)
            answers.append(socket.receive_json())
        socket.send_bytes(b"not a frame")
        assert "error" in socket.receive_json()
        socket.send_bytes(frames[0])  # the connection stays open after a bad frame
        assert socket.receive_json()["index"] == len(frames)
    assert [a["index"] for a in answers] == list(range(len(frames)))
    assert all(len(a["faces"]) == 4 for a in answers)
    tracks = [sorted(f["track"] for f in a["faces"]) for a in answers]
    assert all(t == tracks[0] for t in tracks)  # the same four faces keep their ids
    with client.websocket_connect("/ws/live?model=mine") as socket:  # a new connection: its own tracker
        socket.send_bytes(frames[0])
        answer = socket.receive_json()
    assert answer["index"] == 0 and answer["model"] == "mine"
    assert sorted(f["track"] for f in answer["faces"]) == tracks[0]


def test_websocket_unknown_model_is_refused(client):
    with client.websocket_connect("/ws/live?model=nope") as socket:
        assert "unknown model" in socket.receive_json()["error"]


# ------------------------------------------------------------------ issue 36: messages, queue, names, camera size
def test_image_sent_as_a_text_field_is_named_as_such(client, astronaut_bgr):
    """`curl -F image=<a.jpg` sends the file as a text field (no filename): say so, not "over 1024 bytes"."""
    body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n" + encode(astronaut_bgr)
            + b"\r\n--b--\r\n")  # what curl sends for -F image=<a.jpg
    response = client.post("/api/predict", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "not as a file" in error and "filename" in error and "1024" not in error, error


def test_form_cut_off_before_its_closing_boundary_says_so(client, astronaut_bgr):
    body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n\r\n"
            + encode(astronaut_bgr))  # no closing --b--
    response = client.post("/api/predict", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "closing boundary" in error and "cut off" in error and "missing field" not in error, error


@pytest.mark.parametrize("data", [b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01"])
def test_bare_jpeg_header_message_names_the_cause_not_a_python_object(client, data):
    response = predict(client, data, name="a.jpg")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "object at 0x" not in error and "BytesIO" not in error, error
    assert "JPEG" in error and "cut off" in error and f"{len(data)} bytes" in error, error


def test_a_new_camera_frame_size_starts_the_tracks_again(client):
    """640x480 then 1280x720 (a phone turned): the first larger frame's boxes are found in its own pixels."""
    small = [encode(f) for f in demo_frames(faces=4, seconds=5 / 30, fps=30.0, size=(640, 480))]
    large = [encode(cv2.resize(f, (1280, 720))) for f in demo_frames(faces=4, seconds=2 / 30, fps=30.0,
                                                                    size=(640, 480))]
    with client.websocket_connect("/ws/live") as socket:
        answers = []
        for frame in small[:4] + large[:1]:  # frame 4 is not a detector frame (every 3): it used to be followed
            socket.send_bytes(frame)
            answers.append(socket.receive_json())
    before, after = answers[3], answers[4]
    assert after["image"] == {"width": 1280, "height": 720} and len(after["faces"]) == 4
    expected = sorted((x * 2, y * 1.5, w * 2, h * 1.5) for x, y, w, h in (f["box"] for f in before["faces"]))
    found = sorted(tuple(f["box"]) for f in after["faces"])
    for (x, y, w, h), (ex, ey, ew, eh) in zip(found, expected):
        assert abs((x + w / 2) - (ex + ew / 2)) < 0.25 * ew and abs((y + h / 2) - (ey + eh / 2)) < 0.25 * eh, (found, expected)


def test_unicode_model_names_are_kept(tmp_path):
    from aidentify.serve.service import model_names

    paths = []
    for stem in ("модель", "顔", "glück 😀", "glu\u0308ck 😀", "a/b?c#d"):  # the 4th: the 3rd as macOS stores it (NFD)
        folder = tmp_path / str(len(paths))
        folder.mkdir()
        paths.append(folder / f"{stem.replace('/', '_')}.tflite")
        shutil.copy(default_model_path(), paths[-1])
    names = list(model_names(paths))
    assert names == ["default", "модель", "顔", "glück-😀", "glück-😀-2", "a_b-c-d"]


def test_queued_work_is_dropped_when_cancelled_and_refused_after_its_deadline(client):
    """One worker, busy for 1 s: five waiting calls cancelled never run; one more waits 0.2 s and gets 503."""
    import asyncio
    import os

    from aidentify.serve.errors import ApiError

    pool = client.app.state.service.pool
    assert pool.size == 1

    async def scenario():
        before = dict(pool.queue)
        busy = asyncio.ensure_future(pool.run(time.sleep, 1.0))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(pool.run(os.getpid)) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert pool.queue["waiting"] == 5 and pool.queue["running"] == 1
        for task in waiting:
            task.cancel()
        refused = None
        try:
            await pool.run(os.getpid, queue_timeout=0.2)
        except ApiError as exc:
            refused = exc
        await busy
        return before, dict(pool.queue), refused

    before, after, refused = client.portal.call(scenario)
    assert refused is not None and refused.status == 503 and "queue_timeout_s" in refused.message
    assert after["dropped"] - before["dropped"] == 5 and after["refused"] - before["refused"] == 1
    assert after["waiting"] == 0
    assert_still_serving(client)
