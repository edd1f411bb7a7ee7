"""Issue 36 for `/api/predict`: an upload is decoded by the same rule as every input (HEIC, AVIF, GIF,
TIFF read; of an animation the first frame, and the answer says so)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aidentify.serve.uploads import check_image, decode_image, frames_note


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return data.astronaut()


def encoded(rgb, fmt, **params):
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif")
    from aidentify.imagefile import pillow_image

    pillow_image()  # HEIF saving registered with the opener
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF", "GIF", "TIFF"])
def test_phone_and_animation_formats_are_accepted_and_decoded(fmt, photo):
    data = encoded(photo, fmt)
    kind, width, height = check_image(data, max_megapixels=50)
    assert (width, height) == (512, 512)
    image = decode_image(data, max_megapixels=50)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    # BGR, close to the photo (lossy formats are near, not equal)
    assert np.abs(image[..., ::-1].astype(int) - photo).mean() < 12
    assert frames_note(data) is None


def test_an_animation_is_labelled_on_its_first_frame_and_the_answer_says_so(photo):
    blank = np.full_like(photo, 200)
    frames = [Image.fromarray(blank), Image.fromarray(photo)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], duration=400)
    data = buffer.getvalue()
    assert decode_image(data, max_megapixels=50).mean() == pytest.approx(200, abs=2)
    note = frames_note(data)
    assert note is not None and "2 frames" in note and "only the first" in note and "aidentify live" in note
