"""The demo's scene: people from shipped public-domain portraits on a terrace in a shipped photo.

Every picture comes from a package AIdentify already depends on, read at run time
(nothing is downloaded, no image is committed here):

- background: ``china.jpg`` from scikit-learn (``sklearn.datasets.load_sample_image``),
  the Summer Palace in Beijing, by danielbuechele on Flickr, CC BY 2.0;
- Eileen Collins: ``skimage.data.astronaut()``, NASA, public domain;
- Grace Hopper: matplotlib's sample ``grace_hopper.jpg``, US Navy, public domain.

Each portrait is cut out along an outline traced once with OpenCV's GrabCut and kept
below as a polygon (source pixels), so start-up is a ``fillPoly`` and a blur, not a
segmentation. The people stand at different distances (nearer ones hide the
lower bodies of those behind), some mirrored and turned (a slight perspective
squeeze), some tilted; a virtual camera pans and zooms and everybody sways, so
detection and tracking have real work. Everything is seeded and deterministic.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from aidentify.errors import DataError

# Where each photo lies inside the package that installs it (see the module's docstring for credits).
PHOTO_FILES = {
    "background": ("sklearn", "datasets/images/china.jpg"),
    "collins": ("skimage", "data/astronaut.png"),
    "hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
# The scene is laid out in a 768x576 "world" (pixels at the camera's widest view of 640x480 = 1.2x).
WORLD = (768, 576)


@dataclass(frozen=True)
class Portrait:
    """A shipped photo of one person: its face (centre and height, from MTCNN) and its outline."""

    face: tuple[float, float, float]
    outline: tuple[int, ...]


# Face boxes: MTCNN on the photo (x, y, w, h): Collins (179, 58, 88, 115), Hopper (182, 118, 170, 217).
PORTRAITS = {
    "collins": Portrait(
        face=(223.0, 115.5, 114.6),
        outline=(201, 23, 185, 38, 163, 51, 156, 58, 153, 68, 154, 92, 157, 104, 170, 116, 172, 134, 182, 135,
                 183, 156, 171, 160, 166, 165, 166, 168, 159, 171, 141, 190, 132, 189, 132, 181, 136, 171, 136,
                 166, 132, 166, 121, 183, 120, 201, 113, 202, 113, 205, 90, 227, 76, 235, 65, 246, 46, 278, 40,
                 294, 39, 306, 34, 315, 26, 342, 26, 366, 19, 390, 20, 419, 24, 432, 23, 460, 25, 478, 29, 493,
                 37, 502, 39, 511, 511, 511, 511, 456, 498, 455, 495, 452, 493, 421, 478, 384, 455, 361, 436,
                 351, 418, 345, 393, 344, 364, 348, 360, 344, 360, 328, 357, 323, 356, 302, 352, 287, 347, 282,
                 340, 262, 319, 243, 303, 233, 299, 219, 292, 207, 266, 179, 262, 169, 262, 152, 265, 141, 269,
                 140, 269, 130, 279, 127, 290, 117, 296, 107, 300, 92, 296, 58, 288, 43, 276, 31, 248, 18, 227,
                 16)),
    "hopper": Portrait(
        face=(267.5, 226.8, 217.4),
        outline=(332, 54, 305, 42, 301, 42, 298, 46, 290, 46, 283, 37, 276, 34, 263, 35, 262, 31, 257, 31, 256,
                 35, 242, 34, 235, 38, 230, 46, 218, 46, 217, 43, 210, 43, 195, 51, 179, 67, 176, 73, 175, 84,
                 160, 97, 160, 134, 170, 144, 170, 153, 165, 159, 163, 177, 161, 179, 161, 199, 165, 244, 170,
                 261, 167, 280, 176, 289, 175, 337, 165, 344, 129, 355, 124, 359, 96, 363, 80, 368, 68, 374, 62,
                 380, 53, 381, 47, 387, 38, 411, 29, 417, 20, 430, 16, 599, 511, 599, 511, 434,
                 507, 434, 492, 393, 461, 376, 422, 366, 376, 345, 365, 342, 334, 318, 334, 309, 341, 302, 343,
                 290, 350, 283, 356, 266, 361, 262, 367, 236, 367, 227, 370, 223, 370, 208, 374, 201, 375, 192,
                 373, 185, 369, 183, 371, 135, 369, 129, 368, 96, 363, 87, 352, 86, 351, 78, 344, 65)),
}


@dataclass(frozen=True)
class Person:
    """One person in the scene (world pixels): who, where the face is, how big, mirrored, turned, tilted."""

    who: str
    x: float
    y: float
    face: float          # face height
    mirror: bool = False
    turn: float = 0.0    # perspective squeeze of the far side (0 = facing the camera)
    tilt: float = 0.0    # degrees, positive = counter-clockwise
    depth: int = 0       # drawing order: larger is nearer the camera
    blur: float = 0.0    # out of focus (sigma, world pixels)
    recolour: int = 0    # hue turn of the clothes


# In order of appearance: ``faces=N`` puts the first N people in the scene. ``recolour`` turns the
# hue of the clothes (OpenCV hue steps of 2 degrees), so a portrait used twice is not a twin.
CAST = (
    Person("collins", 300, 330, 92, tilt=10, depth=3),
    Person("hopper", 515, 350, 98, mirror=True, turn=0.12, tilt=14, depth=4),
    Person("collins", 168, 300, 66, mirror=True, turn=0.15, tilt=-22, depth=2, blur=0.5, recolour=95),
    Person("hopper", 640, 280, 60, tilt=-15, depth=1, blur=0.5, recolour=-85),
    Person("collins", 420, 262, 54, turn=0.1, tilt=-6, depth=0, blur=0.8, recolour=-8),
    Person("hopper", 238, 212, 50, mirror=True, tilt=14, depth=0, blur=0.8, recolour=-40),
)
MAX_PEOPLE = len(CAST)
SWAY_EVERY = 3


def _shipped(package: str, path: str) -> np.ndarray:
    """A photo that ``package`` installs, read without importing the package (importing scikit-learn
    alone takes seconds)."""
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    image = cv2.imread(str(Path(folders[0]) / path), cv2.IMREAD_COLOR) if folders else None
    if image is None:
        raise DataError(f"the demo needs {path} from the {package} package; reinstall it (pip install {package})")
    return image


def _photo(who: str) -> np.ndarray:
    return _shipped(*PHOTO_FILES[who])


@lru_cache(maxsize=1)
def _background() -> np.ndarray:
    """The terrace view, scaled to cover the world, slightly out of focus (the people are in focus)."""
    photo = _shipped(*PHOTO_FILES["background"])
    width, height = WORLD
    scale = max(width / photo.shape[1], height / photo.shape[0])
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    x0 = (photo.shape[1] - width) // 2
    y0 = photo.shape[0] - height
    return cv2.GaussianBlur(photo[y0:y0 + height, x0:x0 + width], (0, 0), 1.4)


def _recolour(photo: np.ndarray, below: int, hue: int) -> np.ndarray:
    """Turn the hue of the clothes (rows from ``below`` down, faded in over 20 rows)."""
    hsv = cv2.cvtColor(photo[below:], cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + hue) % 180
    hsv[..., 1] = np.minimum(hsv[..., 1].astype(np.int16) + 40, 255)
    turned = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    fade = np.clip(np.arange(turned.shape[0], dtype=np.float32) / 20, 0, 1)[:, None, None]
    photo = photo.copy()
    photo[below:] = (photo[below:] * (1 - fade) + turned * fade).astype(np.uint8)
    return photo


@lru_cache(maxsize=8)
def _cutout(person: Person) -> tuple[np.ndarray, tuple[float, float]]:
    """The person's sprite at scene size: BGR premultiplied by its feathered alpha, and alpha (BGRA),
    and the face centre in it."""
    portrait = PORTRAITS[person.who]
    photo = _photo(person.who)
    fx, fy, face = portrait.face
    if person.recolour:
        photo = _recolour(photo, int(fy + 0.75 * face), person.recolour)
    # Lengthen the body downwards (the photo ends at the chest) with its last rows, smoothed, so the
    # lower edge stays below the frame whatever the tilt and the camera do.
    source_bottom = photo.shape[0] - 1
    outline = np.array(portrait.outline, np.int32).reshape(-1, 2)
    inside = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillPoly(inside, [outline], 255)
    clothes = np.median(photo[-40:][inside[-40:] > 0], axis=0)
    shade = np.linspace(1.0, 0.6, 2 * photo.shape[0], dtype=np.float32)[:, None, None]
    photo = np.vstack([photo, (np.ones((2 * photo.shape[0], photo.shape[1], 3), np.float32) * clothes * shade)
                       .astype(np.uint8)])
    outline[outline[:, 1] >= source_bottom, 1] = photo.shape[0] - 1
    alpha = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillPoly(alpha, [outline], 255, lineType=cv2.LINE_AA)
    scale = person.face / face
    sprite = cv2.resize(np.dstack([photo, alpha]), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = sprite.shape[:2]
    fx, fy = fx * scale, fy * scale
    if person.mirror:
        sprite = sprite[:, ::-1]
        fx = width - 1 - fx
    if person.turn:
        # Turned away a little: the far side gets narrower and shorter (a perspective squeeze).
        src = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
        dst = src.copy()
        far, step = ([0, 3], 1) if person.mirror else ([1, 2], -1)
        dst[far[0], 1] += person.turn * person.face * 0.6
        dst[far[1], 1] -= person.turn * person.face * 0.6
        dst[far, 0] += step * person.turn * (width - fx if step < 0 else fx) * 0.5
        matrix = cv2.getPerspectiveTransform(src, dst)
        sprite = cv2.warpPerspective(sprite, matrix, (width, height), flags=cv2.INTER_LINEAR)
        fx, fy = cv2.perspectiveTransform(np.float32([[[fx, fy]]]), matrix)[0, 0]
    colour, alpha = np.ascontiguousarray(sprite[..., :3]), np.ascontiguousarray(sprite[..., 3])
    # Soft edges (no cut-out line), depth of field, and a touch of the scene's daylight.
    alpha = cv2.GaussianBlur(cv2.erode(alpha, np.ones((3, 3), np.uint8)), (0, 0), 1.0)
    if person.blur:
        colour = cv2.GaussianBlur(colour, (0, 0), person.blur)
        alpha = cv2.GaussianBlur(alpha, (0, 0), person.blur)
    daylight = np.full_like(colour, _background().reshape(-1, 3).mean(axis=0).astype(np.uint8))
    colour = cv2.addWeighted(colour, 0.9, daylight, 0.1, 4)
    premultiplied = cv2.multiply(colour, cv2.merge([alpha] * 3), scale=1 / 255)
    return np.dstack([premultiplied, alpha]), (float(fx), float(fy))


def check_people(count: int) -> None:
    if not 1 <= count <= MAX_PEOPLE:
        raise DataError(f"the demo has 1 to {MAX_PEOPLE} faces, not {count}")


def _camera(t: float, size: tuple[int, int]) -> np.ndarray:
    """World -> frame: a slow pan and zoom that keeps the view inside the world."""
    world_w, world_h = WORLD
    view_w = 690 - 50 * math.sin(0.31 * t)             # 640 to 740 world pixels wide
    view_h = view_w * 0.75
    cx = world_w / 2 + (world_w - view_w) / 2 * math.sin(0.23 * t + 0.4) * 0.5
    cy = world_h / 2 + (world_h - view_h) / 2 * math.sin(0.37 * t + 1.1) * 0.5
    scale = size[0] / view_w
    return np.float32([[scale, 0, size[0] / 2 - cx * scale], [0, scale, size[1] / 2 - cy * scale]])


def _place(person: Person, face_xy: tuple[float, float], t: float, k: int) -> np.ndarray:
    """Sprite -> world: the face centre to its place, tilted and swaying about the chest."""
    angle = person.tilt + 2.5 * math.sin(0.9 * t + 1.7 * k)
    dx = 0.08 * person.face * math.sin(0.55 * t + 2.3 * k)
    dy = 0.03 * person.face * math.sin(1.1 * t + k)
    pivot = (face_xy[0], face_xy[1] + 1.6 * person.face)
    rotate = cv2.getRotationMatrix2D(pivot, angle, 1.0)
    rotate[:, 2] += (person.x - face_xy[0] + dx, person.y - face_xy[1] + dy)
    return rotate


def _paste(frame: np.ndarray, sprite: np.ndarray, matrix: np.ndarray) -> None:
    """Warp the premultiplied BGRA ``sprite`` into ``frame`` with ``matrix`` (2x3), over its bounding box."""
    height, width = sprite.shape[:2]
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float32) @ matrix.T
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int), (frame.shape[1], frame.shape[0]))
    if x1 <= x0 or y1 <= y0:
        return
    shifted = matrix.copy()
    shifted[:, 2] -= (x0, y0)
    warped = cv2.warpAffine(sprite, shifted, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    region = frame[y0:y1, x0:x1]
    behind = cv2.merge([255 - warped[..., 3]] * 3)
    region[:] = cv2.add(cv2.multiply(region, behind, scale=1 / 255), cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR))


def scene_frames(people: int, seconds: float, fps: float, size: tuple[int, int]):
    """Yield the scene's BGR frames of ``size`` with the first ``people`` people of :data:`CAST`.

    The camera moves every frame; the people's sway is redrawn every :data:`SWAY_EVERY` frames
    (it moves well under a pixel meanwhile), which keeps the whole 6 s video to well under a second.
    """
    check_people(people)
    cast = sorted(enumerate(CAST[:people]), key=lambda item: item[1].depth)
    sprites = [(k, person, *_cutout(person)) for k, person in cast]
    background = _background()
    world = background
    for index in range(int(round(seconds * fps))):
        t = index / fps
        if index % SWAY_EVERY == 0:
            world = background.copy()
            for k, person, sprite, face_xy in sprites:
                _paste(world, sprite, _place(person, face_xy, t, k))
        yield cv2.warpAffine(world, _camera(t, size), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def face_centres(people: int, index: int, fps: float, size: tuple[int, int]) -> np.ndarray:
    """Where the faces of frame ``index`` are: ``(people, 3)`` rows of frame x, y and face height."""
    check_people(people)
    t, drawn = index / fps, (index - index % SWAY_EVERY) / fps
    camera = np.vstack([_camera(t, size), [0, 0, 1]])
    rows = []
    for k, person in enumerate(CAST[:people]):
        _, face_xy = _cutout(person)
        x, y = (camera @ np.vstack([_place(person, face_xy, drawn, k), [0, 0, 1]]) @ [*face_xy, 1])[:2]
        rows.append((x, y, person.face * camera[0, 0]))
    return np.array(rows)
