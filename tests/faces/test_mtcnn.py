"""The MTCNN backend on LiteRT against the mtcnn package it is converted from, on real photos.

The networks are the shipped ``.tflite`` files (assets/detectors/mtcnn). The
package's own TensorFlow pipeline (``mtcnn.MTCNN().detect_faces``) is the
reference for boxes and scores; a hand-marked box checks we find the face and
not just the package's answer. Photos: scikit-image's astronaut (one face),
a group photo made of real photos (astronaut heads and LFW faces on the rocket
launch photo), coffee and the cat (no face).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

import conftest

from aidentify.config import FaceDetectorSettings, MtcnnSettings
from aidentify.errors import DataError
from aidentify.faces.boxes import iou_matrix
from aidentify.faces.detector import MTCNN_KEYPOINTS, make_detector
from aidentify.faces.mtcnn import (CELL, MtcnnDetector, crop_and_resize, grid_boxes, normalized, place_keypoints,
                                   pyramid_scales, regressed, squared, tile_origins)
from aidentify.faces.mtcnn_convert import NETWORKS, build_network, convert_network, weight_files
from aidentify.faces.shipped import DETECTORS_DIR, provenance, shipped_file

# The astronaut's face, marked by hand on the 512 x 512 photo: cheek to cheek, hairline to chin.
ASTRONAUT_FACE = np.array(conftest.ASTRONAUT_FACE)
# Our keypoint names (the person's left and right) as the package names them (the viewer's).
PACKAGE_KEYPOINT = {"right_eye": "left_eye", "left_eye": "right_eye", "nose": "nose",
                    "mouth_right": "mouth_left", "mouth_left": "mouth_right"}


def astronaut_photo() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def group_photo() -> tuple[np.ndarray, np.ndarray]:
    """A 1080 x 720 BGR group photo of real faces and their ``(6, 4)`` boxes.

    The rocket-launch photo enlarged as background; the astronaut's head pasted
    at 64, 120 and 220 px (face boxes: the hand-marked one, scaled); three LFW
    faces (25 px crops, face filling the crop) enlarged to 100 px.
    """
    from skimage import data

    canvas = cv2.resize(cv2.cvtColor(data.rocket(), cv2.COLOR_RGB2BGR), (1080, 720), interpolation=cv2.INTER_LINEAR)
    head = astronaut_photo()[24:224, 130:330]
    face_in_head = ASTRONAUT_FACE - [130, 24, 0, 0]
    boxes = []
    for (x, y), side in zip([(40, 60), (330, 420), (820, 40)], [64, 120, 220]):
        canvas[y:y + side, x:x + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
        boxes.append(face_in_head * side / 200 + [x, y, 0, 0])
    faces = data.lfw_subset()  # the first 100 are faces
    for (x, y), index in zip([(560, 140), (620, 480), (120, 470)], [0, 5, 9]):
        face = cv2.resize((faces[index] * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        canvas[y:y + 100, x:x + 100] = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
        boxes.append(np.array([x, y, 100.0, 100.0]))
    return canvas, np.array(boxes)


@pytest.fixture(scope="session")
def detector() -> MtcnnDetector:
    return MtcnnDetector(MtcnnSettings(), min_face=20)


def shipped_networks() -> dict:
    return {name: shipped_file("mtcnn", f"{name}.tflite") for name in NETWORKS}


def litert_outputs(flatbuffer: bytes, batch: np.ndarray) -> list[np.ndarray]:
    """A network's outputs on ``batch`` with LiteRT, sorted by last dimension."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.resize_tensor_input(0, list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
    interpreter.invoke()
    return sorted((interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()),
                  key=lambda t: t.shape[-1])


@pytest.fixture(scope="session")
def package():
    """The mtcnn package's own detector (TensorFlow), the reference."""
    from aidentify.native_logs import import_tensorflow

    import_tensorflow()
    from mtcnn import MTCNN

    return MTCNN()


def package_faces(package, image_bgr: np.ndarray) -> list[dict]:
    return package.detect_faces(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))


# ---------------------------------------------------------------- the shipped networks
def test_shipped_networks_are_the_recorded_conversion_of_the_installed_weights():
    record = provenance()["mtcnn"]
    assert record["source"]["package"] == "mtcnn" and record["source"]["version"] == "1.0.0"
    assert record["licence"]["spdx"] == "MIT"
    assert "Permission is hereby granted" in (DETECTORS_DIR / record["licence"]["file"]).read_text()
    weights = weight_files()
    for name, path in shipped_networks().items():
        entry = record["files"][path.name]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
        assert hashlib.sha256(weights[name].read_bytes()).hexdigest() == entry["from_sha256"], name


