"""Face detectors on real, hand-annotated photos: recall and precision by face size, and speed.

Runs every backend (Haar, BlazeFace, MTCNN)
at its default settings over a face set laid out as ``images/`` and
``boxes.csv`` (``image,x,y,w,h,ignore``; the WIDER FACE dev photos in
``../shared/facesets/dev`` by default; never commit them), and prints one
markdown row per backend:

- recall at IoU >= 0.5 over all faces and per size bucket (face size = the
  annotated box's longer side: < 32, 32-96, > 96 px);
- precision and false faces per photo over all faces and over faces >= 32 px;
- ms per photo (these are ~1024 px) and ms per 640x480 frame (the photo's
  centre), median of the runs, 2 threads.

Matching follows the face set's ``score.py`` (greedy by score; ``ignore=1``
faces count neither way); for a size range, faces outside it are treated as
ignored, and an unmatched detection is false in the range its own size falls in.
``--predictions DIR`` also writes each backend's ``image,x,y,w,h,score`` CSV for
``score.py``.

    .venv/bin/python benchmarks/detect.py [--faceset ../shared/facesets/dev] [--backends haar blazeface mtcnn]
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from aidentify.config import FaceDetectorSettings
from aidentify.faces.boxes import iou_matrix
from aidentify.faces.detector import make_detector

BUCKETS = {"all": (0, np.inf), "<32": (0, 32), "32-96": (32, 96.0001), ">96": (96.0001, np.inf),
           ">=32": (32, np.inf)}


def read_truth(path: Path) -> dict[str, list[tuple[np.ndarray, bool]]]:
    truth: dict[str, list[tuple[np.ndarray, bool]]] = defaultdict(list)
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            box = np.array([float(row[k]) for k in "xywh"])
            truth[row["image"]].append((box, int(float(row["ignore"])) == 1))
    return truth


def match(truth: list[tuple[np.ndarray, bool]], boxes: np.ndarray, scores: np.ndarray,
          low: float, high: float, iou: float = 0.5) -> tuple[int, int, int]:
    """(hits, misses, false faces) in the size range [low, high) for one photo."""
    sizes = [max(b[2], b[3]) for b, _ in truth]
    counted = [not ignored and low <= s < high for (_, ignored), s in zip(truth, sizes)]
    gt = np.array([b for b, _ in truth]).reshape(-1, 4)
    overlaps = iou_matrix(boxes, gt) if len(gt) else np.zeros((len(boxes), 0))
    matched = [False] * len(truth)
    hits = false = 0
    for p in np.argsort(-scores, kind="stable"):
        free = [i for i in range(len(truth)) if counted[i] and not matched[i]]
        best = max(free, key=lambda i: overlaps[p, i], default=None)
        if best is not None and overlaps[p, best] >= iou:
            matched[best] = True
            hits += 1
        elif any(overlaps[p, i] >= iou for i in range(len(truth)) if not counted[i]):
            continue  # on an ignored face or a face of another size: neither way
        elif low <= max(boxes[p, 2], boxes[p, 3]) < high:
            false += 1
    return hits, sum(counted) - hits, false


def run_backend(name: str, faceset: Path, truth: dict, out: Path | None) -> dict:
    settings = FaceDetectorSettings(detector=name)
    detector = make_detector(settings, "still")
    totals = {bucket: [0, 0, 0] for bucket in BUCKETS}
    photo_ms, frame_ms, rows = [], [], []
    for image_name in sorted(truth):
        image = cv2.imread(str(faceset / "images" / image_name), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {faceset / 'images' / image_name}")
        start = time.perf_counter()
        faces = detector.detect(image)
        photo_ms.append((time.perf_counter() - start) * 1000)
        frame_ms.append(time_frame(detector, image))
        for bucket, (low, high) in BUCKETS.items():
            for i, value in enumerate(match(truth[image_name], faces.boxes, faces.scores, low, high)):
                totals[bucket][i] += value
        rows += [(image_name, *np.round(b, 1), round(float(s), 4)) for b, s in zip(faces.boxes, faces.scores)]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / f"{name}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([("image", "x", "y", "w", "h", "score"), *rows])
    return {"totals": totals, "photo_ms": statistics.median(photo_ms), "frame_ms": statistics.median(frame_ms),
            "photos": len(truth)}


def time_frame(detector, image: np.ndarray) -> float:
    """ms for one 640x480 frame cut from the photo's centre (enlarged first if the photo is smaller)."""
    height, width = image.shape[:2]
    if width < 640 or height < 480:
        image = cv2.resize(image, None, fx=max(640 / width, 480 / height), fy=max(640 / width, 480 / height))
        height, width = image.shape[:2]
    y0, x0 = (height - 480) // 2, (width - 640) // 2
    frame = np.ascontiguousarray(image[y0:y0 + 480, x0:x0 + 640])
    start = time.perf_counter()
    detector.detect(frame)
    return (time.perf_counter() - start) * 1000


def table_row(name: str, result: dict) -> str:
    t, photos = result["totals"], result["photos"]

    def recall(bucket):
        hits, misses, _ = t[bucket]
        return f"{hits / (hits + misses):.2f}" if hits + misses else "–"

    def precision(bucket):
        hits, _, false = t[bucket]
        return f"{hits / (hits + false):.2f}" if hits + false else "–"

    cells = [recall(b) for b in ("all", "<32", "32-96", ">96", ">=32")]
    cells += [precision("all"), precision(">=32"), f"{t['all'][2] / photos:.2f}", f"{t['>=32'][2] / photos:.2f}",
              f"{result['photo_ms']:.0f}", f"{result['frame_ms']:.0f}"]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faceset", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/facesets/dev")
    parser.add_argument("--backends", nargs="+", default=["haar", "blazeface", "mtcnn"])
    parser.add_argument("--predictions", type=Path, default=None, help="write each backend's predictions CSV here")
    args = parser.parse_args()
    if not (args.faceset / "boxes.csv").is_file():
        print(f"error: no boxes.csv in {args.faceset}; pass --faceset DIR", file=sys.stderr)
        return 1
    truth = read_truth(args.faceset / "boxes.csv")
    backends = args.backends
    counted = sum(not ignored for faces in truth.values() for _, ignored in faces)
    print(f"{len(truth)} photos, {counted} faces counted; {platform.processor() or platform.machine()}, 2 threads")
    print("| detector | recall all | < 32 px | 32-96 px | > 96 px | >= 32 px | precision all | precision >= 32 px "
          "| false/photo all | false/photo >= 32 px | ms/photo | ms/640x480 |")
    print("|---|" + "---:|" * 11)
    for name in backends:
        print(table_row(name, run_backend(name, args.faceset, truth, args.predictions)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
