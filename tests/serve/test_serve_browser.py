"""End to end: the real `aidentify serve` on a free localhost port, driven by Debian's Chromium, headless.

The page loads, an uploaded photo comes back labelled (numbered labels inside the
canvas, never over each other, where live/layout.py puts them), the MJPEG view of a
`--source` video shows changing frames, and the browser-camera view labels
Chromium's fake camera (fed the demo video as an .mjpeg file). Chromium and
chromedriver come from apt (`apt-get install -y chromium chromium-driver`);
`.ci/run` installs them and sets AIDENTIFY_REQUIRE_CHROMIUM=1, so there a
missing browser fails the test instead of skipping it. Set
AIDENTIFY_SCREENSHOT=PATH to keep the screenshot (docs/serve.png is one).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import time
from pathlib import Path

import cv2
import pytest
from chromium import chromium, require_chromium, requested_urls
from chromium import wait_for as wait_until
from serve_helpers import serve_process, six_face_photo

from aidentify.faces.samples import crowd_photo
from aidentify.live.demo import demo_frames, write_demo_video
from aidentify.live.layout import Rect, label_anchors, place_rects



def get_json(port: int, path: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path)
    return json.loads(connection.getresponse().read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m aidentify serve --source demo.avi` in a subprocess; yields its base URL and port."""
    require_chromium()
    folder = tmp_path_factory.mktemp("serve-e2e")
    video = write_demo_video(folder / "demo.avi", faces=4, seconds=4.0)
    with serve_process(["--source", str(video)], folder) as (port, _):
        yield f"http://127.0.0.1:{port}", port


