"""How big is report.html and how long does ``write_report`` take, by the number of respondents?

Builds finished study folders in the formats of issue 35 (the report tests' simulated study:
two groups, a 30-s stimulus made of shipped photos, 12 thumbnails) for each respondent count,
then writes the report ``--repeats`` times and prints the page's size and the median time.
The page's size hardly grows with respondents: plotly.js (inlined once) dominates, the small
charts stop at 48 and the data-quality table at 1,000 rows.

    PYTHONPATH=src .venv/bin/python benchmarks/study_report.py [--respondents 10 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analyze"))

from report_study import make_study  # noqa: E402  (the tests' study writer)

from aidentify.analyze.report import write_report  # noqa: E402
from aidentify.analyze.report_charts import plotly_js  # noqa: E402
from aidentify.live.demo import write_demo_video  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--seconds", type=int, default=30, help="stimulus length (one epoch a second)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        video = write_demo_video(root / "ad.mp4", faces=3, seconds=float(args.seconds), fps=5.0, size=(320, 240))
        print(f"plotly.js inlined: {len(plotly_js().encode()) / 1e6:.2f} MB")
        print("respondents  epochs.csv (MB)  report.html (MB)  write_report (s, median)")
        for count in args.respondents:
            folder = make_study(root / f"study{count}", respondents=count, seconds=args.seconds, stimulus=video)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                page = write_report(folder)
                times.append(time.perf_counter() - start)
            print(f"{count:>11,}  {(folder / 'epochs.csv').stat().st_size / 1e6:>15.2f}  "
                  f"{page.stat().st_size / 1e6:>16.2f}  {statistics.median(times):>24.2f}")


if __name__ == "__main__":
    main()
