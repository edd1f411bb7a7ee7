"""Real face photos that ship with scikit-image, for the export check and the overlay's crowd test.

scikit-image bundles the astronaut photo (Eileen Collins, public domain) and a
subset of Labeled Faces in the Wild (100 small face crops), so AIdentify can
show and check itself on real faces with no download.
"""

from __future__ import annotations

import cv2
import numpy as np

from aidentify.errors import DataError

# Astronaut face box found by the Haar cascade on skimage.data.astronaut().
ASTRONAUT_FACE = (177, 66, 95, 95)
# LFW-subset images (of the 100 faces) whose upscaled crops the cascade finds.
LFW_FACES = (0, 3, 7, 9, 11, 15, 18, 2, 5, 8, 10, 12)
MAX_FACES = 1 + len(LFW_FACES)


def face_sprites(count: int, side: int = 120) -> list[np.ndarray]:
    """``count`` BGR face images of ``side`` pixels: the astronaut first, then LFW faces."""
    try:
        from skimage import data
    except ImportError:  # pragma: no cover - scikit-image is a dependency
        raise DataError("the demo needs scikit-image (pip install scikit-image)") from None
    if not 1 <= count <= MAX_FACES:
        raise DataError(f"the demo has 1 to {MAX_FACES} faces, not {count}")
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    x, y, w, h = ASTRONAUT_FACE
    grow = int(w * 0.3)
    head = astronaut[max(y - grow, 0):y + h + grow, max(x - grow, 0):x + w + grow]
    sprites = [cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)]
    lfw = data.lfw_subset()
    for index in LFW_FACES[:count - 1]:
        face = np.clip(lfw[index] * 255, 0, 255).astype(np.uint8)
        inner = int(side * 0.8)
        face = cv2.resize(face, (inner, inner), interpolation=cv2.INTER_CUBIC)
        pad = (side - inner) // 2
        face = cv2.copyMakeBorder(face, pad, side - inner - pad, pad, side - inner - pad, cv2.BORDER_REPLICATE)
        sprites.append(cv2.cvtColor(face, cv2.COLOR_GRAY2BGR))
    return sprites


def crowd_photo(size: tuple[int, int] = (640, 480), columns: int = 5, rows: int = 4) -> np.ndarray:
    """A crowded ``(height, width, 3) uint8`` BGR photo: ``columns`` x ``rows`` real faces edge to edge.

    The :func:`face_sprites` (astronaut, then LFW faces; mirrored when they come round again) are
    tiled from corner to corner of a ``(width, height)`` frame, so faces sit close together and
    against every edge: the hard case for where the overlay's labels go.
    """
    width, height = size
    side = min(width // columns, height // rows)
    sprites = face_sprites(MAX_FACES, side=side)
    photo = np.full((height, width, 3), 90, np.uint8)
    for k in range(columns * rows):
        row, column = divmod(k, columns)
        sprite = sprites[k % MAX_FACES] if k < MAX_FACES else sprites[k % MAX_FACES][:, ::-1]
        x = column * (width - side) // max(columns - 1, 1)
        y = row * (height - side) // max(rows - 1, 1)
        photo[y:y + side, x:x + side] = sprite
    return photo


def expression_portraits(height: int = 110) -> dict[str, np.ndarray]:
    """Two real faces whose expression the shipped model reads with confidence, ``height`` px tall BGR:
    ``"happiness"``, scikit-image's astronaut (Eileen Collins, smiling; NASA, public domain) and
    ``"neutral"``, matplotlib's Grace Hopper (US Navy, public domain). For studies with a known
    schedule of expressions (tests, ``scripts/study_example.py``)."""
    import importlib.util
    from pathlib import Path

    from skimage import data

    collins = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[20:240, 130:320]
    mpl = Path(importlib.util.find_spec("matplotlib").origin).parent
    hopper = cv2.imread(str(mpl / "mpl-data" / "sample_data" / "grace_hopper.jpg"))
    if hopper is None:
        raise DataError("matplotlib's sample photo grace_hopper.jpg is missing; reinstall matplotlib")
    hopper = hopper[70:380, 140:400]
    size = lambda face: (round(face.shape[1] * height / face.shape[0]), height)  # noqa: E731
    return {"happiness": cv2.resize(collins, size(collins), interpolation=cv2.INTER_AREA),
            "neutral": cv2.resize(hopper, size(hopper), interpolation=cv2.INTER_AREA)}
