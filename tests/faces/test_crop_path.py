"""The one crop path on real photos: prepare, evaluate and live cut the same faces the same way."""

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import ASTRONAUT_FACE, write_image

from aidentify.config import CleanConfig, DownloadConfig, EvaluateConfig, FaceDetection, LiveConfig, PrepareConfig
from aidentify.data.clean import clean
from aidentify.data.download import download
from aidentify.data.prepare import prepare
from aidentify.faces.boxes import iou_matrix
from aidentify.faces.crop import (
    BOX_CALIBRATION,
    FACE_CROP_MAX_SIDE,
    aligned_crop,
    cut_face,
    eye_angle,
    eyes_of,
    face_crops,
    recorded_face_settings,
    reference_boxes,
    square_crop,
)
from aidentify.faces.detector import make_detector
from aidentify.inference.classify import load_classifier
from aidentify.live.pipeline import LivePipeline
from aidentify.train.evaluate import evaluate



def lfw_faces(count: int, side: int = 48) -> list[np.ndarray]:
    """Tight grayscale face crops from scikit-image's Labeled Faces in the Wild subset, ``side`` px."""
    from skimage import data

    faces = data.lfw_subset()[:count]
    return [cv2.resize(np.clip(f * 255, 0, 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_CUBIC)
            for f in faces]


def test_every_backend_box_becomes_the_same_reference_box(astronaut_bgr):
    """Raw boxes of one face differ by backend; their reference boxes agree (one crop whatever found it)."""
    raw, reference = {}, {}
    for name in ("haar", "blazeface", "mtcnn"):
        found = make_detector(FaceDetection(detector=name)).detect(astronaut_bgr).largest_first(1)
        assert iou_matrix(found.boxes, [ASTRONAUT_FACE])[0, 0] > 0.5, name
        raw[name], reference[name] = found.boxes, reference_boxes(found.boxes, name)
    for a, b in (("haar", "mtcnn"), ("blazeface", "mtcnn"), ("haar", "blazeface")):
        assert iou_matrix(reference[a], reference[b])[0, 0] > 0.6, (a, b)  # one face: calibration is a median
    assert iou_matrix(reference["haar"], reference["mtcnn"]) > iou_matrix(raw["haar"], raw["mtcnn"])
    assert set(BOX_CALIBRATION) == {"haar", "blazeface", "mtcnn"}


def test_a_legacy_haar_margin_keeps_its_crop_size():
    """Models trained before calibration recorded a margin around raw Haar boxes: same crop side after."""
    recorded = recorded_face_settings({"detect": "always", "scale_factor": 1.1, "min_neighbors": 5,
                                            "min_size": 30, "max_side": 640, "margin": 0.2})
    assert recorded.detector == "haar" and recorded.min_face == 30
    raw = np.array([[100.0, 100.0, 80.0, 80.0]])
    side = reference_boxes(raw, "haar")[0, 2] * (1 + 2 * recorded.margin)
    assert side == pytest.approx(80 * 1.4)


def test_cut_face_modes_on_a_real_photo(astronaut_bgr):
    detector = make_detector(FaceDetection())
    cut = cut_face(astronaut_bgr, detector, "always", 0.2, 48)
    assert cut.outcome == "face" and cut.crop.shape == (48, 48)
    assert iou_matrix([cut.box], [ASTRONAUT_FACE])[0, 0] > 0.5
    sky = np.ascontiguousarray(astronaut_bgr[:, 400:])  # the right edge of the photo: no face
    assert cut_face(sky, detector, "always", 0.2, 48).outcome == "no_face"
    assert cut_face(sky, detector, "fallback", 0.2, 48).outcome == "fallback_whole"
    assert cut_face(sky, None, "never", 0.2, 48).outcome == "whole"


def test_small_images_are_face_crops_and_are_used_whole_when_asked():
    detector = make_detector(FaceDetection())
    crop = cv2.cvtColor(lfw_faces(1)[0], cv2.COLOR_GRAY2BGR)
    assert max(crop.shape[:2]) <= FACE_CROP_MAX_SIDE
    kept = cut_face(crop, detector, "always", 0.2, 48, crops_whole=True)
    assert kept.outcome == "whole" and np.array_equal(kept.crop, cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY))


