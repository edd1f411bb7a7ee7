"""Size and speed of the annotated video: OpenCV's mp4v against H.264 (libx264 through PyAV).

Feeds the same frames (the demo scene, docs/live.md, with boxes drawn on every
face as ``live`` draws them) to each encoder ``live --output x.mp4`` can use and
reports the file size, the bit rate and the milliseconds spent encoding a frame.

    .venv/bin/python benchmarks/video_encoding.py [--seconds 6] [--width 640] [--height 480]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import cv2

from aidentify.live.demo import demo_frames
from aidentify.live.encode import H264_CRF, OpenCvEncoder, h264_available


def encoders(folder: Path, fps: float, size: tuple[int, int]):
    """(name, encoder, path) for every encoder measured."""
    from aidentify.live import encode

    chosen = [("OpenCV mp4v", OpenCvEncoder(folder / "mp4v.mp4", "mp4v", fps, size), folder / "mp4v.mp4")]
    if h264_available():
        for preset in ("ultrafast", "veryfast", "medium"):
            encode.H264_PRESET = preset
            path = folder / f"h264-{preset}.mp4"
            chosen.append((f"libx264 {preset}, CRF {H264_CRF}", encode.H264Encoder(path, fps, size), path))
        encode.H264_PRESET = "veryfast"
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    size = (args.width, args.height)
    print(f"{platform.processor() or platform.machine()}, {args.seconds:g} s of {size[0]}x{size[1]} "
          f"at {args.fps:g} frames/s (the demo scene, 4 people, boxes drawn)")
    with tempfile.TemporaryDirectory() as scratch:
        chosen = encoders(Path(scratch), args.fps, size)
        spent = [0.0] * len(chosen)
        frames = 0
        for frame in demo_frames(faces=4, seconds=args.seconds, fps=args.fps, size=size):
            cv2.rectangle(frame, (100, 100), (180, 200), (0, 200, 0), 2)  # an overlay's sharp edges
            cv2.putText(frame, "happiness 0.93 #2", (100, 92), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 0), 1)
            for i, (_, encoder, _) in enumerate(chosen):
                start = time.perf_counter()
                encoder.write(frame)
                spent[i] += time.perf_counter() - start
            frames += 1
        print("| encoder | MB | Mbit/s | ms per frame |")
        print("|---|---:|---:|---:|")
        for (name, encoder, path), seconds in zip(chosen, spent):
            start = time.perf_counter()
            encoder.release()
            seconds += time.perf_counter() - start
            mb = path.stat().st_size / 1e6
            print(f"| {name} | {mb:.2f} | {mb * 8 / args.seconds:.2f} | {seconds / frames * 1000:.2f} |")


if __name__ == "__main__":
    main()
