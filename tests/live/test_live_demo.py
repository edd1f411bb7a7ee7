"""The demo scene: real photos, every person's face found by the default detector, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from aidentify.config import LiveConfig
from aidentify.errors import DataError
from aidentify.faces.detector import make_detector
from aidentify.live.demo import MAX_PEOPLE, demo_frames
from aidentify.live.pipeline import video_settings
from aidentify.live.scene import face_centres


@pytest.fixture(scope="module")
def detector():
    return make_detector(video_settings(LiveConfig().detect), "video")  # what live runs on video (MTCNN, 40 px up)


@pytest.mark.parametrize("people", [1, 4, MAX_PEOPLE])
def test_the_default_detector_finds_every_person_where_they_stand(detector, people):
    found_all = 0
    checked = 0
    for index, frame in enumerate(demo_frames(faces=people, seconds=2.0)):
        if index % 5:
            continue
        checked += 1
        boxes = detector.detect(frame).boxes
        truth = face_centres(people, index, 30.0, (640, 480))
        centres = boxes[:, :2] + boxes[:, 2:] / 2
        # Each found face lies on one person's face, and no person is found twice.
        distance = np.linalg.norm(centres[:, None] - truth[None, :, :2], axis=2) / truth[None, :, 2]
        assert (distance.min(axis=1) < 0.5).all(), f"frame {index}: a face found off the people"
        hits = {int(i) for i in distance.argmin(axis=1)}
        assert len(hits) == len(boxes), f"frame {index}: one person found twice"
        found_all += len(hits) == people
    assert found_all >= 0.9 * checked, f"all {people} faces found in only {found_all} of {checked} frames"


def test_the_scene_is_deterministic_and_moves():
    first = list(demo_frames(faces=4, seconds=0.5))
    again = list(demo_frames(faces=4, seconds=0.5))
    assert len(first) == 15 and first[0].shape == (480, 640, 3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert np.abs(first[0].astype(int) - first[-1]).mean() > 2  # the camera pans and the people sway


def test_people_are_one_to_max():
    with pytest.raises(DataError, match=f"1 to {MAX_PEOPLE} faces"):
        next(iter(demo_frames(faces=MAX_PEOPLE + 1)))
    frame = next(iter(demo_frames(faces=2, seconds=0.1, size=(320, 240))))
    assert frame.shape == (240, 320, 3)
