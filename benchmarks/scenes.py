"""Test videos with known faces for the live and tracking benchmarks, and how found boxes are scored.

Videos are 640x480 and made from real photos: camera windows panning and zooming over
photos of ``../shared/facesets/dev`` (WIDER FACE, annotated boxes; read at run time,
never committed), and scikit-image's astronaut moved over a faceless photo (leaving
at an edge, or gone for a while). Every frame comes with its truth: the faces that
count (wholly inside, big enough), each with an identity that stays the same for the
same person across frames, and neutral faces that count neither way.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

# The six-dancer photo of the dev set and the camera window over it (photo pixels): every face stays
# in view while the window pans and zooms between 820 and 960 px wide (faces 45-64 px tall at 640x480).
SIX_FACE_PHOTO = "4_Dancing_Dancing_4_240.jpg"
WINDOW_WIDTHS = (820, 960)
# Harder scenes, one after another (cuts between them): group photos with turned, tilted and partly hidden
# faces, 4-8 annotated faces of 40-93 px each; Haar finds 0 to 5 of them in the photo.
GROUP_PHOTOS = ("4_Dancing_Dancing_4_84.jpg", "20_Family_Group_Family_Group_20_411.jpg",
                "0_Parade_marchingband_1_147.jpg", "13_Interview_Interview_Sequences_13_89.jpg",
                "19_Couple_Couple_19_743.jpg", "4_Dancing_Dancing_4_156.jpg")
# The astronaut's face on skimage.data.astronaut(), marked by hand (x, y, w, h), as in tests/conftest.py.
ASTRONAUT_FACE = (178.0, 76.0, 92.0, 106.0)
# The part of the astronaut photo that is pasted as a moving head (x0, y0, x1, y1): face and some margin.
ASTRONAUT_HEAD = (140, 30, 310, 230)


class FrameTruth(NamedTuple):
    """One frame's faces: ``counted`` ``(N, 4)`` boxes with their ``ids`` ``(N,)``, and ``neutral`` boxes."""

    counted: np.ndarray
    neutral: np.ndarray
    ids: np.ndarray


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame OpenCV decodes from the video at ``path``."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def decode_ms(path: Path) -> float:
    """Milliseconds to decode one frame of the video (the capture stage of a file)."""
    start = time.perf_counter()
    n = len(read_frames(path))
    return (time.perf_counter() - start) * 1000 / n


