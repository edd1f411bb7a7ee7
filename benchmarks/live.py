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
import csv
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# The six-dancer photo of the dev set and the camera window over it (photo pixels): every face stays
# in view while the window pans and zooms between 820 and 960 px wide (faces 45-64 px tall at 640x480).
SIX_FACE_PHOTO = "4_Dancing_Dancing_4_240.jpg"
WINDOW_WIDTHS = (820, 960)
# Harder scenes, one after another (cuts between them): group photos with turned, tilted and partly hidden
# faces, 4-8 annotated faces of 40-93 px each; Haar finds 0 to 5 of them in the photo.
GROUP_PHOTOS = ("4_Dancing_Dancing_4_84.jpg", "20_Family_Group_Family_Group_20_411.jpg",
                "0_Parade_marchingband_1_147.jpg", "13_Interview_Interview_Sequences_13_89.jpg",
                "19_Couple_Couple_19_743.jpg", "4_Dancing_Dancing_4_156.jpg")
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


def read_boxes(faceset: Path, photo: str) -> tuple[np.ndarray, np.ndarray]:
    """The photo's annotated faces as ``(N, 4)`` boxes and ``(N,)`` ignore flags."""
    with open(faceset / "boxes.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["image"] == photo]
    return (np.array([[float(r[k]) for k in "xywh"] for r in rows]).reshape(-1, 4),
            np.array([r["ignore"] == "1" for r in rows], dtype=bool))


def pan_and_zoom(photo: np.ndarray, boxes: np.ndarray, ignore: np.ndarray, widths: tuple[float, float],
                 frames: int, fps: float, min_face: float = 40):
    """Yield (640x480 frame, counted boxes, neutral boxes): a camera window panning and zooming over ``photo``.

    The window is centred on the counted faces and 4:3; a face counts in a frame only when
    it is wholly inside it and at least ``min_face`` px (live's ``video_min_face``); ignored,
    smaller and half-visible faces are neutral: neither hit nor false.
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
        inside = ((moved[:, 0] >= 0) & (moved[:, 1] >= 0) & (moved[:, 0] + moved[:, 2] <= 640)
                  & (moved[:, 1] + moved[:, 3] <= 480))
        counts = inside & ~ignore & (moved[:, 2:].max(axis=1) >= min_face)
        yield frame, moved[counts], moved[~counts]


def faceset_video(faceset: Path, path: Path, photos: list[tuple[str, tuple[float, float] | None]], seconds: float,
                  fps: float = 30.0) -> tuple[Path, list[tuple[np.ndarray, np.ndarray]]]:
    """Write a 640x480 video of pan-and-zoom scenes over dev photos; return it and each frame's truth.

    ``photos`` pairs a photo with its window widths (photo pixels; None: 1.0-1.2x the span of its faces).
    Each scene lasts ``seconds / len(photos)``.
    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    truth = []
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
        for frame, counted, neutral in pan_and_zoom(photo, boxes, ignore, widths,
                                                    int(round(seconds / len(photos) * fps)), fps):
            writer.write(frame)
            truth.append((counted, neutral))
    writer.release()
    return path, truth


def count_faces(found: np.ndarray, truth: tuple[np.ndarray, np.ndarray]) -> tuple[int, int]:
    """(true faces found, false faces) in one frame: greedy one-to-one matching at IoU >= 0.5.

    A detection on a neutral face (ignored, or partly outside the frame) counts neither way.
    """
    from aidentify.faces.boxes import iou_matrix

    counted, neutral = truth
    if len(found) == 0:
        return 0, 0
    overlaps = iou_matrix(found, counted)
    hits, unmatched = 0, set(range(len(found)))
    for _ in range(min(len(found), len(counted))):
        i, j = np.unravel_index(np.argmax(overlaps), overlaps.shape)
        if overlaps[i, j] < 0.5:
            break
        hits += 1
        unmatched.discard(int(i))
        overlaps[i, :] = -1
        overlaps[:, j] = -1
    on_neutral = iou_matrix(found, neutral).max(axis=1) >= 0.5 if len(neutral) else np.zeros(len(found), bool)
    return hits, sum(1 for i in unmatched if not on_neutral[i])


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
        present = np.mean([len(counted) for counted, _ in truth])
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
