"""Training throughput of both models at their default configs, and of the input pipeline alone.

Needs prepared data (run the data stages first; `make data` does). Trains each
model for a fixed number of steps on the real images and reports images per
second of training (after a warm-up), next to how fast the tf.data pipeline
alone delivers batches, which must be far faster than training so that it is
never the bottleneck. DenseNet uses `weights: null` here (same speed as
ImageNet weights; no download needed).

    .venv/bin/python benchmarks/training.py [--data data/augmented] [--steps 30]
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


def pipeline_rate(paths, targets, size: int, batch: int) -> float:
    """Images/s the uncached pipeline delivers (read, decode, resize, shuffle, batch), two full passes.

    Timed from a cold iterator: the shuffle buffer's fill is part of the cost.
    """
    from aidentify.train.data import make_dataset

    dataset = make_dataset(paths, targets, size, batch, shuffle=True, seed=0, cache="none")
    start = time.perf_counter()
    count = sum(int(x.shape[0]) for _ in range(2) for x, _ in dataset)
    return count / (time.perf_counter() - start)


def training_rate(config, data, steps: int, phase: str) -> float:
    import keras

    from aidentify.train.data import make_dataset
    from aidentify.train.fit import _build, _compile
    from aidentify.train.models import unfreeze_top

    model = _build(config, len(data.classes))
    if phase == "fine_tune":
        unfreeze_top(model, config.densenet.fine_tune.unfreeze_layers)
    _compile(model, config, config.learning_rate, steps, 1)
    dataset = make_dataset(data.train.paths, data.train.targets, config.image_size, config.batch_size,
                           shuffle=True, seed=0, cache="memory")
    for _ in dataset:  # one full pass fills the cache, so only training is timed
        pass
    dataset = dataset.repeat()
    warmup = 3
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    del model
    keras.backend.clear_session()
    return steps * config.batch_size / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/augmented", help="folder with the augment (or prepare) manifest")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per model")
    args = parser.parse_args()
    if not (Path(args.data) / "manifest.csv").is_file():
        print(f"benchmark skipped: no {args.data}/manifest.csv (run the data stages first: make data)")
        return 0

    import tensorflow as tf

    from aidentify.config import CnnTrainConfig, DenseNetTrainConfig
    from aidentify.train.data import load_training_input

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cnn = CnnTrainConfig(data_dir=args.data, project=tmp)
        densenet = DenseNetTrainConfig(data_dir=args.data, project=tmp, densenet={"weights": None})
        for config, phases in ((cnn, ["train"]), (densenet, ["head", "fine_tune"])):
            sample = args.steps * config.batch_size * 2
            data = load_training_input(Path(args.data), config.labels, sample, config.seed)
            feed = pipeline_rate(data.train.paths, data.train.targets, config.image_size, config.batch_size)
            for phase in phases:
                rate = training_rate(config, data, args.steps, phase)
                rows.append((f"{config.model} ({phase})", config.image_size, config.batch_size, rate, feed))

    print(f"{os.cpu_count()} cores, {platform.machine()}, TensorFlow {tf.__version__}, "
          f"GPU: {bool(tf.config.list_physical_devices('GPU'))}; {args.steps} timed steps after 3 warm-up steps\n")
    print("| model (phase) | input px | batch | training images/s | input pipeline alone, images/s |")
    print("|---|---:|---:|---:|---:|")
    for name, size, batch, rate, feed in rows:
        print(f"| {name} | {size} | {batch} | {rate:,.0f} | {feed:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
