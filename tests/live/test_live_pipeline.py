"""The live pipeline on real photos, and its parts: classifier, tracker, smoothing, model files."""

import cv2
import numpy as np
import pytest

from aidentify.config import LiveConfig, LiveSmoothing, LiveTracking
from aidentify.errors import DataError
from aidentify.inference.classify import TestTimeViews, load_classifier
from aidentify.live.demo import demo_frames
from aidentify.live.pipeline import LivePipeline
from aidentify.live.track import Track, Tracker, iou
from aidentify.inference.modelfile import (
    default_model_path,
    embed_tflite_metadata,
    read_metadata,
    read_tflite_metadata,
)


@pytest.fixture(scope="module")
def default_classifier():
    return load_classifier(None)


def test_the_shipped_model_carries_its_classes():
    metadata = read_metadata(default_model_path())
    assert metadata["classes"][:2] == ["neutral", "happiness"]
    assert len(metadata["classes"]) == 8
    assert metadata["input_size"] == 64  # stages 6 and 7 of the recipe train at 64 px
    assert default_model_path().stat().st_size < 5_000_000


def test_astronaut_photo_one_face_found_and_labelled(default_classifier):
    from skimage import data

    frame = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    pipeline = LivePipeline(default_classifier, LiveConfig())
    annotated, result = pipeline(frame)
    assert len(result.faces) == 1
    face = result.faces[0]
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 200  # the astronaut's face, not elsewhere
    assert face.label in default_classifier.info.classes
    assert face.probs.sum() == pytest.approx(1.0, abs=1e-3)
    changed = np.any(annotated != frame, axis=2)
    assert changed[y:y + h, x:x + w].any()  # a box is drawn around the face
    assert changed[:, 400:].sum() == 0  # nothing is drawn far from it
    assert set(result.timings) == {"detect", "classify", "draw"}


@pytest.fixture
def classifier_calls(default_classifier, monkeypatch):
    """The batch size of every call to the shipped classifier during a test."""
    calls = []
    original = type(default_classifier).__call__

    def spy(self, crops):
        calls.append(len(crops))
        return original(self, crops)

    monkeypatch.setattr(type(default_classifier), "__call__", spy)
    return calls


def test_all_faces_of_a_frame_go_through_one_call(default_classifier, classifier_calls):
    pipeline = LivePipeline(default_classifier, LiveConfig())
    frame = next(demo_frames(faces=6, seconds=0.1))
    _, result = pipeline(frame)
    assert len(result.faces) == 6
    assert classifier_calls == [6]


def test_batched_and_single_predictions_agree(default_classifier):
    size = default_classifier.info.input_size
    crops = _demo_crops(5, size)
    batched = default_classifier(crops)
    single = np.concatenate([default_classifier(crops[i:i + 1]) for i in range(len(crops))])
    assert batched.shape == (5, 8)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert default_classifier(np.zeros((0, size, size), np.uint8)).shape == (0, 8)


def _demo_crops(n: int, size: int = 48) -> np.ndarray:
    return np.stack([cv2.resize(f[:, :, 0], (size, size), interpolation=cv2.INTER_AREA)
                     for f in demo_frames(faces=1, seconds=0.2)][:n])


def test_test_time_views_are_mirrors_and_centre_zooms():
    crops = _demo_crops(3)
    views = TestTimeViews(flip=True, zooms=(0.75,))
    assert views.count == 4 and TestTimeViews().count == 1
    expanded = views.expand(crops)
    assert expanded.shape == (12, 48, 48)
    np.testing.assert_array_equal(expanded[:3], crops)
    zoomed = cv2.resize(crops[1][6:42, 6:42], (48, 48), interpolation=cv2.INTER_LINEAR)  # centre 75%
    np.testing.assert_array_equal(expanded[4], zoomed)
    np.testing.assert_array_equal(expanded[6:9], crops[:, :, ::-1])
    np.testing.assert_array_equal(expanded[10], zoomed[:, ::-1])
    assert TestTimeViews(zooms=(0.99,)).expand(crops).shape == (6, 48, 48)  # under a pixel: the crop itself


def test_test_time_views_average_the_models_predictions_per_crop(default_classifier):
    size = default_classifier.info.input_size
    crops = _demo_crops(4, size)
    views = TestTimeViews(flip=True, zooms=(0.9, 0.8))
    averaged = views.predict(default_classifier, crops)
    one_by_one = np.mean([default_classifier(view) for view in views.expand(crops).reshape(6, 4, size, size)],
                         axis=0)
    np.testing.assert_allclose(averaged, one_by_one, atol=1e-5)
    assert not np.allclose(averaged, default_classifier(crops), atol=1e-3)  # the views change the answer
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, atol=1e-3)
    assert views.predict(default_classifier, crops[:0]).shape == (0, 8)


def test_live_with_test_time_views_still_classifies_all_faces_in_one_call(default_classifier, classifier_calls):
    pipeline = LivePipeline(default_classifier, LiveConfig(tta_flip=True, tta_zooms=[0.9]))
    _, result = pipeline(next(demo_frames(faces=3, seconds=0.1)))
    assert len(result.faces) == 3
    assert classifier_calls == [12]  # 3 faces x (original, zoom) x (as is, mirrored)


