"""The BlazeFace backend: anchors, decoding, window mapping, tiling, and real photos.

Real photos are scikit-image's: ``astronaut`` (one face, its box marked by hand
on a 4x enlargement: brows-to-chin, cheek to cheek), ``lfw_subset`` (25 x 25
face crops from Labeled Faces in the Wild), and faceless ``coffee``, ``chelsea``
(a cat) and ``rocket``. Composites paste real faces onto a real background.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import conftest

from aidentify.errors import DataError
from aidentify.faces import blazeface as bf
from aidentify.faces.boxes import iou_matrix, weighted_nms

data = pytest.importorskip("skimage.data")

ASTRONAUT_FACE = np.array(conftest.ASTRONAUT_FACE)
ASTRONAUT_HEAD = (138, 30, 176, 190)  # (x, y, w, h): the face with hair and neck, for pasting


def settings(**overrides):
    values = dict(model="full_range", score=0.5, iou=0.3, tiles=True, threads=2)
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def detector() -> bf.BlazeFaceDetector:
    return bf.BlazeFaceDetector(settings(), min_face=20)


def paste_astronaut(image: np.ndarray, astronaut: np.ndarray, x: int, y: int, face_width: float) -> np.ndarray:
    """Paste the astronaut's head so that her face is ``face_width`` px wide; returns the face box."""
    scale = face_width / ASTRONAUT_FACE[2]
    hx, hy, hw, hh = ASTRONAUT_HEAD
    head = cv2.resize(astronaut[hy:hy + hh, hx:hx + hw], (round(hw * scale), round(hh * scale)),
                      interpolation=cv2.INTER_AREA)
    image[y:y + head.shape[0], x:x + head.shape[1]] = head
    return np.array([x + (ASTRONAUT_FACE[0] - hx) * scale, y + (ASTRONAUT_FACE[1] - hy) * scale,
                     ASTRONAUT_FACE[2] * scale, ASTRONAUT_FACE[3] * scale])


def paste_lfw(image: np.ndarray, index: int, x: int, y: int, size: int) -> np.ndarray:
    """Paste LFW face ``index`` (a tight 25 px crop) enlarged to ``size`` px; returns its box."""
    face = (data.lfw_subset()[index] * 255).astype(np.uint8)
    image[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)[..., None]
    return np.array([x, y, size, size], dtype=np.float64)


def coffee(width: int, height: int) -> np.ndarray:
    """scikit-image's coffee photo (faceless), BGR, resized to ``width`` x ``height``."""
    image = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)


# ----------------------------------------------------------------- pure parts
def test_anchors_are_the_centres_of_a_48_by_48_grid_row_major():
    anchors = bf.make_anchors()
    assert anchors.shape == (2304, 2)
    assert anchors[0].tolist() == [2.0, 2.0]
    assert anchors[1].tolist() == [6.0, 2.0]  # x runs fastest
    assert anchors[48].tolist() == [2.0, 6.0]
    assert anchors[-1].tolist() == [190.0, 190.0]


def test_decode_turns_a_regressor_row_into_a_box_and_keypoints():
    row = np.zeros(16)
    row[:4] = [3.0, -4.0, 20.0, 24.0]  # centre offset, width, height (input px)
    row[4:] = np.arange(12) - 6.0  # keypoints, offsets from the anchor
    boxes, points = bf.decode(row[None], np.array([[50.0, 70.0]]))
    np.testing.assert_allclose(boxes, [[43.0, 54.0, 20.0, 24.0]])
    np.testing.assert_allclose(points[0], np.arange(12).reshape(6, 2) - 6.0 + [50.0, 70.0])


def test_sigmoid_is_a_probability_even_for_extreme_logits():
    scores = bf.sigmoid(np.array([0.0, np.log(3.0), -1e4, 1e4]))
    np.testing.assert_allclose(scores[:2], [0.5, 0.75])
    assert 0.0 < scores[2] < 1e-30 and scores[3] == pytest.approx(1.0)


def test_whole_image_window_round_trips_pixels_through_the_letterbox():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:90, 120:180] = 255  # a 60 x 40 white block
    window = bf.whole_image_window(200, 300)
    assert (window.x, window.y, window.side) == (0, -50, 300)
    net = bf.crop_window(image, window)
    ys, xs = np.nonzero(net[..., 0] > 127)
    corners = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.max() + 1]], dtype=np.float64)
    np.testing.assert_allclose(window.mapping().to_image(corners), [[120, 50], [180, 90]], atol=1.6)
    assert net[:30].max() == 0 and net[-30:].max() == 0  # letterbox bars above and below


