"""Speed and memory of the study aggregation (issue 35): synthetic respondents, real timeline CSVs.

Writes N synthetic timelines (``--seconds`` of stimulus at ``--fps``, FER+ classes, written by
live's own ``TimelineWriter``) in a temporary folder: two groups, group A's happiness rises at
20 s and group B's falls at 40 s, frame noise, 3% of frames and one 2-s stretch per respondent
without a face, each recording starting 0-3 s before the stimulus. Then, in a fresh process
(so its peak memory is the aggregation's own), ``StudyAggregator`` reads them one at a time
with a baseline (0-5 s), three segments and the group column, and writes the four tables.

Prints the time end to end, peak RSS (``resource.getrusage``, ``ru_maxrss``) and the RSS after
the imports, and checks that the key moments land within 1 s of the true changes.

    .venv/bin/python benchmarks/aggregate.py [--respondents 1000] [--seconds 60] [--fps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RISE_S, FALL_S = 20.0, 40.0  # the true changes: group A's happiness rises, group B's falls


def write_timelines(folder: Path, respondents: int, seconds: float, fps: float, seed: int = 0) -> list[dict]:
    """``respondents`` timeline CSVs in ``folder``; returns their ``name, group, path, offset_s``."""
    from aidentify.classes import CLASSES
    from aidentify.inference.results import FaceResult, FrameResult
    from aidentify.live.timeline import TimelineWriter

    classes = list(CLASSES)
    rng = np.random.default_rng(seed)
    happy, neutral = classes.index("happiness"), classes.index("neutral")
    rows = []
    for r in range(respondents):
        group = "A" if r % 2 == 0 else "B"
        offset = float(rng.uniform(0, 3))
        frames = int((seconds + offset) * fps)
        stimulus = np.arange(frames) / fps - offset
        logits = rng.normal(0, 0.3, size=len(classes)) + rng.normal(0, 0.6, size=(frames, len(classes)))
        logits[:, neutral] += 2.0
        if group == "A":
            logits[stimulus >= RISE_S, happy] += 2.5
        else:
            logits[:, happy] += 1.5
            logits[stimulus >= FALL_S, happy] -= 2.5
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        gap = rng.uniform(0, seconds)
        no_face = (rng.random(frames) < 0.03) | ((stimulus >= gap) & (stimulus < gap + 2))
        path = folder / f"r{r:05d}.csv"
        writer = TimelineWriter(path, classes)
        for i in range(frames):
            faces = [] if no_face[i] else [FaceResult(1, (100, 80, 120, 120), probs[i], classes[int(probs[i].argmax())],
                                                      float(probs[i].max()))]
            writer.add(i / fps, FrameResult(i, faces, detected=True))
        writer.commit()
        rows.append({"name": f"r{r:05d}", "group": group, "path": str(path), "offset_s": offset})
    return rows


def aggregate(listing: Path, seconds: float) -> dict:
    """Run in a fresh process: aggregate the listed timelines and report time and memory."""
    from aidentify.analyze.aggregate import StudyAggregator
    from aidentify.analyze.epochs import AggregateSettings
    from aidentify.classes import CLASSES

    after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = json.loads(listing.read_text())
    settings = AggregateSettings(list(CLASSES), baseline=(0.0, 5.0), duration_s=seconds, group_columns=["group"],
                                 segments=[("intro", 0, seconds / 3), ("middle", seconds / 3, 2 * seconds / 3),
                                           ("end", 2 * seconds / 3, seconds)])
    start = time.perf_counter()
    with StudyAggregator(settings, listing.parent / "out") as aggregator:
        for row in rows:
            aggregator.add(row["name"], {"group": row["group"]}, Path(row["path"]), row["offset_s"])
        tables = aggregator.finish()
    elapsed = time.perf_counter() - start
    moments = tables.moments[tables.moments.metric == "happiness"]
    return {"seconds": elapsed, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_imports_mib": after_imports / 1024, "respondents": tables.respondents,
            "skipped": len(tables.skipped), "epochs_csv_mib": tables.epochs_csv.stat().st_size / 2**20,
            "moments": moments[["group", "time_s", "change"]].round(3).values.tolist()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--aggregate", type=Path, help=argparse.SUPPRESS)  # the child process's listing
    args = parser.parse_args()
    if args.aggregate:
        print(json.dumps(aggregate(args.aggregate, args.seconds)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        rows = write_timelines(folder / "timelines", args.respondents, args.seconds, args.fps)
        written = time.perf_counter() - start
        listing = folder / "listing.json"
        listing.write_text(json.dumps(rows))
        size = sum(Path(r["path"]).stat().st_size for r in rows) / 2**20
        child = subprocess.run([sys.executable, __file__, "--aggregate", str(listing), "--seconds", str(args.seconds)],
                               capture_output=True, text=True, check=True, env={**os.environ})
        result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"timelines: {args.respondents} x {args.seconds:g} s at {args.fps:g} frames/s, {size:.0f} MiB "
          f"(written in {written:.0f} s)")
    print(f"aggregation: {result['seconds']:.2f} s end to end "
          f"({1000 * result['seconds'] / args.respondents:.1f} ms a respondent), "
          f"{result['respondents']} aggregated, {result['skipped']} skipped")
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB (after imports {result['rss_after_imports_mib']:.0f} MiB); "
          f"epochs.csv {result['epochs_csv_mib']:.1f} MiB")
    print(f"happiness key moments (true: A rises at {RISE_S:g} s, B falls at {FALL_S:g} s): {result['moments']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
