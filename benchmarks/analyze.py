"""Study throughput: `aidentify analyze` on 1 and 2 local workers and a 2-worker Dask LocalCluster, against
one `live` process on the same recording and the `fer` package's `Video.analyze`; worker memory over a
10-minute recording; aggregation time for 1,000 synthetic respondents x 60 s.

Recordings are webcam-like: 640x480 at 30 frames/s, one real face (scikit-image's astronaut or one of
its LFW faces, `aidentify.faces.samples`) swaying and leaning in front of scikit-learn's Summer Palace
photo, each respondent a different face. Nothing is downloaded. Run from the repository root:

    .venv/bin/python benchmarks/analyze.py                  # 10 recordings of 33 s, all measurements
    .venv/bin/python benchmarks/analyze.py --only speed --recordings 4 --seconds 20

Install the `fer` baseline with `pip install --no-deps fer==25.10.3` (what `make bench` does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

SIZE = (640, 480)
FPS = 30.0


def write_recording(path: Path, face: int, seconds: float, seed: int = 0) -> Path:
    """One respondent: face sprite ``face`` swaying on the background, ``seconds`` long (MJPG .avi)."""
    from sklearn.datasets import load_sample_image

    from aidentify.faces.samples import face_sprites

    background = cv2.cvtColor(load_sample_image("china.jpg"), cv2.COLOR_RGB2BGR)
    background = cv2.GaussianBlur(cv2.resize(background, SIZE, interpolation=cv2.INTER_AREA), (9, 9), 0)
    sprite = face_sprites(face + 1, side=170)[face]
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for i in range(int(seconds * FPS)):
        t = i / FPS
        scale = 1.0 + 0.12 * np.sin(0.2 * t + phase[0])  # leaning in and out
        side = int(170 * scale)
        head = cv2.resize(sprite, (side, side), interpolation=cv2.INTER_LINEAR)
        x = int(SIZE[0] / 2 - side / 2 + 40 * np.sin(0.5 * t + phase[1]))
        y = int(SIZE[1] / 2 - side / 2 - 30 + 15 * np.sin(0.7 * t + phase[2]))
        frame = background.copy()
        frame[y:y + side, x:x + side] = head
        writer.write(frame)
    writer.release()
    return path


def analyze_run(recordings: list[Path], out: Path, *extra: str) -> tuple[float, int]:
    """Wall seconds of `aidentify analyze` over ``recordings`` and the frames it analysed."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aidentify", "analyze", *map(str, recordings), "--out", str(out),
                           *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"analyze failed:\n{done.stdout}\n{done.stderr}")
    return seconds, json.loads((out / "study.json").read_text())["counts"]["frames"]


def live_run(recording: Path, folder: Path) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aidentify", "live", "--source", str(recording), "--no-window",
                           "--timeline", str(folder / "live.csv")], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"live failed:\n{done.stderr}")
    frames = int(cv2.VideoCapture(str(recording)).get(cv2.CAP_PROP_FRAME_COUNT))
    return time.perf_counter() - start, frames


def fer_run(recording: Path, folder: Path) -> tuple[float, int] | None:
    """`fer`'s Video.analyze on one recording (its own MTCNN off: OpenCV's Haar cascade, its default)."""
    try:
        from fer import FER
        from fer.classes import Video
    except ImportError:
        try:
            from fer.classes import Video
            from fer.fer import FER
        except ImportError:
            print("fer is not installed (pip install --no-deps fer==25.10.3): baseline skipped", file=sys.stderr)
            return None
    cwd = os.getcwd()
    os.chdir(folder)  # fer writes an output/ folder where it runs
    try:
        start = time.perf_counter()
        video = Video(str(recording), outdir=str(folder / "fer"))
        rows = video.analyze(FER(), display=False, output="pandas", save_frames=False, save_video=False,
                             annotate_frames=False, zip_images=False)
        return time.perf_counter() - start, len(rows)
    finally:
        os.chdir(cwd)