def test_a_window_past_the_image_is_padded_black_and_maps_back():
    image = np.full((100, 100, 3), 200, np.uint8)
    window = bf.Window(-50, 50, 100)  # left half outside, bottom half outside
    net = bf.crop_window(image, window)
    assert net[:96, :96].max() == 0 and net[:96, 96:].min() == 200 and net[96:].max() == 0
    mapping = window.mapping()
    np.testing.assert_allclose(mapping.to_image(np.array([96.0, 0.0])), [0.0, 50.0])


def test_weighted_nms_averages_one_face_seen_twice_and_keeps_another():
    boxes = np.array([[10, 10, 40, 40], [14, 12, 40, 40], [200, 200, 30, 30]], dtype=np.float64)
    scores = np.array([0.9, 0.6, 0.7])
    points = np.stack([np.full((6, 2), 1.0), np.full((6, 2), 2.0), np.full((6, 2), 9.0)])
    merged, merged_scores, merged_points = weighted_nms(boxes, scores, 0.3, points)
    np.testing.assert_allclose(merged[0], [11.6, 10.8, 40, 40])  # 0.6 and 0.4 of each
    np.testing.assert_allclose(merged_scores, [0.9, 0.7])
    np.testing.assert_allclose(merged_points[0], 1.4)
    np.testing.assert_allclose(merged[1], boxes[2])


def test_no_tiles_when_the_whole_pass_already_sees_min_face():
    assert len(bf.plan_windows(480, 640, 160)) == 1
    assert len(bf.plan_windows(768, 1024, 20, tiles=False)) == 1


def test_tile_count_follows_image_size_over_min_face():
    small = bf.plan_windows(768, 1024, 40)
    fine = bf.plan_windows(768, 1024, 20)
    finer = bf.plan_windows(768, 1024, 10)
    assert 1 < len(small) < len(fine) < len(finer)
    assert min(w.side for w in fine) == 240  # 20 px faces become 16 input px
    assert len({w.side for w in finer}) == 3  # whole image + two tile levels


@pytest.mark.parametrize("min_face", [10, 20, 40])
def test_every_face_from_min_face_up_is_whole_in_a_window_that_sees_it(min_face):
    """The promise of plan_windows: each face from min_face px up to a third of the
    image lies whole (clear of inner edges) in some window where it measures 14.5..70.4
    input px (the whole-image pass is the coarsest: larger faces are found less often)."""
    height, width = 768, 1024
    windows = bf.plan_windows(height, width, min_face)
    rng = np.random.default_rng(min_face)
    largest = 70.4 * width / bf.INPUT_SIZE
    for _ in range(300):
        side = min_face * np.exp(rng.uniform(0, np.log(largest / min_face)))
        x, y = rng.uniform(0, width - side), rng.uniform(0, height - side)
        seen = False
        for window in windows:
            scale = bf.INPUT_SIZE / window.side
            box = np.array([[(x - window.x) * scale, (y - window.y) * scale, side * scale, side * scale]])
            inside = (box[0, :2] >= 0).all() and (box[0, :2] + box[0, 2:] <= bf.INPUT_SIZE).all()
            if inside and not bf.cut_by_edge(box, window)[0] and 14.5 <= side * scale <= 70.4 + 1e-9:
                seen = True
                break
        assert seen, (x, y, side)


def test_cut_by_edge_flags_only_inner_edges():
    window = bf.Window(100, 0, 300, inner=(True, False, False, True))
    boxes = np.array([[0.5, 50, 30, 30],   # at the left edge: inner, cut
                      [50, 0.0, 30, 30],   # at the top edge: image border, whole
                      [170, 50, 22, 30],   # at the right edge: image border, whole
                      [50, 170, 30, 21],   # at the bottom edge: inner, cut
                      [50, 50, 30, 30]])
    assert bf.cut_by_edge(boxes, window).tolist() == [True, False, False, True, False]


def test_inputs_are_rgb_in_minus_one_to_one():
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 0] = 255  # pure blue in OpenCV's order
    assert bf.as_rgb(bgr)[0, 0].tolist() == [0, 0, 255]
    assert bf.as_rgb(np.full((4, 4), 7, np.uint8)).shape == (4, 4, 3)
    np.testing.assert_allclose(bf.to_network_range(np.array([0, 255], np.uint8)), [-1.0, 1.0])


def test_missing_model_file_says_to_reinstall(monkeypatch):
    monkeypatch.setitem(bf.MODEL_FILES, "full_range", "no_such_model.tflite")
    with pytest.raises(DataError, match="no_such_model.tflite is missing.*reinstall aidentify"):
        bf.BlazeFaceDetector(settings(), 20)