def read_boxes(faceset: Path, photo: str) -> tuple[np.ndarray, np.ndarray]:
    """The photo's annotated faces as ``(N, 4)`` boxes and ``(N,)`` ignore flags."""
    with open(faceset / "boxes.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["image"] == photo]
    return (np.array([[float(r[k]) for k in "xywh"] for r in rows]).reshape(-1, 4),
            np.array([r["ignore"] == "1" for r in rows], dtype=bool))


def pan_and_zoom(photo: np.ndarray, boxes: np.ndarray, ignore: np.ndarray, widths: tuple[float, float],
                 frames: int, fps: float, min_face: float = 40):
    """Yield (640x480 frame, :class:`FrameTruth`): a camera window panning and zooming over ``photo``.

    The window is centred on the counted faces and 4:3; a face counts in a frame only when
    it is wholly inside it and at least ``min_face`` px (live's ``video_min_face``); ignored,
    smaller and half-visible faces are neutral: neither hit nor false. Ids are the faces'
    row numbers in ``boxes``.
    """
    height, width = photo.shape[:2]
    counted = boxes[~ignore]
    centre_x = (counted[:, 0].min() + (counted[:, 0] + counted[:, 2]).max()) / 2
    centre_y = (counted[:, 1].min() + (counted[:, 1] + counted[:, 3]).max()) / 2
    for index in range(frames):
        t = index / fps
        window_w = min(widths[0] + (widths[1] - widths[0]) * (0.5 + 0.5 * math.sin(0.7 * t)), width,
                       height * 4 / 3)
        window_h = window_w * 0.75
        x0 = float(np.clip(centre_x - window_w / 2 + 0.03 * window_w * math.sin(0.5 * t), 0, width - window_w))
        y0 = float(np.clip(centre_y - window_h / 2 + 0.03 * window_h * math.sin(0.9 * t), 0, height - window_h))
        scale = 640 / window_w
        affine = np.float32([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
        frame = cv2.warpAffine(photo, affine, (640, 480), flags=cv2.INTER_AREA)
        moved = np.column_stack([(boxes[:, 0] - x0) * scale, (boxes[:, 1] - y0) * scale, boxes[:, 2:] * scale])
        counts = wholly_inside(moved, 640, 480) & ~ignore & (moved[:, 2:].max(axis=1) >= min_face)
        yield frame, FrameTruth(moved[counts], moved[~counts], np.flatnonzero(counts))


def wholly_inside(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(N,)`` flags: the ``(x, y, w, h)`` box lies wholly inside a ``width`` x ``height`` frame."""
    return ((boxes[:, 0] >= 0) & (boxes[:, 1] >= 0) & (boxes[:, 0] + boxes[:, 2] <= width)
            & (boxes[:, 1] + boxes[:, 3] <= height))


def faceset_video(faceset: Path, path: Path, photos: list[tuple[str, tuple[float, float] | None]], seconds: float,
                  fps: float = 30.0) -> tuple[Path, list[FrameTruth]]:
    """Write a 640x480 video of pan-and-zoom scenes over dev photos; return it and each frame's truth.

    ``photos`` pairs a photo with its window widths (photo pixels; None: 1.0-1.2x the span of its faces).
    Each scene lasts ``seconds / len(photos)``. Ids are unique across scenes (a cut shows new people).
    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    truth = []
    first_id = 0
    for name, widths in photos:
        photo = cv2.imread(str(faceset / "images" / name), cv2.IMREAD_COLOR)
        if photo is None:
            raise SystemExit(f"error: {faceset / 'images' / name} not found; pass --faceset DIR")
        boxes, ignore = read_boxes(faceset, name)
        if widths is None:
            counted = boxes[~ignore]
            span = max((counted[:, 0] + counted[:, 2]).max() - counted[:, 0].min(),
                       ((counted[:, 1] + counted[:, 3]).max() - counted[:, 1].min()) * 4 / 3)
            widths = (max(span * 1.1, 320), max(span * 1.3, 400))
        for frame, faces in pan_and_zoom(photo, boxes, ignore, widths, int(round(seconds / len(photos) * fps)), fps):
            writer.write(frame)
            truth.append(faces._replace(ids=faces.ids + first_id))
        first_id += len(boxes)
    writer.release()
    return path, truth


def faceless_background(width: int = 640, height: int = 480) -> np.ndarray:
    """A real photo with no face in it (scikit-image's coffee cup), ``height`` x ``width`` BGR."""
    from skimage import data

    return cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (width, height), interpolation=cv2.INTER_AREA)


def astronaut_head(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's head cut from its photo and resized by ``scale``: (BGR patch, face box in the patch)."""
    from skimage import data

    x0, y0, x1, y1 = ASTRONAUT_HEAD
    patch = cv2.cvtColor(data.astronaut()[y0:y1, x0:x1], cv2.COLOR_RGB2BGR)
    patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    fx, fy, fw, fh = ASTRONAUT_FACE
    return patch, np.array([fx - x0, fy - y0, fw, fh]) * scale


def paste(background: np.ndarray, patch: np.ndarray, x: float, y: float) -> np.ndarray:
    """A copy of ``background`` with ``patch`` pasted with its top-left at ``(x, y)``, cut at the frame's edges."""
    frame = background.copy()
    h, w = patch.shape[:2]
    x, y = int(round(x)), int(round(y))
    fx0, fy0 = max(x, 0), max(y, 0)
    fx1, fy1 = min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = patch[fy0 - y:fy1 - y, fx0 - x:fx1 - x]
    return frame


def face_truth(box: np.ndarray, person: int = 0, width: int = 640, height: int = 480) -> FrameTruth:
    """The truth of a frame with one face (id ``person``) at ``box``.

    The face counts when wholly inside the frame; while partly visible it is neutral, as its
    visible part (a box cut at the frame's edge, as live draws it, is not false).
    """
    box = np.asarray(box, dtype=float).reshape(1, 4)
    if wholly_inside(box, width, height)[0]:
        return FrameTruth(box, np.zeros((0, 4)), np.array([person]))
    x0, y0 = max(box[0, 0], 0), max(box[0, 1], 0)
    x1, y1 = min(box[0, 0] + box[0, 2], width), min(box[0, 1] + box[0, 3], height)
    visible = np.array([[x0, y0, x1 - x0, y1 - y0]]) if x1 > x0 and y1 > y0 else np.zeros((0, 4))
    return FrameTruth(np.zeros((0, 4)), visible, np.zeros(0, dtype=int))


def edge_exit_video(path: Path, fps: float = 30.0, scale: float = 0.8) -> tuple[Path, list[FrameTruth]]:
    """The astronaut leaving at each edge in turn (left, right, top, bottom) over a faceless photo.

    Per edge: 0.5 s still in the centre, 1 s gliding out through the edge, 1 s of background
    alone, then a cut back to the centre for the next edge. Returns the video and each frame's truth;
    each edge's face has its own id (a face back after a second away may fairly get a new track).
    """
    background = faceless_background()
    patch, face = astronaut_head(scale)
    ph, pw = patch.shape[:2]
    centre = np.array([320 - pw / 2, 240 - ph / 2])
    exits = {"left": (-pw - 20, centre[1]), "right": (660, centre[1]), "top": (centre[0], -ph - 20),
             "bottom": (centre[0], 500)}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    truth = []
    for person, target in enumerate(exits.values()):
        for index in range(int(2.5 * fps)):
            t = index / fps
            progress = float(np.clip((t - 0.5) / 1.0, 0, 1))
            x, y = centre + progress * (np.array(target) - centre)
            writer.write(paste(background, patch, x, y))
            truth.append(face_truth(face + [x, y, 0, 0], person))
        for _ in range(int(1.0 * fps)):
            writer.write(background)
            truth.append(face_truth(np.full(4, -1e4)))
    writer.release()
    return path, truth


def absent_video(path: Path, fps: float = 30.0, scale: float = 0.8, absent_s: float = 1.0) -> tuple[Path, list[FrameTruth]]:
    """The astronaut for 1 s, the faceless photo alone for ``absent_s``, the astronaut again for 1 s, drifting slowly."""
    background = faceless_background()
    patch, face = astronaut_head(scale)
    ph, pw = patch.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    truth = []
    total = int((2.0 + absent_s) * fps)
    for index in range(total):
        t = index / fps
        x, y = 320 - pw / 2 + 40 * math.sin(0.8 * t), 240 - ph / 2
        if 1.0 <= t < 1.0 + absent_s:
            writer.write(background)
            truth.append(face_truth(np.full(4, -1e4)))
        else:
            writer.write(paste(background, patch, x, y))
            truth.append(face_truth(face + [x, y, 0, 0]))
    writer.release()
    return path, truth


def match_faces(found: np.ndarray, truth: FrameTruth) -> tuple[list[tuple[int, int]], list[int]]:
    """Greedy one-to-one matching at IoU >= 0.5: ((found index, counted index) pairs, false found indices).

    A found box on a neutral face (ignored, small, or partly outside the frame) counts neither way.
    """
    from aidentify.faces.boxes import iou_matrix

    if len(found) == 0:
        return [], []
    pairs, unmatched = [], set(range(len(found)))
    if len(truth.counted):
        overlaps = iou_matrix(found, truth.counted)
        for _ in range(min(len(found), len(truth.counted))):
            i, j = np.unravel_index(np.argmax(overlaps), overlaps.shape)
            if overlaps[i, j] < 0.5:
                break
            pairs.append((int(i), int(j)))
            unmatched.discard(int(i))
            overlaps[i, :] = -1
            overlaps[:, j] = -1
    neutral = truth.neutral
    on_neutral = iou_matrix(found, neutral).max(axis=1) >= 0.5 if len(neutral) else np.zeros(len(found), bool)
    return pairs, sorted(i for i in unmatched if not on_neutral[i])


def count_faces(found: np.ndarray, truth: FrameTruth) -> tuple[int, int]:
    """(true faces found, false faces) in one frame (see :func:`match_faces`)."""
    pairs, false = match_faces(found, truth)
    return len(pairs), len(false)
