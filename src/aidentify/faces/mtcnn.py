"""The MTCNN backend: Zhang et al.'s three-stage cascade (2016) on LiteRT, numpy in between.

Stages (Zhang, Zhang, Li and Qiao, "Joint Face Detection and Alignment using
Multi-task Cascaded Convolutional Networks", IEEE SPL 23(10), 2016), with the
exact box arithmetic of the ``mtcnn`` 1.0.0 package whose weights we run:

1. proposal: P-Net slides a 12 px window (stride 2) over an image pyramid that
   starts at ``12 / min_face`` and shrinks by ``scale_factor`` per level; each
   window's face probability above ``thresholds[0]`` gives a regressed box;
   NMS (IoU 0.5) per level, then 0.7 over all levels; boxes made square;
2. refinement: each box cut out and resized to 24 x 24 (bilinear, outside the
   image reads as grey), R-Net rescores (``thresholds[1]``) and regresses it;
   NMS 0.7; square again;
3. output: 48 x 48 cuts, O-Net rescores (``thresholds[2]``), regresses and
   places five keypoints; NMS 0.7 on intersection over the smaller box.

The networks are the package's, converted to ``.tflite`` by
:mod:`aidentify.faces.mtcnn_convert` and shipped in ``aidentify/assets/detectors/mtcnn/``
(provenance in ``detectors.json``); nothing here imports TensorFlow. Where we
differ from the package (boxes stay within IoU 0.85 of its on our test photos):

- NMS is the usual greedy one; the package drops every box that overlaps any
  better box, even one that was itself dropped;
- each pyramid level is area-averaged from the level before, not from the photo
  (4x cheaper; on WIDER dev photos fewer false faces at the same recall);
- the pyramid runs down to the photo's short side for any ``min_face``;
- the 24 and 48 px cuts are sampled with ``cv2.remap`` (1/32 px steps) where
  TensorFlow's ``crop_and_resize`` samples.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from aidentify.errors import DataError
from aidentify.faces.boxes import clip_boxes
from aidentify.faces.found import MTCNN_KEYPOINTS, Faces
from aidentify.faces.shipped import shipped_file
from aidentify.native_logs import native_stderr_silenced

CELL, STRIDE = 12, 2  # P-Net's window and step, pixels of a pyramid level
PNET_OVERLAP = CELL - STRIDE  # pixels two P-Net tiles share so that no window is lost
NMS_LEVEL, NMS_PROPOSALS, NMS_REFINE, NMS_OUTPUT = 0.5, 0.7, 0.7, 0.7  # the package's IoU limits
PNET_TILE = 512  # largest P-Net input side; bigger levels run in tiles (memory: ~200 bytes a pixel)
PNET_CACHE_PIXELS = 800_000  # input pixels of P-Net interpreters kept for the next image (~160 MB)
RNET_BATCH, ONET_BATCH = 256, 64  # most cuts per R-/O-Net call (memory: about 14 and 17 MB)
REMAP_BOXES = 512  # boxes cut per cv2.remap call (48 px cuts: 24,576 rows)


class LiteNet:
    """One ``.tflite`` network on LiteRT, an interpreter per input shape, least recently used dropped.

    Resizing a LiteRT input costs about as much as running it (XNNPACK plans
    every convolution again), so interpreters are kept per exact input shape
    while their input elements stay within ``cache_elements``. Outputs come back
    sorted by their last dimension (P-/R-Net: 2 probabilities, 4 box offsets;
    O-Net: 2, 4, 10 keypoint coordinates), which names them whatever order the
    converter left them in.
    """

    def __init__(self, path: Path, threads: int, cache_elements: int):
        self.path = Path(path)
        try:
            self.model = self.path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read the MTCNN network {self.path}: {exc.strerror}") from None
        self.threads = threads
        self.cache_elements = cache_elements
        self._interpreters: OrderedDict[tuple[int, ...], object] = OrderedDict()

    def _interpreter(self, shape: tuple[int, ...]):
        if shape in self._interpreters:
            self._interpreters.move_to_end(shape)
            return self._interpreters[shape]
        from ai_edge_litert.interpreter import Interpreter

        try:
            with native_stderr_silenced():  # LiteRT's "Created XNNPACK delegate" INFO line
                interpreter = Interpreter(model_content=self.model, num_threads=self.threads)
                interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(shape))
                interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise DataError(f"{self.path} cannot run on LiteRT: {exc}") from None
        self._interpreters[shape] = interpreter
        while len(self._interpreters) > 1 and sum(math.prod(s) for s in self._interpreters) > self.cache_elements:
            self._interpreters.popitem(last=False)
        return interpreter

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run on ``batch`` ``(N, H, W, 3) float32``; the outputs, sorted by last dimension."""
        interpreter = self._interpreter(tuple(batch.shape))
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.ascontiguousarray(batch, np.float32))
        interpreter.invoke()
        outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        return sorted(outputs, key=lambda output: output.shape[-1])

    def batched(self, patches: np.ndarray, largest: int) -> list[np.ndarray]:
        """Run on ``N >= 1`` patches ``(N, S, S, 3)`` in calls of power-of-two batch sizes.

        ``N`` is split into chunks of ``largest`` (a power of two) and the rest
        into its binary digits (70 = 64 + 4 + 2): no padded work, and at most
        ``log2(largest) + 1`` interpreters per network.
        """
        sizes = [largest] * (len(patches) // largest)
        rest = len(patches) % largest
        sizes += [1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1]
        chunks, start = [], 0
        for size in sizes:
            chunks.append(self(patches[start:start + size]))
            start += size
        return [np.concatenate(parts) for parts in zip(*chunks)]


# ---------------------------------------------------------------- pure steps, numpy only
def rgb_image(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` BGR or ``(H, W) uint8`` gray as the networks' colour order: ``(H, W, 3) uint8`` RGB.

    Raises ``ValueError`` for other shapes.
    """
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[:2])), cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB)
    raise ValueError(f"expected a (H, W, 3) BGR or (H, W) gray image, got shape {image.shape}")


def normalized(pixels: np.ndarray) -> np.ndarray:
    """Pixel values 0-255 as the networks were trained on them: ``(x - 127.5) / 128``, float32."""
    return (pixels.astype(np.float32) - 127.5) / 128.0


def shrink_factor(height: int, width: int, max_megapixels: float) -> float:
    """The factor in (0, 1] that brings an image down to ``max_megapixels`` (1.0 when it is smaller)."""
    return min(1.0, math.sqrt(max_megapixels * 1e6 / max(height * width, 1)))


def pyramid_scales(height: int, width: int, min_face: float, scale_factor: float,
                   largest: float = math.inf) -> list[float]:
    """P-Net's pyramid: ``12 / min_face`` (at most ``largest``) times powers of ``scale_factor``.

    ``min_face`` is in pixels of the ``height`` x ``width`` image; levels go on
    while one keeps P-Net's 12 px window. Unlike the package (whose level count
    ignores ``min_face``, so it stops early below ``min_face`` 20 and fails
    above about 40), every face from ``min_face`` up to the short side is covered.
    """
    scales, scale = [], min(CELL / min_face, largest)
    while min(int(height * scale), int(width * scale)) >= CELL:
        scales.append(scale)
        scale *= scale_factor
    return scales


def tile_origins(length: int, tile: int) -> tuple[list[int], int]:
    """Even start offsets and the common size of P-Net tiles covering ``length`` pixels.

    Neighbouring tiles overlap by :data:`PNET_OVERLAP` pixels, so every 12 px
    window at an even offset lies wholly inside one tile and P-Net's grid is the
    same as on the untiled level.
    """
    if length <= tile:
        return [0], length
    count = math.ceil((length - PNET_OVERLAP) / (tile - PNET_OVERLAP))
    size = math.ceil((length - PNET_OVERLAP) / count) + PNET_OVERLAP
    size += size % 2
    last = (length - size) // 2 * 2
    return sorted({min(i * (size - PNET_OVERLAP), last) for i in range(count)}), size


def grid_boxes(probs: np.ndarray, offsets: np.ndarray, scale: float, threshold: float):
    """P-Net's output grid ``(h, w)`` probabilities and ``(h, w, 4)`` offsets as image boxes.

    A cell ``(y, x)`` is the window from ``(2x + 1, 2y + 1)`` to ``(2x + 12, 2y + 12)``
    of a level shrunk by ``scale`` (the package's, and the original MATLAB code's,
    one-based corners); its offsets move each edge by a fraction of the 11 px side.
    Returns ``(N, 4) float64`` ``(x1, y1, x2, y2)`` in image pixels and ``(N,)``
    scores, best first, for cells whose probability exceeds ``threshold``.
    """
    ys, xs = np.nonzero(probs > threshold)
    scores = probs[ys, xs].astype(np.float64)
    corner = np.stack([xs, ys, xs, ys], axis=1) * STRIDE + np.array([1, 1, CELL, CELL])
    boxes = (corner + offsets[ys, xs].astype(np.float64) * (CELL - 1)) / scale
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]


def suppress(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Greedy NMS on ``(N, 4)`` ``(x1, y1, x2, y2)`` boxes; indices kept, best score first.

    Overlap is intersection over union (OpenCV's ``NMSBoxes``, C++), or over the
    smaller box's area when ``by_min`` (MTCNN's last stage, which drops a face
    box nested in another; few boxes get there, so numpy does it).
    """
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    sides = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    if not by_min:
        xywh = np.concatenate([boxes[:, :2], sides], axis=1)
        kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, threshold)
        return np.asarray(kept, dtype=np.int64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    areas = sides[:, 0] * sides[:, 1]
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0])
        height = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1])
        inter = np.clip(width, 0, None) * np.clip(height, 0, None)
        smaller = np.minimum(areas[best], areas[rest])
        order = rest[inter <= threshold * smaller]
    return np.array(keep, dtype=np.int64)


def squared(boxes: np.ndarray) -> np.ndarray:
    """``(x1, y1, x2, y2)`` boxes grown to squares of their longer side about the same centre."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    x1 = boxes[:, 0] + (boxes[:, 2] - boxes[:, 0] - side) / 2
    y1 = boxes[:, 1] + (boxes[:, 3] - boxes[:, 1] - side) / 2
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def regressed(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes with R-/O-Net's ``(N, 4)`` edge offsets applied (fractions of the box side + 1, as trained)."""
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + offsets.astype(np.float64) * np.stack([width, height, width, height], axis=1)


def crop_and_resize(pixels: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Bilinear ``size`` x ``size`` cuts of ``(x1, y1, x2, y2)`` boxes from ``(H, W, 3) uint8``.

    Samples where ``tf.image.crop_and_resize`` puts them as the package calls it
    (corners at ``x1 * (W - 1) / W``, spread evenly to the far corner), taken by
    one ``cv2.remap`` (1/32 px steps: within 0.03 of TensorFlow's values after
    normalising); samples outside the image read mid-grey, 127.5. Returns
    ``(N, size, size, 3) float32`` pixel values.
    """
    if len(boxes) > REMAP_BOXES:  # cv2.remap's output stays under 32767 rows
        return np.concatenate([crop_and_resize(pixels, boxes[start:start + REMAP_BOXES], size)
                               for start in range(0, len(boxes), REMAP_BOXES)])
    height, width = pixels.shape[:2]
    count = len(boxes)
    steps = np.arange(size, dtype=np.float64) / (size - 1)
    ys = (boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps) * (height - 1) / height
    xs = (boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps) * (width - 1) / width
    map_x = np.broadcast_to(xs[:, None, :], (count, size, size)).reshape(count * size, size).astype(np.float32)
    map_y = np.broadcast_to(ys[:, :, None], (count, size, size)).reshape(count * size, size).astype(np.float32)
    cuts = cv2.remap(pixels, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cuts = cuts.reshape(count, size, size, -1).astype(np.float32)
    inside = ((ys >= 0) & (ys <= height - 1))[:, :, None] & ((xs >= 0) & (xs <= width - 1))[:, None, :]
    cuts[~inside] = 127.5
    return cuts


def place_keypoints(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """O-Net's ``(N, 10)`` keypoints (5 x then 5 y, fractions of its input box) in image pixels, ``(N, 5, 2)``."""
    width = boxes[:, 2:3] - boxes[:, 0:1] + 1
    height = boxes[:, 3:4] - boxes[:, 1:2] + 1
    xs = width * points[:, :5] + boxes[:, 0:1] - 1
    ys = height * points[:, 5:] + boxes[:, 1:2] - 1
    return np.stack([xs, ys], axis=2).astype(np.float64)


# ---------------------------------------------------------------- the detector
class MtcnnDetector:
    """MTCNN behind the :class:`~aidentify.faces.detector.FaceDetector` interface, on LiteRT.

    ``settings`` is a :class:`aidentify.config.MtcnnSettings` (``thresholds`` of
    the three stages, pyramid ``scale_factor``, LiteRT ``threads``); ``min_face``
    is the smallest face side sought, in input-image pixels; images over
    ``max_megapixels`` are shrunk first (the smallest face found then grows with
    the photo). ``networks`` is a folder of ``{pnet,rnet,onet}.tflite`` to run
    instead of the shipped ones. Keypoints follow ``MTCNN_KEYPOINTS``. Raises
    ``DataError`` when a network file is missing or cannot run.
    """

    name = "mtcnn"

    def __init__(self, settings=None, min_face: int = 20, max_megapixels: float = 4.0,
                 networks: Path | None = None):
        if settings is None:
            from aidentify.config import MtcnnSettings

            settings = MtcnnSettings()
        self.thresholds = tuple(float(t) for t in settings.thresholds)
        self.scale_factor = float(settings.scale_factor)
        self.min_face = float(min_face)
        self.max_megapixels = float(max_megapixels)
        paths = {name: Path(networks) / f"{name}.tflite" if networks else shipped_file("mtcnn", f"{name}.tflite")
                 for name in ("pnet", "rnet", "onet")}
        self.pnet = LiteNet(paths["pnet"], settings.threads, PNET_CACHE_PIXELS * 3)
        self.rnet = LiteNet(paths["rnet"], settings.threads, 2 * RNET_BATCH * 24 * 24 * 3)
        self.onet = LiteNet(paths["onet"], settings.threads, 2 * ONET_BATCH * 48 * 48 * 3)

    def detect(self, image: np.ndarray) -> Faces:
        """Faces in a ``(H, W, 3) uint8`` BGR or ``(H, W) uint8`` gray image, best score first.

        Boxes ``(x, y, w, h)`` float64 in image pixels, cut to the image; scores
        O-Net's face probability; keypoints ``(N, 5, 2)`` (``MTCNN_KEYPOINTS``).
        """
        height, width = image.shape[:2]
        shrink = shrink_factor(height, width, self.max_megapixels)
        if shrink < 1.0:
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        picture = rgb_image(image)
        boxes = self.propose(picture, self.min_face * shrink)
        if len(boxes):
            boxes = self.refine(picture, boxes)
        if not len(boxes):
            return Faces.empty(len(MTCNN_KEYPOINTS))
        boxes, scores, points = self.output(picture, boxes)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1) / shrink
        return Faces(clip_boxes(xywh, width, height), scores, points / shrink)

    def propose(self, picture: np.ndarray, min_face: float) -> np.ndarray:
        """Stage 1: square ``(N, 4)`` ``(x1, y1, x2, y2)`` candidates from P-Net over ``(H, W, 3) uint8`` RGB."""
        height, width = picture.shape[:2]
        found_boxes, found_scores = [], []
        level = picture
        # no level above max_megapixels: min_face under 12 px enlarges small photos only
        largest = math.sqrt(self.max_megapixels * 1e6 / (height * width))
        for scale in pyramid_scales(height, width, min_face, self.scale_factor, largest):
            # each level from the one before: area averaging, a fraction of the cost from the photo
            level = cv2.resize(level, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
            probs, offsets = self.run_pnet(normalized(level))
            boxes, scores = grid_boxes(probs, offsets, scale, self.thresholds[0])
            keep = suppress(boxes, scores, NMS_LEVEL)
            found_boxes.append(boxes[keep])
            found_scores.append(scores[keep])
        if not found_boxes:
            return np.zeros((0, 4))
        boxes, scores = np.concatenate(found_boxes), np.concatenate(found_scores)
        return squared(boxes[suppress(boxes, scores, NMS_PROPOSALS)])

    def run_pnet(self, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P-Net on one pyramid level ``(h, w, 3)``, in tiles of at most :data:`PNET_TILE` px a side.

        Returns the face probabilities ``(h', w')`` and box offsets ``(h', w', 4)``
        of the level's whole grid, ``h' = ceil((h - 2) / 2) - 4``.
        """
        height, width = level.shape[:2]
        rows, tile_h = tile_origins(height, PNET_TILE)
        cols, tile_w = tile_origins(width, PNET_TILE)
        grid = (math.ceil((height - 2) / 2) - 4, math.ceil((width - 2) / 2) - 4)
        probs, offsets = np.zeros(grid, np.float32), np.zeros((*grid, 4), np.float32)
        for top in rows:
            for left in cols:
                tile = level[None, top:top + tile_h, left:left + tile_w]
                tile_probs, tile_offsets = self.pnet(tile)
                gy, gx = top // 2, left // 2
                cells_y, cells_x = tile_probs.shape[1:3]
                probs[gy:gy + cells_y, gx:gx + cells_x] = tile_probs[0, :, :, 1]
                offsets[gy:gy + cells_y, gx:gx + cells_x] = tile_offsets[0]
        return probs, offsets

    def refine(self, picture: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net keeps, moves and squares the candidates worth O-Net's time."""
        probs, offsets = self.rnet.batched(normalized(crop_and_resize(picture, boxes, 24)), RNET_BATCH)
        scores = probs[:, 1].astype(np.float64)
        wanted = scores > self.thresholds[1]
        boxes, scores = regressed(boxes[wanted], offsets[wanted]), scores[wanted]
        return squared(boxes[suppress(boxes, scores, NMS_REFINE)])

    def output(self, picture: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 3: O-Net's faces as ``(x1, y1, x2, y2)`` boxes, scores and ``(N, 5, 2)`` keypoints."""
        probs, offsets, points = self.onet.batched(normalized(crop_and_resize(picture, boxes, 48)), ONET_BATCH)
        scores = probs[:, 1].astype(np.float64)
        wanted = scores > self.thresholds[2]
        points = place_keypoints(points[wanted], boxes[wanted])
        boxes, scores = regressed(boxes[wanted], offsets[wanted]), scores[wanted]
        keep = suppress(boxes, scores, NMS_OUTPUT, by_min=True)
        return boxes[keep], scores[keep], points[keep]