@pytest.fixture(scope="module")
def fake_camera(tmp_path_factory) -> Path:
    """The demo video as an .mjpeg file (JPEG frames one after another), Chromium's fake camera."""
    path = tmp_path_factory.mktemp("camera") / "camera.mjpeg"
    with open(path, "wb") as out:
        for frame in demo_frames(faces=4, seconds=2.0, fps=15.0):
            out.write(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return path


@pytest.fixture(scope="module")
def browser(server, fake_camera):
    with chromium("--window-size=1280,860", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={fake_camera}") as driver:
        yield driver


def wait_for(driver, script: str, timeout: float = 30.0):
    """Poll a JavaScript expression until it is truthy; return its value (the page's state on timeout)."""
    return wait_until(driver, script, timeout, state="JSON.stringify(window.aidentify)")


def assert_numbered_labels(driver, faces: int) -> None:
    """The photo's labels: one per face, numbered as the face list's rows, inside the canvas, no two
    overlapping, and where the live overlay's layout (live/layout.py) puts rectangles of their sizes."""
    labels = json.loads(driver.find_element("id", "photo-canvas").get_attribute("data-label-rects"))
    answer = driver.execute_script("return window.aidentify.photo.answer")
    width, height = answer["image"]["width"], answer["image"]["height"]
    items = driver.find_elements("css selector", "#photo-faces li")
    assert len(labels) == len(items) == faces and None not in labels
    for number, (label, item, face) in enumerate(zip(labels, items, answer["faces"]), start=1):
        assert label["number"] == number and label["text"].startswith(f"{number}. {face['label']} ")
        assert item.get_attribute("data-label") == face["label"]
    rects = [Rect(*label["rect"]) for label in labels]
    for rect in rects:
        assert rect.inside(width, height), (rect, width, height)
    for i, a in enumerate(rects):
        assert not any(a.overlaps(b) for b in rects[i + 1:]), (a, rects)
    boxes = [tuple(face["box"]) for face in answer["faces"]]
    assert place_rects(boxes, [(r.w, r.h) for r in rects], (width, height), label_anchors) == rects


def test_page_loads_with_the_model_picker(browser, server):
    url, _ = server
    browser.get(url)
    assert browser.title.startswith("AIdentify")
    assert wait_for(browser, "document.querySelectorAll('#model option').length") >= 1
    assert browser.execute_script("return document.getElementById('model').value") == "default"
    assert "ready" in wait_for(browser, "document.getElementById('health').textContent.includes('ready') && "
                                        "document.getElementById('health').textContent")


def test_uploaded_photos_come_back_labelled(browser, server, astronaut_bgr, tmp_path):
    url, _ = server
    browser.get(url)
    wait_for(browser, "document.querySelectorAll('#model option').length")
    upload = browser.find_element("id", "file")
    astronaut = tmp_path / "astronaut.png"
    cv2.imwrite(str(astronaut), astronaut_bgr)
    upload.send_keys(str(astronaut))
    wait_for(browser, "window.aidentify.photo.status === 'done'")
    answer = browser.execute_script("return window.aidentify.photo.answer")
    assert len(answer["faces"]) == 1 and answer["faces"][0]["label"] in answer["classes"]
    canvas = browser.find_element("id", "photo-canvas")
    assert canvas.get_attribute("data-faces") == "1" and canvas.is_displayed()
    assert len(browser.find_elements("css selector", "#photo-bars .bar")) == len(answer["classes"])

    six = tmp_path / "six-faces.jpg"
    cv2.imwrite(str(six), six_face_photo())
    upload.send_keys(str(six))
    wait_for(browser, "window.aidentify.photo.status === 'done' && window.aidentify.photo.answer.faces.length === 6")
    items = browser.find_elements("css selector", "#photo-faces li")
    assert len(items) == 6 and all(item.get_attribute("data-label") in answer["classes"] for item in items)
    # The boxes are drawn: the canvas differs from the photo along the largest face's box.
    box = browser.execute_script("return window.aidentify.photo.answer.faces[0].box")
    drawn = browser.execute_script(
        "const c = document.getElementById('photo-canvas'); const [x, y, w, h] = arguments[0];"
        "return Array.from(c.getContext('2d').getImageData(x, y + Math.floor(h / 2), 1, 1).data)", box)
    original = six_face_photo()[box[1] + box[3] // 2, box[0]][::-1]  # BGR -> RGB
    assert max(abs(int(a) - int(b)) for a, b in zip(drawn[:3], original)) > 40
    assert_numbered_labels(browser, 6)
    screenshot = tmp_path / "serve.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("AIDENTIFY_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["AIDENTIFY_SCREENSHOT"])

    crowd = tmp_path / "crowd.png"  # 20 real faces edge to edge: labels have little room
    cv2.imwrite(str(crowd), crowd_photo((640, 480)))
    upload.send_keys(str(crowd))
    wait_for(browser, "window.aidentify.photo.status === 'done' && window.aidentify.photo.answer.faces.length >= 12")
    assert_numbered_labels(browser, len(browser.execute_script("return window.aidentify.photo.answer.faces")))


def test_stream_view_shows_changing_frames(browser, server):
    url, port = server
    browser.get(url)
    browser.find_element("css selector", "nav [data-view=stream]").click()
    wait_for(browser, "document.getElementById('stream-img').naturalWidth === 640")
    grab = ("const img = document.getElementById('stream-img'); const c = document.createElement('canvas');"
            "c.width = 160; c.height = 120; const g = c.getContext('2d'); g.drawImage(img, 0, 0, 160, 120);"
            "return c.toDataURL('image/png')")
    first = browser.execute_script(grab)
    time.sleep(1.0)
    second = browser.execute_script(grab)
    assert first != second  # the faces move: a new frame replaced the old one
    stream = get_json(port, "/api/health")["stream"]
    assert stream["frames"] >= 5 and stream["viewers"] >= 1 and stream["error"] is None


def test_browser_camera_is_labelled_over_the_websocket(browser, server):
    url, _ = server
    browser.get(url)
    wait_for(browser, "document.querySelectorAll('#model option').length")
    browser.find_element("css selector", "nav [data-view=camera]").click()
    browser.find_element("id", "camera-start").click()
    wait_for(browser, "window.aidentify.camera.frames >= 10")
    camera = browser.execute_script("return window.aidentify.camera")
    assert camera["error"] is None and camera["status"] == "running"
    assert wait_for(browser, "window.aidentify.camera.faces >= 3")  # the fake camera shows four faces
    answer, labels = wait_for(browser, "window.aidentify.camera.labels && window.aidentify.camera.labels.length >= 3 "
                                       "&& [window.aidentify.camera.answer, window.aidentify.camera.labels]")
    rects = [Rect(*label["rect"]) for label in labels if label]
    assert all(rect.inside(answer["image"]["width"], answer["image"]["height"]) for rect in rects)
    assert not any(a.overlaps(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    canvas = browser.find_element("id", "camera-canvas")
    assert int(canvas.get_attribute("data-frames")) >= 10 and canvas.is_displayed()
    assert len(browser.find_elements("css selector", "#camera-bars .bar")) == 8
    browser.find_element("id", "camera-stop").click()
    assert browser.execute_script("return window.aidentify.camera.status") == "off"


def test_api_docs_render_with_no_network(server):
    """/docs (Swagger UI) comes from files in the package: with every outside host unreachable it still
    draws the API's operations, and every request stays on this server."""
    url, _ = server
    with chromium("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", logs=True) as driver:
        driver.get(f"{url}/docs")
        operations = wait_until(driver, "document.querySelectorAll('.opblock-summary-path').length > 0 && "
                                        "Array.from(document.querySelectorAll('.opblock-summary-path'))"
                                        ".map(e => e.textContent)")
        assert any("/api/predict" in path for path in operations)
        urls = requested_urls(driver)
        outside = [u for u in urls if not u.startswith((url, "data:", "blob:"))]
        assert urls and not outside, outside
