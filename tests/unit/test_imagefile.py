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


def test_heic_avif_and_gif_class_folders_are_found_and_read_by_the_data_stages(tmp_path):
    """Issue 36: one decode rule for every stage; the data stages saw only OpenCV's suffixes before."""
    from PIL import Image

    from aidentify.data.images import read_gray, read_image
    from aidentify.data.sources import index_dataset
    from aidentify.imagefile import pillow_image

    pillow_image()  # registers HEIF when pillow-heif is installed (a base dependency)
    face = np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    formats = {"AVIF": "a.avif", "GIF": "g.gif"}
    try:
        import pillow_heif  # noqa: F401
        formats["HEIF"] = "h.heic"
    except ImportError:
        pass
    for fmt, name in formats.items():
        (tmp_path / "happy").mkdir(exist_ok=True)
        Image.fromarray(face).save(tmp_path / "happy" / name, format=fmt)
    found = index_dataset(tmp_path, "mine", tmp_path / "derived")
    assert sorted(found.frame["path"].map(lambda p: p.rsplit("/", 1)[-1])) == sorted(formats.values())
    for path in found.frame["path"]:
        assert read_image(path).shape == (48, 48, 3) and read_gray(path).shape == (48, 48)