def test_evaluate_scores_every_image_of_a_48px_crop_folder(tmp_path):
    """FER2013-style class folders of 48x48 face crops: none is dropped as "no face found" (3 of 8 were)."""
    folder = tmp_path / "crops"
    for i, face in enumerate(lfw_faces(8)):
        write_image(folder / ("happy" if i % 2 else "neutral") / f"{i}.png", face)
    [result] = evaluate([], str(folder), tmp_path / "out", EvaluateConfig())
    assert result.metrics["n"] == 8
    assert result.metrics["excluded"] == {}


def test_prepare_with_the_default_detector_crops_the_real_face(workdir, astronaut_bgr):
    write_image(workdir / "src" / "happy" / "astronaut.png", astronaut_bgr)
    download(DownloadConfig(), "photos", from_path=workdir / "src")
    clean(CleanConfig(workers=1, splits={"val_fraction": 0, "test_fraction": 0}))
    prepare(PrepareConfig(image_size=48, workers=1))
    row = pd.read_csv(workdir / "data/prepared/manifest.csv").iloc[0]
    assert row["face"] == "face"
    box = [float(v) for v in row["box"].split()]
    assert iou_matrix([box], [ASTRONAUT_FACE])[0, 0] > 0.5
    # The same photo through live's path gives the same crop as prepare wrote (one crop path).
    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    found = make_detector(FaceDetection()).detect(astronaut_bgr).largest_first(1)
    live_crop = face_crops(gray, found.boxes, "mtcnn", 0.2, 48, eyes_of(found, align=True))[0]
    written = cv2.imread(str(workdir / "data/prepared" / row["path"]), cv2.IMREAD_GRAYSCALE)
    assert np.abs(live_crop.astype(int) - written).max() <= 1


def test_a_285_px_face_in_a_12_megapixel_photo_is_found_by_live(astronaut_bgr):
    """The seed shrank every frame to 320 px wide with a 24 px minimum face: this face became 23 px and was lost."""
    x, y, w, h = (int(v) for v in ASTRONAUT_FACE)
    head = astronaut_bgr[max(0, y - 60):y + h + 60, max(0, x - 50):x + w + 50]
    scale = 285 / w
    head = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    photo = np.full((3024, 4032, 3), 90, np.uint8)
    photo[1200:1200 + head.shape[0], 2000:2000 + head.shape[1]] = head
    pipeline = LivePipeline(load_classifier(None), LiveConfig(), stills=True)
    _, result = pipeline(photo)
    assert len(result.faces) == 1
    fx, fy, fw, fh = result.faces[0].box
    assert 2000 < fx + fw / 2 < 2000 + head.shape[1] and 1200 < fy + fh / 2 < 1200 + head.shape[0]
    assert 200 < fw < 400


@pytest.mark.parametrize("angle", [-25.0, 0.0, 20.0])
def test_aligned_crops_level_the_eyes_of_a_turned_face(astronaut_bgr, angle):
    centre = (ASTRONAUT_FACE[0] + ASTRONAUT_FACE[2] / 2, ASTRONAUT_FACE[1] + ASTRONAUT_FACE[3] / 2)
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
    turned = cv2.warpAffine(astronaut_bgr, rotation, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    found = make_detector(FaceDetection()).detect(turned).largest_first(1)
    eyes = found.keypoints[0, :2]
    assert eye_angle(eyes) == pytest.approx(-angle, abs=6)  # turned anticlockwise: right side rises
    gray = cv2.cvtColor(turned, cv2.COLOR_BGR2GRAY)
    box = reference_boxes(found.boxes, "mtcnn")[0]
    upright = aligned_crop(gray, box, eyes, 0.1, 96)
    again = make_detector(FaceDetection(min_face=20)).detect(cv2.resize(upright, (288, 288)))
    assert len(again) and abs(eye_angle(again.keypoints[0, :2])) < 6


def test_an_aligned_crop_of_level_eyes_is_the_plain_crop(astronaut_gray):
    box = np.array(ASTRONAUT_FACE, dtype=float)
    level = np.array([[box[0] + 25, box[1] + 40], [box[0] + 65, box[1] + 40]])
    aligned = aligned_crop(astronaut_gray, box, level, 0.1, 96).astype(int)
    assert np.array_equal(aligned, square_crop(astronaut_gray, box, 0.1, 96))
