"""Measure how each detector's box sits on a face relative to the Haar cascade's box.

The crop margins AIdentify uses (``prepare``'s ``faces.margin``, the FER+
margin of 0.1 in ``live``) were measured against Haar boxes. For the crop path
to cut the same crop whichever detector found the face, every backend's box is
mapped to the Haar box of the same face (``BOX_CALIBRATION`` in
``aidentify/faces/crop.py``). This script measures that mapping on FER+ Valid
faces: each 48 px face is enlarged 3x and framed with 50% replicated border so
every detector sees a whole head; where Haar and the backend both find exactly
one face, it records Haar's side / the backend's side and the centre offsets
in units of the backend's side, and prints their medians (and quartiles).

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


def calibrate(backend: str, archive: Path, limit: int) -> tuple[np.ndarray, int]:
    """``(K, 3)`` rows of (scale, shift x, shift y) for the faces both detectors found once."""
    haar = make_detector(FaceDetectorSettings(detector="haar"))
    other = make_detector(FaceDetectorSettings(detector=backend))
    rows, seen = [], 0
    for image in framed_faces(archive, limit):
        seen += 1
        ref, found = haar.detect(image), other.detect(image)
        if len(ref) != 1 or len(found) != 1:
            continue
        (hx, hy, hw, hh), (bx, by, bw, bh) = ref.boxes[0], found.boxes[0]
        side = max(bw, bh)
        rows.append((max(hw, hh) / side, (hx + hw / 2 - bx - bw / 2) / side, (hy + hh / 2 - by - bh / 2) / side))
    return np.array(rows).reshape(-1, 3), seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared/datasets/ferplus-trainvalid.zip")
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--backends", nargs="+", default=["blazeface", "mtcnn"])
    args = parser.parse_args()
    if not args.archive.is_file():
        print(f"error: {args.archive} not found; pass --archive with the FER+ image archive", file=sys.stderr)
        return 1
    print("| backend | faces (both found one) | scale | shift x | shift y | scale IQR |")
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
