"""Truncated JPEG and PNG files are told from whole ones by their bytes."""

import cv2
import numpy as np
import pytest

from aidentify.files import is_junk_name
from aidentify.imagefile import is_truncated


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix, params", [(".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                                             (".png", [])])
def test_whole_files_pass_and_cut_files_are_truncated(picture, suffix, params):
    whole = cv2.imencode(suffix, picture, params)[1].tobytes()
    assert not is_truncated(whole)
    assert not is_truncated(whole + b"data a phone appends after the image" * 10)
    for keep in (0.3, 0.6, 0.9):
        assert is_truncated(whole[: int(len(whole) * keep)])


def test_other_bytes_are_left_to_the_decoder():
    assert not is_truncated(b"not an image at all")


@pytest.mark.parametrize("name, junk", [("._img0.png", True), (".DS_Store", True), ("__MACOSX", True),
                                        ("Thumbs.db", True), ("img0.png", False), ("happy", False)])
def test_system_clutter_names(name, junk):
    assert is_junk_name(name) is junk
