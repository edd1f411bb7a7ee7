"""Live frame rate, end to end and per stage, against the `fer` package on the same frames.

Decodes a 640x480 video of up to six people (the demo scene, built from photos
our dependencies ship; docs/live.md) and runs every frame through:

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


Faces found per frame are also measured where the truth is known: a 640x480
video made from a real photo of ``../shared/facesets/dev`` (six dancers, faces
52-64 px tall, WIDER FACE; read at run time, never committed), the camera
panning and zooming, every frame's annotated boxes moved with it. For each
detector backend (and fer) it reports faces found per frame (IoU >= 0.5 with
an annotated face), false faces per frame and frames/s.

    .venv/bin/python benchmarks/live.py [--faces 6] [--seconds 10] [--model PATH] [--faceset DIR]
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

from scenes import (GROUP_PHOTOS, SIX_FACE_PHOTO, WINDOW_WIDTHS, count_faces, decode_ms,  # noqa: E402
                    faceset_video, read_frames)


def run_aidentify(frames: list[np.ndarray], model: Path | None, truth: list | None = None,
                  **overrides) -> dict:
    from aidentify.config import LiveConfig
    from aidentify.inference.classify import load_classifier
    from aidentify.live.pipeline import STAGES, LivePipeline

    config = LiveConfig(model=model, **overrides)
    pipeline = LivePipeline(load_classifier(config.model, config.backend, config.threads), config)
    pipeline(frames[0])  # warm-up: first interpreter allocation
    pipeline = LivePipeline(pipeline.classifier, config, detector=pipeline.detector)
    totals = dict.fromkeys(STAGES, 0.0)
    faces = hits = false = 0
    start = time.perf_counter()
    for index, frame in enumerate(frames):
        _, result = pipeline(frame)
        faces += len(result.faces)
        for stage in STAGES:
            totals[stage] += result.timings[stage]
        if truth is not None:
            found = np.array([f.box for f in result.faces], dtype=float).reshape(-1, 4)
            h, f = count_faces(found, truth[index])
            hits, false = hits + h, false + f
    elapsed = time.perf_counter() - start
    n = len(frames)
    return {"ms": {k: v / n for k, v in totals.items()}, "process_ms": elapsed * 1000 / n,
            "faces": faces / n, "hits": hits / n, "false": false / n}


def run_fer(frames: list[np.ndarray], truth: list | None = None) -> dict | None:
    try:
        from fer.fer import FER
    except ImportError:
        print("fer is not installed (pip install --no-deps fer==25.10.3): baseline skipped", file=sys.stderr)
        return None
    detector = FER()  # Haar cascade, TFLite mini-Xception (its defaults)
    detector.detect_emotions(frames[0])
    faces = hits = false = 0
    detect = classify = draw = 0.0
    for index, frame in enumerate(frames):
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
        if truth is not None:
            h, f = count_faces(np.array([face["box"] for face in found], dtype=float).reshape(-1, 4), truth[index])
            hits, false = hits + h, false + f
        detect, classify, draw = detect + t1 - t0, classify + t2 - t1, draw + t3 - t2
    n = len(frames)
    return {"process_ms": (detect + classify + draw) * 1000 / n, "faces": faces / n, "hits": hits / n,
            "false": false / n, "ms": {"detect": detect * 1000 / n, "classify": classify * 1000 / n,
                                       "draw": draw * 1000 / n}}


def speed_table(args) -> None:
    """Frames/s and stage costs on the demo video, default settings against detection every frame, views and fer."""
    from aidentify.inference.modelfile import default_model_path, read_metadata
    from aidentify.live.demo import write_demo_video

    with tempfile.TemporaryDirectory() as scratch:
        video = write_demo_video(Path(scratch) / "bench.mp4", faces=args.faces, seconds=args.seconds)
        capture_ms = decode_ms(video)
        frames = read_frames(video)
    print(f"demo video: {len(frames)} frames of 640x480 with {args.faces} faces; decoding {capture_ms:.1f} ms/frame")
    rows = []
    views = read_metadata(default_model_path())["provenance"]["test_time_views"]  # the model card's set
    for name, overrides in (("AIdentify (default: detect every 3rd frame)", {}),
                            ("AIdentify (detect every frame)", {"detect": {"every": 1}}),
                            ("AIdentify (10 test-time views per face)", views)):
        r = run_aidentify(frames, args.model, **overrides)
        rows.append((name, 1000 / (r["process_ms"] + capture_ms), r["faces"], capture_ms, r["ms"]["detect"],
                     r["ms"]["classify"], r["ms"]["draw"]))
    fer = run_fer([f.copy() for f in frames])
    if fer:
        rows.append(("fer 25.10.3 (Haar + mini-Xception TFLite)", 1000 / (fer["process_ms"] + capture_ms),
                     fer["faces"], capture_ms, fer["ms"]["detect"], fer["ms"]["classify"], fer["ms"]["draw"]))
    print("| pipeline | frames/s | faces/frame | decode ms | detect ms | classify ms | draw ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, fps, faces, cap, det, cls, drw in rows:
        cells = [f"{v:.1f}" for v in (cap, det, cls, drw)]
        print(f"| {name} | {fps:.1f} | {faces:.2f} | " + " | ".join(cells) + " |")


def recall_table(args) -> None:
    """Faces found and false faces per frame on videos made from dev photos, per detector backend and fer."""
    videos = (("six-dancer video", [(SIX_FACE_PHOTO, WINDOW_WIDTHS)]),
              ("group-photo video", [(name, None) for name in GROUP_PHOTOS]))
    for title, photos in videos:
        with tempfile.TemporaryDirectory() as scratch:
            video, truth = faceset_video(args.faceset, Path(scratch) / "scenes.mp4", photos, args.seconds)
            capture_ms = decode_ms(video)
            frames = read_frames(video)
        present = np.mean([len(t.counted) for t in truth])
        print(f"\n{title}: {len(frames)} frames of 640x480, {present:.2f} real faces per frame "
              f"({', '.join(name for name, _ in photos)})")
        print("| pipeline | faces found/frame | false faces/frame | frames/s | detect ms | classify ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for backend, every in (("mtcnn", 3), ("mtcnn", 1), ("blazeface", 3), ("blazeface", 1), ("haar", 3)):
            r = run_aidentify(frames, args.model, truth, detect={"detector": backend, "every": every})
            label = "default: detect every 3rd frame" if (backend, every) == ("mtcnn", 3) else f"detect every {every}"
            print(f"| AIdentify, {backend} ({label}) | {r['hits']:.2f} | {r['false']:.2f} | "
                  f"{1000 / (r['process_ms'] + capture_ms):.1f} | {r['ms']['detect']:.1f} | "
                  f"{r['ms']['classify']:.1f} |", flush=True)
        fer = run_fer([f.copy() for f in frames], truth)
        if fer:
            print(f"| fer 25.10.3 | {fer['hits']:.2f} | {fer['false']:.2f} | "
                  f"{1000 / (fer['process_ms'] + capture_ms):.1f} | {fer['ms']['detect']:.1f} | "
                  f"{fer['ms']['classify']:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--faceset", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared/facesets/dev")
    parser.add_argument("--only", choices=("speed", "recall"), default=None)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    if args.only != "recall":
        speed_table(args)
    if args.only != "speed":
        if (args.faceset / "boxes.csv").is_file():
            recall_table(args)
        else:
            print(f"no face set at {args.faceset}: faces-found table skipped (pass --faceset DIR)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
