"""What each CNN block variant costs at live time: int8 LiteRT classification of six faces.

Builds each variant of `cnn` (plain as shipped, residual, depthwise-separable,
squeeze-and-excitation, wider or narrower, or at 48 px), exports it with `aidentify export`'s
own code to dynamic-range int8 TFLite, and times LiteRT classifying a batch of
six 64 px faces, 2 threads, as `live` does for a frame of six people. Untrained
weights: the time of a forward pass does not depend on their values. The
variants take turns, round after round, so a machine busy with something else
slows them all alike; the table gives each variant's median over all rounds.

    .venv/bin/python benchmarks/cnn_variants.py [--faces 6] [--size 64] [--rounds 5] [--calls 100]

The live budget of issue 22 is the shipped model's cost: `benchmarks/live.py`
measures the whole frame, with detection and tracking.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aidentify.config import Augmentation, CnnArchitecture  # noqa: E402

# name: the `cnn` settings (configs/train_cnn.yaml) that differ from the shipped model's, and
# `image_size` where the input side differs from --size
VARIANTS: dict[str, dict] = {
    "plain 32-64-128-256 (shipped)": {},
    "residual": {"block": "residual"},
    "residual + SE 8": {"block": "residual", "squeeze_excite": 8},
    "separable residual + SE 8": {"block": "residual", "separable": True, "squeeze_excite": 8},
    "separable residual + SE 8, 64-128-256-512": {"block": "residual", "separable": True, "squeeze_excite": 8,
                                                  "filters": [64, 128, 256, 512]},
    "plain 24-48-96-192": {"filters": [24, 48, 96, 192]},
    "plain 32-64-128-256 at 48 px": {"image_size": 48},
}


def exported_classifier(settings: dict, size: int, folder: Path):
    """The variant, untrained, saved as `.keras`, exported to int8 and loaded on LiteRT with 2 threads."""
    from aidentify.inference.classify import load_classifier
    from aidentify.inference.export import export_model
    from aidentify.inference.modelfile import save_model
    from aidentify.train.models import build_cnn

    settings = dict(settings)
    size = settings.pop("image_size", size)
    model = build_cnn(size, 8, CnnArchitecture(**settings), Augmentation(), 0)
    path = folder / f"variant{len(list(folder.glob('*.keras')))}.keras"
    save_model(model, path, {"format": 1, "model": "cnn", "classes": [f"class{i}" for i in range(8)],
                             "input_size": size, "channels": 1, "input_dtype": "uint8"})
    int8 = next(e for e in export_model(path) if e.kind == "int8")
    return load_classifier(int8.path, threads=2), model.count_params(), int8.size_bytes, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=6)
    parser.add_argument("--size", type=int, default=64, help="input side in pixels (the shipped model: 64)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100, help="classifications per variant per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        built = {name: exported_classifier(settings, args.size, Path(folder)) for name, settings in VARIANTS.items()}
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        rng = np.random.default_rng(0)
        faces = {size: rng.integers(0, 256, (args.faces, size, size), dtype=np.uint8)
                 for _, _, _, size in built.values()}
        for _ in range(args.rounds):
            for name, (classify, _, _, size) in built.items():
                classify(faces[size])  # warm-up: first call of a batch size allocates
                for _ in range(args.calls):
                    start = time.perf_counter()
                    classify(faces[size])
                    times[name].append(time.perf_counter() - start)
    shipped = statistics.median(times[next(iter(VARIANTS))])
    print(f"{args.faces} faces at {args.size} px, int8 LiteRT, 2 threads, median of {args.rounds} x {args.calls}\n")
    print("| variant | parameters | int8 MB | ms for the faces | against shipped |")
    print("|---|---:|---:|---:|---:|")
    for name, (_, parameters, size_bytes, _) in built.items():
        median = statistics.median(times[name])
        print(f"| {name} | {parameters:,} | {size_bytes / 1e6:.2f} | {median * 1e3:.2f} | {median / shipped:.2f}x |")


if __name__ == "__main__":
    main()