def measure_speed(args, folder: Path) -> None:
    recordings = [write_recording(folder / f"r{i:02d}.avi", i % 13, args.seconds, seed=i)
                  for i in range(args.recordings)]
    frames_each = int(args.seconds * FPS)
    print(f"\n{args.recordings} recordings, 640x480, {frames_each} frames each ({args.seconds:g} s at 30 frames/s); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("| run | wall s | frames/s | x one live process | real-time factor |")
    print("|---|---:|---:|---:|---:|")
    live_s, live_frames = live_run(recordings[0], folder)
    live_fps = live_frames / live_s
    rows = [("one `live` process, one recording", live_s, live_frames)]
    for workers in (1, 2):
        seconds, frames = analyze_run(recordings, folder / f"study{workers}", "--workers", str(workers))
        rows.append((f"`analyze --workers {workers}`, whole study", seconds, frames))
    try:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            seconds, frames = analyze_run(recordings, folder / "study-dask", "--cluster", cluster.scheduler_address)
        rows.append(("`analyze --cluster` (2-worker Dask LocalCluster), whole study", seconds, frames))
    except ImportError:
        print("distributed is not installed (pip install 'aidentify[cluster]'): Dask run skipped", file=sys.stderr)
    fer = fer_run(recordings[0], folder) if not args.no_fer else None
    if fer:
        rows.append(("`fer` 25.10.3 `Video.analyze`, one recording", fer[0], fer[1]))
    for name, seconds, frames in rows:
        fps = frames / seconds
        print(f"| {name} | {seconds:.1f} | {fps:.1f} | {fps / live_fps:.2f} | {fps / FPS:.1f} |")
    print("\n(wall time includes each command's start: Python, model and detector loading; the real-time "
          "factor is frames/s over the recordings' 30 frames/s)")


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure_memory(args, folder: Path) -> None:
    """Worker RSS sampled through a 10-minute recording (the worker's PID from its progress file)."""
    recording = write_recording(folder / "ten.avi", 0, args.memory_seconds)
    out = folder / "memory"
    samples: list[tuple[int, float]] = []
    stop = threading.Event()

    def sample() -> None:
        progress = out / "recordings" / "ten" / ".progress.json"
        while not stop.is_set():
            try:
                state = json.loads(progress.read_text())
            except (OSError, ValueError):
                time.sleep(0.2)
                continue
            rss = _rss_mib(state["pid"])
            if rss is not None:
                samples.append((state["frames"], rss))
            time.sleep(1.0)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    seconds, frames = analyze_run([recording], out, "--workers", "1")
    stop.set()
    watcher.join()
    if len(samples) < 4:
        print("too few memory samples")
        return
    total = frames
    early = [rss for f, rss in samples if 0.05 * total <= f <= 0.15 * total] or [samples[1][1]]
    late = [rss for f, rss in samples if f >= 0.9 * total] or [samples[-1][1]]
    growth = (max(late) - max(early)) / max(early) * 100
    print(f"\nworker RSS over a {args.memory_seconds / 60:g}-minute recording ({total} frames, {seconds:.0f} s): "
          f"{max(early):.0f} MiB at 5-15% of its frames, {max(late):.0f} MiB at 90-100% "
          f"({growth:+.1f}%), peak {max(r for _, r in samples):.0f} MiB over {len(samples)} samples")


def measure_aggregation(folder: Path) -> None:
    here = Path(__file__).resolve().parent
    done = subprocess.run([sys.executable, str(here / "aggregate.py"), "--respondents", "1000", "--seconds", "60"],
                          capture_output=True, text=True)
    print("\naggregation (benchmarks/aggregate.py --respondents 1000 --seconds 60):")
    print(done.stdout.strip() or done.stderr.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=33.0)
    parser.add_argument("--memory-seconds", type=float, default=600.0)
    parser.add_argument("--only", choices=("speed", "memory", "aggregation"))
    parser.add_argument("--no-fer", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aidentify-bench-analyze-") as tmp:
        folder = Path(tmp)
        if args.only in (None, "speed"):
            measure_speed(args, folder)
        if args.only in (None, "memory"):
            measure_memory(args, folder)
        if args.only in (None, "aggregation"):
            measure_aggregation(folder)


if __name__ == "__main__":
    main()
