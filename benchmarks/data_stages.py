"""Throughput of the data stages on the real FER+ copy in ../shared.

Runs `download --from`, `clean` and `prepare` (FER+ default `never`, and the
Haar cascade on every image with `fallback`) in a temporary folder and prints
images per second as a Markdown table for the README. Exits cleanly, saying
so, when ../shared is not beside the checkout.

    .venv/bin/python benchmarks/data_stages.py [--workers N]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ferplus-trainvalid.zip"


def timed(label: str, work) -> tuple[str, float, object]:
    start = time.perf_counter()
    result = work()
    return label, time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="processes for clean/prepare (0 = every core)")
    args = parser.parse_args()
    if not ARCHIVE.is_file():
        print(f"benchmark skipped: {ARCHIVE} not found (it lives in ../shared beside the checkout)")
        return 0

    from aidentify.config import CleanConfig, DownloadConfig, PrepareConfig
    from aidentify.data.clean import clean
    from aidentify.data.download import download
    from aidentify.data.prepare import prepare

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        label, seconds, results = timed("download --from (extract + index)",
                                        lambda: download(DownloadConfig(), "ferplus", from_path=ARCHIVE))
        rows.append((label, results[0].images, seconds))
        label, seconds, result = timed("clean (decode, pHash, dedup)",
                                       lambda: clean(CleanConfig(workers=args.workers)))
        rows.append((label, result.report["input_images"], seconds))
        n = result.report["kept"]
        for mode in ("never", "fallback"):
            config = PrepareConfig(workers=args.workers, faces={"detect": mode, "detect_by_source": {}},
                                   out_dir=f"data/prepared_{mode}")
            label, seconds, result = timed(f"prepare 96 px, detect {mode}", lambda cfg=config: prepare(cfg))
            rows.append((label, n, seconds))
            if mode == "fallback":
                found = result.report["outcomes"].get("face", 0)
                rows[-1] = (f"{label} (Haar found a face in {found / n:.0%})", n, seconds)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"FER+ Train+Valid from {ARCHIVE.name}; {cores} cores, {platform.processor() or platform.machine()}, "
          f"Python {sys.version.split()[0]}, workers={args.workers or cores}\n")
    print("| stage | images | seconds | images/s |")
    print("|---|---:|---:|---:|")
    for label, images, seconds in rows:
        print(f"| {label} | {images} | {seconds:.1f} | {images / seconds:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
