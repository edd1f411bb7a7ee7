"""Does turning each crop so the eyes are level help the emotion model on tilted faces?

FER+ Valid faces (the ``val`` split of a prepared FER+ set, 96 px crops) are
framed with 50% replicated border, turned by each test angle, and given to a
detector with eye keypoints (MTCNN, the default, or BlazeFace). Each face it finds is cut
twice through the crop path, plain (``face_crops``) and aligned
(``face_crops(..., eyes=...)``), and classified by the shipped model (one view,
int8, LiteRT). Printed per angle: faces found, accuracy of plain and aligned
crops on the same faces, and the ms an aligned crop costs over a plain one.

    .venv/bin/python benchmarks/alignment.py --data-dir data/prepared [--angles 0 15 -15 30 -30] [--limit 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from aidentify.config import FaceDetectorSettings
from aidentify.data.images import read_gray
from aidentify.data.manifest import absolute_paths, read_manifest
from aidentify.faces.crop import FERPLUS_CROP_MARGIN, face_crops
from aidentify.faces.detector import make_detector
from aidentify.inference.classify import load_classifier


def turned(gray: np.ndarray, angle: float) -> np.ndarray:
    """The face framed by half its side of replicated border on each side, turned ``angle`` degrees anticlockwise."""
    pad = gray.shape[0] // 2
    framed = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    centre = (framed.shape[1] / 2, framed.shape[0] / 2)
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
    return cv2.warpAffine(framed, rotation, framed.shape[::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def measure(paths: list[Path], labels: list[str], angle: float, detector, classifier, size: int) -> dict:
    index = {c: i for i, c in enumerate(classifier.info.classes)}
    truth, plain, aligned, plain_ms, aligned_ms = [], [], [], 0.0, 0.0
    for path, label in zip(paths, labels):
        gray = turned(read_gray(path), angle)
        faces = detector.detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)).largest_first(1)
        if not len(faces):
            continue
        t0 = time.perf_counter()
        plain.append(face_crops(gray, faces.boxes, detector.name, FERPLUS_CROP_MARGIN, size)[0])
        t1 = time.perf_counter()
        aligned.append(face_crops(gray, faces.boxes, detector.name, FERPLUS_CROP_MARGIN, size,
                                  eyes=faces.keypoints[:, :2])[0])
        t2 = time.perf_counter()
        plain_ms, aligned_ms = plain_ms + t1 - t0, aligned_ms + t2 - t1
        truth.append(index[label])
    truth_array = np.array(truth)
    accuracy = {}
    for name, crops in (("plain", plain), ("aligned", aligned)):
        probs = np.concatenate([classifier(np.stack(crops[i:i + 256])) for i in range(0, len(crops), 256)])
        accuracy[name] = float((probs.argmax(axis=1) == truth_array).mean())
    n = max(len(truth), 1)
    return {"found": len(truth), "of": len(paths), **accuracy,
            "extra_ms": (aligned_ms - plain_ms) * 1000 / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/prepared"))
    parser.add_argument("--angles", type=float, nargs="+", default=[0, 15, -15, 30, -30])
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--limit", type=int, default=0, help="first N Valid images (0 = all)")
    args = parser.parse_args()
    try:
        frame = read_manifest(args.data_dir, produced_by="prepare")
    except Exception as exc:  # noqa: BLE001 - a benchmark: say what is missing and stop
        print(f"error: {exc}", file=sys.stderr)
        return 1
    frame = frame[frame["split"] == "val"]
    if args.limit:
        frame = frame.head(args.limit)
    paths, labels = absolute_paths(frame, args.data_dir), list(frame["label"])
    detector = make_detector(FaceDetectorSettings(detector=args.detector))
    classifier = load_classifier(None)
    size = classifier.info.input_size
    print(f"FER+ Valid, {len(paths)} faces, detector {args.detector}, shipped model (one view)")
    print("| turned by | faces found | accuracy, plain crop | accuracy, aligned crop | aligned crop extra ms/face |")
    print("|---:|---:|---:|---:|---:|")
    for angle in args.angles:
        r = measure(paths, labels, angle, detector, classifier, size)
        print(f"| {angle:+.0f}° | {r['found']} of {r['of']} | {r['plain']:.4f} | {r['aligned']:.4f} | "
              f"{r['extra_ms']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