def test_litert_networks_compute_what_the_package_networks_compute():
    photo = astronaut_photo()
    rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    boxes = np.array([[182.0, 64.0, 265.0, 171.0], [0.0, 0.0, 200.0, 150.0], [300.0, 300.0, 420.0, 420.0]])
    inputs = {"pnet": [normalized(rgb[None, :307, :307]), normalized(cv2.resize(rgb, (157, 101))[None])],
              "rnet": [normalized(crop_and_resize(rgb, boxes, 24))],
              "onet": [normalized(crop_and_resize(rgb, boxes, 48))]}
    for name, batches in inputs.items():
        network = build_network(name, weight_files()[name])
        flatbuffer = shipped_networks()[name].read_bytes()
        for batch in batches:
            expected = sorted((np.asarray(t) for t in network(batch)), key=lambda t: t.shape[-1])
            got = litert_outputs(flatbuffer, batch)
            assert [g.shape for g in got] == [e.shape for e in expected], name
            for g, e in zip(got, expected):
                np.testing.assert_allclose(g, e, atol=2e-5, err_msg=name)


def test_converting_again_gives_the_shipped_network():
    """What scripts/ship_detectors.py runs, on P-Net (the smallest): the same outputs as the shipped file."""
    batch = normalized(cv2.resize(cv2.cvtColor(astronaut_photo(), cv2.COLOR_BGR2RGB), (120, 96))[None])
    again = litert_outputs(convert_network("pnet", weight_files()["pnet"]), batch)
    shipped = litert_outputs(shipped_networks()["pnet"].read_bytes(), batch)
    for a, b in zip(again, shipped):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_no_tensorflow_at_run_time():
    script = textwrap.dedent("""
        import sys
        import cv2
        from skimage import data
        from aidentify.faces.mtcnn import MtcnnDetector
        faces = MtcnnDetector().detect(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
        print(len(faces), "tensorflow" in sys.modules, "keras" in sys.modules, "mtcnn" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "False", "False", "False"]


def test_missing_network_file_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="cannot read the MTCNN network .*pnet.tflite"):
        MtcnnDetector(MtcnnSettings(), networks=tmp_path)


def test_factory_builds_the_mtcnn_backend():
    detector = make_detector(FaceDetectorSettings(detector="mtcnn"))
    assert isinstance(detector, MtcnnDetector) and detector.name == "mtcnn"


# ---------------------------------------------------------------- against the package, on photos
def test_box_arithmetic_is_the_packages(package):
    import tensorflow as tf
    from mtcnn.utils.bboxes import adjust_bboxes, generate_bounding_box, resize_to_square
    from mtcnn.utils.landmarks import adjust_landmarks

    rng = np.random.default_rng(7)
    probs = rng.uniform(0, 1, (1, 30, 40, 1)).astype(np.float32)
    offsets = rng.normal(0, 0.1, (1, 30, 40, 4)).astype(np.float32)
    theirs = generate_bounding_box(tf.constant(offsets), tf.constant(np.concatenate([1 - probs, probs], -1)), 0.6)
    boxes, scores = grid_boxes(probs[0, :, :, 0], offsets[0], 0.5, 0.6)
    np.testing.assert_allclose(boxes, theirs[:, 1:5] / 0.5, atol=1e-4)
    np.testing.assert_allclose(scores, theirs[:, 5], atol=1e-6)

    batch = np.concatenate([np.zeros((len(boxes), 1)), boxes, scores[:, None]], axis=1)
    moves = rng.normal(0, 0.1, (len(boxes), 4))
    np.testing.assert_allclose(regressed(boxes, moves), adjust_bboxes(batch, moves)[:, 1:5], atol=1e-9)
    np.testing.assert_allclose(squared(boxes), resize_to_square(batch)[:, 1:5], atol=1e-9)
    points = rng.uniform(0, 1, (len(boxes), 10)).astype(np.float32)
    expected = adjust_landmarks(tf.constant(points), batch)
    placed = place_keypoints(points, boxes)
    np.testing.assert_allclose(placed[:, :, 0], expected[:, :5], atol=1e-3)
    np.testing.assert_allclose(placed[:, :, 1], expected[:, 5:], atol=1e-3)


def test_cuts_are_tensorflows_crop_and_resize(package):
    import tensorflow as tf

    rgb = cv2.cvtColor(astronaut_photo(), cv2.COLOR_BGR2RGB)
    boxes = np.array([[182.3, 64.8, 265.1, 171.9], [-20.0, -10.0, 60.0, 70.0], [450.0, 480.0, 540.0, 560.0]])
    height, width = rgb.shape[:2]
    expected = tf.image.crop_and_resize(normalized(rgb)[None], boxes[:, [1, 0, 3, 2]] / [height, width, height, width],
                                        np.zeros(len(boxes), np.int32), (48, 48)).numpy()
    got = normalized(crop_and_resize(rgb, boxes, 48))
    assert np.abs(got - expected).max() < 0.03
    assert np.abs(got - expected).mean() < 0.003


def test_astronaut_matches_the_package(detector, package):
    photo = astronaut_photo()
    ours = detector.detect(photo)
    theirs = package_faces(package, photo)
    assert len(ours) == len(theirs) == 1
    assert iou_matrix(ours.boxes, np.array([theirs[0]["box"]], float))[0, 0] >= 0.8
    assert abs(ours.scores[0] - theirs[0]["confidence"]) < 0.01
    expected = np.array([theirs[0]["keypoints"][PACKAGE_KEYPOINT[name]] for name in MTCNN_KEYPOINTS], float)
    assert np.abs(ours.keypoints[0] - expected).max() <= 4.0


def test_group_photo_matches_the_package_and_finds_every_face(detector, package):
    photo, pasted = group_photo()
    ours = detector.detect(photo)
    theirs = np.array([face["box"] for face in package_faces(package, photo)], float)
    assert len(ours) == len(theirs) == len(pasted)
    overlap = iou_matrix(theirs, ours.boxes)
    assert (overlap.max(axis=1) >= 0.75).all(), overlap.round(2)
    assert (iou_matrix(pasted, ours.boxes).max(axis=1) >= 0.5).all()
    assert (ours.scores > 0.9).all()


# ---------------------------------------------------------------- on their own
def test_finds_the_hand_marked_face_with_its_keypoints(detector):
    faces = detector.detect(astronaut_photo())
    assert len(faces) == 1
    assert faces.boxes.dtype == np.float64 and faces.keypoints.shape == (1, 5, 2)
    assert iou_matrix(faces.boxes, ASTRONAUT_FACE[None])[0, 0] >= 0.5
    points = dict(zip(MTCNN_KEYPOINTS, faces.keypoints[0]))
    assert points["right_eye"][0] < points["nose"][0] < points["left_eye"][0]  # her right eye is on our left
    assert points["mouth_right"][0] < points["mouth_left"][0]
    assert max(points["right_eye"][1], points["left_eye"][1]) < points["nose"][1] < points["mouth_left"][1]
    x, y, w, h = ASTRONAUT_FACE
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in points.values())


def test_gray_photo_gives_the_same_face(detector):
    photo = astronaut_photo()
    colour = detector.detect(photo)
    gray = detector.detect(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    assert len(gray) == 1
    assert iou_matrix(gray.boxes, colour.boxes)[0, 0] >= 0.8


@pytest.mark.parametrize("photo", ["coffee", "chelsea"])
def test_photos_without_a_face(detector, photo):
    from skimage import data

    faces = detector.detect(cv2.cvtColor(getattr(data, photo)(), cv2.COLOR_RGB2BGR))
    assert not (faces.scores >= 0.9).any(), faces.scores


def test_large_photo_is_shrunk_and_its_boxes_mapped_back():
    from skimage import data

    photo = cv2.resize(cv2.cvtColor(data.rocket(), cv2.COLOR_RGB2BGR), (4032, 3024))
    side = 620  # the astronaut's 92 px face becomes about 285 px
    head = cv2.resize(astronaut_photo()[24:224, 130:330], (side, side), interpolation=cv2.INTER_CUBIC)
    photo[1200:1200 + side, 2500:2500 + side] = head
    expected = (ASTRONAUT_FACE - [130, 24, 0, 0]) * side / 200 + [2500, 1200, 0, 0]
    detector = MtcnnDetector(MtcnnSettings(), min_face=20, max_megapixels=1.0)
    faces = detector.detect(photo)
    assert len(faces) == 1
    assert iou_matrix(faces.boxes, expected[None])[0, 0] >= 0.5
    assert 250 <= faces.boxes[0, 2] <= 330


def test_tiny_image_has_no_face(detector):
    faces = detector.detect(np.zeros((10, 10, 3), np.uint8))
    assert len(faces) == 0 and faces.keypoints.shape == (0, 5, 2)


def test_tiled_pnet_sees_what_the_whole_level_sees(detector, monkeypatch):
    level = normalized(cv2.resize(cv2.cvtColor(astronaut_photo(), cv2.COLOR_BGR2RGB), (300, 246)))
    whole_probs, whole_offsets = detector.run_pnet(level)
    monkeypatch.setattr("aidentify.faces.mtcnn.PNET_TILE", 64)
    tiled_probs, tiled_offsets = detector.run_pnet(level)
    assert whole_probs.shape == (118, 145)
    np.testing.assert_allclose(tiled_probs, whole_probs, atol=1e-5)
    np.testing.assert_allclose(tiled_offsets, whole_offsets, atol=1e-5)


@pytest.mark.parametrize("length,tile", [(300, 64), (301, 64), (1000, 512), (100, 512)])
def test_tiles_hold_every_pnet_window(length, tile):
    origins, size = tile_origins(length, tile)
    assert size == length if length <= tile else (size <= tile and size % 2 == 0)
    assert all(o % 2 == 0 and 0 <= o and o + size <= length for o in origins)
    for start in range(0, length - CELL + 1, 2):  # every 12 px window at an even offset
        assert any(o <= start and start + CELL <= o + size for o in origins), start


def test_pyramid_runs_from_min_face_to_the_short_side():
    scales = pyramid_scales(480, 640, min_face=20, scale_factor=0.709)
    assert scales[0] == pytest.approx(12 / 20)
    assert int(480 * scales[-1]) >= 12 > int(480 * scales[-1] * 0.709)
    assert pyramid_scales(480, 640, min_face=8, scale_factor=0.709, largest=1.0)[0] == 1.0
    assert pyramid_scales(10, 640, min_face=20, scale_factor=0.709) == []
