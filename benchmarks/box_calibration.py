"""Measure where each detector's box sits on a face, so every backend cuts FER+'s own crop.

The crop path grows a "reference" box by the model's margin: for a model
trained on FER+'s 48 px crops that margin is 0.1 per side, because the Haar
cascade's box covers 83% of a FER+ image's side (the reference is Haar's box).
For another backend to cut the same crop, its box is mapped to that reference
(``BOX_CALIBRATION`` in ``aidentify/faces/crop.py``). This script measures the
mapping on FER+ Valid faces, where the right crop is known exactly: each 48 px
face is enlarged 3x (144 px) and framed by 72 px of replicated border, so the
ideal crop is the original image and the ideal reference box is its central
120 px (144 / 1.2). For every face a backend finds, it records the reference
side over the backend's box side and the centre offsets in units of the
backend's side, and prints their medians and the scale's quartiles (Haar
included as a check: its scale should be near 1).

    .venv/bin/python benchmarks/box_calibration.py [--archive ../shared/datasets/ferplus-trainvalid.zip] [--limit 1500]
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

from aidentify.config import FaceDetectorSettings
from aidentify.faces.detector import make_detector


def framed_faces(archive: Path, limit: int):
    """Yield FER+ Valid faces as 288x288 BGR images (48 px enlarged 3x, 72 px border)."""
    with zipfile.ZipFile(archive) as zf:
        names = sorted(n for n in zf.namelist() if "FER2013Valid/" in n and n.endswith(".png"))[:limit]
        for name in names:
            gray = cv2.imdecode(np.frombuffer(zf.read(name), np.uint8), cv2.IMREAD_GRAYSCALE)
            big = cv2.resize(gray, (144, 144), interpolation=cv2.INTER_CUBIC)
            framed = cv2.copyMakeBorder(big, 72, 72, 72, 72, cv2.BORDER_REPLICATE)
            yield cv2.cvtColor(framed, cv2.COLOR_GRAY2BGR)


# The framed face's ideal reference box: the 144 px FER+ crop at (72, 72) shrunk by the 0.1 margin per side.
IDEAL_SIDE = 144 / 1.2
IDEAL_CENTRE = 72 + 144 / 2


def calibrate(backend: str, archive: Path, limit: int) -> tuple[np.ndarray, int]:
    """``(K, 3)`` rows of (scale, shift x, shift y) for the faces the backend found exactly once."""
    detector = make_detector(FaceDetectorSettings(detector=backend))
    rows, seen = [], 0
    for image in framed_faces(archive, limit):
        seen += 1
        found = detector.detect(image)
        if len(found) != 1:
            continue
        x, y, w, h = found.boxes[0]
        side = max(w, h)
        rows.append((IDEAL_SIDE / side, (IDEAL_CENTRE - x - w / 2) / side, (IDEAL_CENTRE - y - h / 2) / side))
    return np.array(rows).reshape(-1, 3), seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared/datasets/ferplus-trainvalid.zip")
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--backends", nargs="+", default=["haar", "blazeface", "mtcnn"])
    args = parser.parse_args()
    if not args.archive.is_file():
        print(f"error: {args.archive} not found; pass --archive with the FER+ image archive", file=sys.stderr)
        return 1
    print("| backend | faces found once | scale | shift x | shift y | scale IQR |")
    print("|---|---:|---:|---:|---:|---|")
    for backend in args.backends:
        rows, seen = calibrate(backend, args.archive, args.limit)
        if not len(rows):
            print(f"| {backend} | 0 of {seen} | – | – | – | – |")
            continue
        median = np.median(rows, axis=0)
        q1, q3 = np.percentile(rows[:, 0], [25, 75])
        print(f"| {backend} | {len(rows)} of {seen} | {median[0]:.3f} | {median[1]:+.3f} | {median[2]:+.3f} "
              f"| {q1:.3f}–{q3:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