def test_images_of_other_types_are_refused(detector):
    with pytest.raises(DataError, match="uint8"):
        detector.detect(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(DataError, match="uint8"):
        detector.detect(np.zeros((50, 50, 4), np.uint8))


def test_a_batch_gives_what_each_input_gives_alone(detector, astronaut):
    inputs = np.stack([cv2.resize(astronaut, (192, 192)), np.zeros((192, 192, 3), np.uint8),
                       cv2.resize(coffee(600, 400), (192, 192))])
    regressors, logits = detector.model(inputs)
    assert regressors.shape == (3, 2304, 16) and logits.shape == (3, 2304)
    for i in range(3):
        one_regressors, one_logits = detector.model(inputs[i:i + 1])
        np.testing.assert_allclose(one_logits[0], logits[i], atol=1e-4)
        np.testing.assert_allclose(one_regressors[0], regressors[i], atol=1e-3)


def test_the_factory_builds_this_backend():
    from aidentify.config import FaceDetectorSettings
    from aidentify.faces.detector import make_detector

    found = make_detector(FaceDetectorSettings(detector="blazeface"))
    assert found.name == "blazeface"


# --------------------------------------------------------------- real photos
def test_astronaut_face_is_found_with_her_eyes_inside_it(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1 and faces.keypoints.shape == (1, 6, 2)
    assert iou_matrix(faces.boxes, ASTRONAUT_FACE[None])[0, 0] >= 0.5
    assert faces.scores[0] > 0.8
    x, y, w, h = ASTRONAUT_FACE
    right_eye, left_eye = faces.keypoints[0, 0], faces.keypoints[0, 1]
    for eye in (right_eye, left_eye):
        assert x < eye[0] < x + w and y < eye[1] < y + h / 2  # eyes in the upper half
    assert right_eye[0] < left_eye[0]  # her right eye is on the image's left


def test_grayscale_input_finds_the_same_face(detector, astronaut):
    gray = detector.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    colour = detector.detect(astronaut)
    assert len(gray) == 1 and iou_matrix(gray.boxes, colour.boxes)[0, 0] > 0.8


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_faceless_photos_give_no_face(detector, name):
    image = cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)
    assert len(detector.detect(image)) == 0


def test_every_pasted_face_is_found_and_nothing_else(astronaut):
    image = coffee(900, 600)
    truth = [paste_astronaut(image, astronaut, x, y, width)
             for x, y, width in [(20, 20, 40), (130, 40, 60), (280, 30, 90), (590, 20, 150)]]
    truth += [paste_lfw(image, index, x, y, size)
              for index, x, y, size in [(0, 60, 400, 100), (1, 260, 430, 120), (2, 470, 420, 90)]]
    faces = bf.BlazeFaceDetector(settings(), min_face=32).detect(image)  # smallest face: 40 px
    overlaps = iou_matrix(np.array(truth), faces.boxes)
    assert len(faces) == len(truth)
    assert (overlaps.max(axis=1) >= 0.5).all()  # every face found
    assert (overlaps.max(axis=0) >= 0.5).all()  # no false or duplicate face


def test_a_small_face_in_a_large_frame_needs_the_tiles(astronaut):
    image = coffee(1600, 1067)
    truth = paste_astronaut(image, astronaut, 1000, 300, 40)  # 40 px: 4.8 input px in one pass
    one_pass = bf.BlazeFaceDetector(settings(tiles=False), min_face=32).detect(image)
    tiled = bf.BlazeFaceDetector(settings(tiles=True), min_face=32).detect(image)
    assert len(one_pass) == 0
    assert len(tiled) == 1 and iou_matrix(tiled.boxes, truth[None])[0, 0] >= 0.5


def test_detect_regions_maps_zoomed_passes_back_to_the_image(detector, astronaut):
    image = coffee(640, 480)
    truth = paste_astronaut(image, astronaut, 400, 200, 60)
    x, y, w, h = truth
    side = 4 * w
    regions = np.array([[x + w / 2 - side / 2, y + h / 2 - side / 2, side],  # around the face
                        [20, 20, side]])  # an empty corner
    faces = detector.detect_regions(image, regions)
    assert len(faces) == 1 and iou_matrix(faces.boxes, truth[None])[0, 0] >= 0.5
    assert x < faces.keypoints[0, 0, 0] < x + w and y < faces.keypoints[0, 0, 1] < y + h


def test_detect_regions_drops_a_face_cut_by_an_inner_region_edge(detector, astronaut):
    image = coffee(640, 480)
    x, y, w, h = paste_astronaut(image, astronaut, 300, 150, 80)
    whole = np.array([[x + w / 2 - 120, y + h / 2 - 120, 240]])
    cut = np.array([[x + 0.8 * w - 240, y + h / 2 - 120, 240]])  # a fifth of the face past its right edge
    _, logits = detector.model(bf.crop_window(bf.as_rgb(image), bf.region_window(cut[0], 480, 640))[None])
    assert bf.sigmoid(logits).max() >= 0.5  # the network does fire on the cut face...
    assert len(detector.detect_regions(image, cut)) == 0  # ...and the edge rule drops it
    assert len(detector.detect_regions(image, whole)) == 1
    assert len(detector.detect_regions(image, np.zeros((0, 3)))) == 0