def test_detecting_every_third_frame_keeps_ids_and_follows_faces(default_classifier):
    pipeline = LivePipeline(default_classifier, LiveConfig(detect={"every": 3}))
    ids, detected = [], []
    for frame in demo_frames(faces=3, seconds=1.0):
        _, result = pipeline(frame)
        ids.append(sorted(f.track_id for f in result.faces))
        detected.append(result.detected)
    assert ids == [[1, 2, 3]] * len(ids)
    assert detected[:6] == [True, False, False, True, False, False]


def test_tracker_matches_by_overlap_and_ends_lost_tracks():
    tracker = Tracker(LiveTracking(iou=0.3, max_missed=1))
    tracker.update(np.array([[0, 0, 50, 50], [200, 0, 50, 50]]))
    assert [t.id for t in tracker.tracks] == [1, 2]
    tracker.update(np.array([[205, 3, 50, 50], [5, 2, 50, 50], [400, 400, 40, 40]]))
    assert {t.id: tuple(t.box[:2]) for t in tracker.tracks} == {1: (5, 2), 2: (205, 3), 3: (400, 400)}
    tracker.update(np.array([[5, 2, 50, 50]]))  # 2 and 3 missed once: kept
    tracker.update(np.array([[5, 2, 50, 50]]))  # missed twice: gone
    assert [t.id for t in tracker.tracks] == [1]
    assert iou(np.array([0, 0, 10, 10]), np.array([5, 0, 10, 10])) == pytest.approx(50 / 150)


def test_smoothing_ema_and_window():
    track = Track(1, np.zeros(4))
    ema = LiveSmoothing(method="ema", alpha=0.5)
    track.observe(np.array([1.0, 0.0]), ema)
    np.testing.assert_allclose(track.observe(np.array([0.0, 1.0]), ema), [0.5, 0.5])
    window = LiveSmoothing(method="window", window=2)
    track = Track(2, np.zeros(4))
    for p in ([1.0, 0.0], [0.0, 1.0], [0.0, 1.0]):
        smoothed = track.observe(np.array(p), window)
    np.testing.assert_allclose(smoothed, [0.0, 1.0])


def test_tflite_metadata_round_trip_and_damaged_files(tmp_path):
    flatbuffer = default_model_path().read_bytes()
    updated = embed_tflite_metadata(flatbuffer, {"classes": ["a", "b"], "input_size": 48})
    assert read_tflite_metadata(updated)["classes"] == ["a", "b"]
    # embedding again replaces the JSON instead of leaving the old copy inside the file
    again = embed_tflite_metadata(updated, {"classes": ["c", "d"], "input_size": 48})
    assert read_tflite_metadata(again)["classes"] == ["c", "d"]
    assert len(again) == len(updated) and b'"a"' not in again
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(DataError, match="not a readable .tflite"):
        read_metadata(broken)


def test_a_model_whose_classes_do_not_fit_is_refused(tmp_path):
    flatbuffer = default_model_path().read_bytes()
    metadata = read_tflite_metadata(flatbuffer)
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes(embed_tflite_metadata(flatbuffer, {**metadata, "classes": ["happy", "sad"]}))
    with pytest.raises(DataError, match="8 outputs but 2 class names"):
        load_classifier(wrong)


def test_crops_are_cut_like_the_training_crops(tmp_path):
    from aidentify.inference.classify import ModelInfo
    from aidentify.faces.crop import FERPLUS_CROP_MARGIN

    base = {"classes": ["a", "b"], "input_size": 48, "faces": {"margin": 0.25}}
    assert ModelInfo.from_metadata(tmp_path, {**base, "crops": "detected"}).crop_margin == 0.25
    assert ModelInfo.from_metadata(tmp_path, {**base, "crops": "whole"}).crop_margin is None
    with pytest.raises(DataError, match="lacks class names"):
        ModelInfo.from_metadata(tmp_path, {"input_size": 48})
    classifier = load_classifier(None)
    assert classifier.info.crop_margin is None  # trained on FER+'s own crops
    assert LivePipeline(classifier, LiveConfig()).margin == FERPLUS_CROP_MARGIN
    assert LivePipeline(classifier, LiveConfig(crop_margin=0.3)).margin == 0.3


def test_a_camera_that_outpaces_us_only_hands_out_its_newest_frame():
    import threading
    import time

    from aidentify.live.capture import LatestFrameSource

    class Counting:
        """A 'camera' delivering numbered frames every millisecond."""

        def __init__(self):
            self.n = 0
            self.done = threading.Event()

        def read(self):
            time.sleep(0.001)
            self.n += 1
            return (self.n <= 200), np.full((4, 4, 3), self.n % 256, np.uint8)

        def get(self, prop):
            return 0.0

        def release(self):
            self.done.set()

    camera = Counting()
    source = LatestFrameSource(camera, "fake")
    seen = []
    while (item := source.read()) is not None:
        seen.append(int(item[0][0, 0, 0]))
        time.sleep(0.02)  # a slow consumer
    source.close()
    assert camera.done.is_set()
    assert 1 < len(seen) < 100  # frames were dropped, not queued
    assert seen == sorted(seen)


def test_a_frame_of_six_faces_runs_as_a_batch_of_six():
    """Padding six faces to a batch of eight cost a third more time; sizes up to 8 run as they are."""
    classifier = load_classifier(None)
    classifier(_demo_crops(6, classifier.info.input_size))
    assert sorted(classifier._interpreters) == [1, 6]  # 1: the check at load time
