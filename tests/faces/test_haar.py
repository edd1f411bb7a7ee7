"""The Haar backend on a real photo: the seed's behaviour behind the detector interface."""

import cv2

from aidentify.config import FaceDetectorSettings
from aidentify.faces.boxes import iou_matrix
from aidentify.faces.detector import make_detector
from aidentify.faces.haar import detection_scale


def haar(**overrides):
    return make_detector(FaceDetectorSettings(detector="haar", **overrides))


def test_haar_finds_the_astronauts_face(astronaut_bgr):
    faces = haar().detect(astronaut_bgr)
    assert len(faces) == 1
    x, y, w, h = faces.boxes[0]
    # Her face is in the upper middle of the 512x512 photo.
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 200 and 60 < w < 200
    assert faces.keypoints is None and faces.scores[0] == 1.0


def test_a_face_is_found_by_its_own_size_not_the_frames(astronaut_bgr):
    """The same 3x-enlarged face is found in a 1536 px photo (the seed shrank to 640 and lost small faces)."""
    big = cv2.resize(astronaut_bgr, None, fx=3, fy=3)
    full = haar().detect(astronaut_bgr).boxes[:1] * 3
    found = haar(min_face=60).detect(big).boxes
    assert iou_matrix(full, found).max() > 0.7


def test_detection_scale_keeps_the_smallest_face_at_the_window():
    assert detection_scale((480, 640), min_face=20, window=24, max_megapixels=4) == 1.0
    assert detection_scale((3000, 4000), min_face=96, window=24, max_megapixels=4) == 0.25
    capped = detection_scale((3000, 4000), min_face=20, window=24, max_megapixels=4)
    assert abs(3000 * 4000 * capped**2 - 4e6) < 1e3
