"""Posed, clear expressions: a model scored on CK+48 (class folders of 48x48 face crops), the webcam-like
faces where FER+-trained models are weakest (issue 39). Every future model is scored here beside FER+.

CK+ (Extended Cohn-Kanade; Lucey et al. 2010) has no neutral class in these peak frames, so a face the
model calls neutral is a miss. Reported: accuracy over all 7 classes and over the 6 without contempt (the
comparison face-api.js-style 7-class models allow), macro-F1, per-class recall, where each class's
misses went, and the confusion matrix. CK+'s terms allow research use only: measure with it, never
train on it (`evaluate` only reads it).

    .venv/bin/python benchmarks/posed_expressions.py                       # the shipped model
    .venv/bin/python benchmarks/posed_expressions.py --model runs/cnn/exp  --data path/to/ckplus48-dev
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ckplus48-dev"


def evaluate(model: str | None, data: Path, out: Path) -> tuple[dict, list[dict]]:
    """`aidentify evaluate` on the folder: its metrics.json and predictions.csv rows."""
    command = [sys.executable, "-m", "aidentify", "evaluate", "--data", str(data), "--out", str(out)]
    if model:
        command += ["--model", model]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip() or done.stdout.strip())
    metrics = json.loads((out / "metrics.json").read_text())
    with open(out / "predictions.csv", newline="") as handle:
        return metrics, list(csv.DictReader(handle))


def summarise(name: str, metrics: dict, rows: list[dict]) -> None:
    six = [r for r in rows if r["label"] != "contempt"]
    six_accuracy = sum(r["label"] == r["predicted"] for r in six) / len(six)
    print(f"\n{name}: n={len(rows)}; accuracy (7 classes) {metrics['accuracy']:.3f}, "
          f"(6, no contempt) {six_accuracy:.3f}; macro-F1 {metrics['macro_f1']:.3f}\n")
    print("| class | n | recall | misses went to |")
    print("|---|---:|---:|---|")
    for label in sorted({r["label"] for r in rows}, key=lambda c: metrics["classes"].index(c)):
        mine = [r for r in rows if r["label"] == label]
        recall = sum(r["predicted"] == label for r in mine) / len(mine)
        misses = Counter(r["predicted"] for r in mine if r["predicted"] != label).most_common()
        print(f"| {label} | {len(mine)} | {recall:.2f} | {', '.join(f'{c} {n}' for c, n in misses) or '-'} |")
    print_confusion(metrics["classes"], rows)


def print_confusion(classes: list[str], rows: list[dict]) -> None:
    """The confusion matrix as a Markdown table: a row per true class present, a column per model class."""
    present = [c for c in classes if any(r["label"] == c for r in rows)]
    counts = Counter((r["label"], r["predicted"]) for r in rows)
    print("\n| true \\ predicted | " + " | ".join(classes) + " |")
    print("|---|" + "---:|" * len(classes))
    for label in present:
        print(f"| {label} | " + " | ".join(str(counts[label, c]) for c in classes) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a model file or run folder (repeatable; default: shipped)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no CK+48 folder at {args.data}; give --data (class folders of face crops)")
    with tempfile.TemporaryDirectory(prefix="aidentify-ckplus-") as tmp:
        for index, model in enumerate(args.model or [None]):
            metrics, rows = evaluate(model, args.data, Path(tmp) / str(index))
            summarise(model or "shipped model", metrics, rows)


if __name__ == "__main__":
    main()
