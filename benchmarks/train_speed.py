"""Training speed of the shipped CNN on this CPU: float32 against bfloat16, and oneDNN's settings.

Times the training step alone (forward, backward, AdamW update, the augmentation
layers inside the model) on random 64 px images held in memory, batch 64 by
default, so neither decoding nor disk play a part. Each setting runs in its own
process, because TensorFlow reads the oneDNN variables once, at import. The
settings take turns, round after round, so a machine busy with something else
slows them all alike; the table gives each setting's median.

    .venv/bin/python benchmarks/train_speed.py [--steps 15] [--rounds 3] [--batch 64] [--size 64]

`mixed_bfloat16` only pays where the CPU has bfloat16 units: see the
`bf16 units` line (`avx512_bf16` or `amx_bf16` in /proc/cpuinfo).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# name: (Keras precision policy, environment for TensorFlow)
SETTINGS: dict[str, tuple[str, dict[str, str]]] = {
    "float32": ("float32", {}),
    "mixed_bfloat16": ("mixed_bfloat16", {}),
    "float32, oneDNN off": ("float32", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "mixed_bfloat16, oneDNN off": ("mixed_bfloat16", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "float32, oneDNN fpmath bf16": ("float32", {"TF_SET_ONEDNN_FPMATH_MODE": "BF16"}),
    "float32, system allocator": ("float32", {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"}),
    "float32, 1 intra-op thread": ("float32", {"AIDENTIFY_BENCH_INTRA_OP": "1"}),
}


def cpu_name() -> str:
    """The CPU's model name and how many cores this process may use."""
    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            name = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def bf16_units() -> str:
    """Which bfloat16 instructions the CPU advertises (none: bfloat16 is emulated)."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = set(info.read().split())
    except OSError:
        return "unknown"
    return ", ".join(sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})) or "none"


def build_model(size: int, policy: str):
    """The shipped CNN (the default architecture and augmentation), compiled as `train` compiles it."""
    import keras

    from aidentify.config import CnnTrainConfig
    from aidentify.train.fit import _build, _compile

    keras.mixed_precision.set_global_policy(policy)
    config = CnnTrainConfig(image_size=size)
    model = _build(config, 8)
    _compile(model, config, config.learning_rate, steps=100, epochs=1)
    return model


def synthetic_batches(size: int, batch: int):
    """Random uint8 faces and soft targets, one batch of each repeated from memory."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(batch * 4, size, size, 1), dtype=np.uint8)
    targets = rng.dirichlet(np.ones(8), size=batch * 4).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((images, targets)).batch(batch).cache().repeat()


def training_rate(size: int, batch: int, steps: int, policy: str) -> float:
    """Images per second of `fit` over `steps` batches, after a warm-up that traces and tunes."""
    model = build_model(size, policy)
    data = synthetic_batches(size, batch)
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def run_child(setting: str, size: int, batch: int, steps: int) -> None:
    """In a fresh process: apply the setting, train, print the rate as JSON."""
    import tensorflow as tf

    threads = os.environ.get("AIDENTIFY_BENCH_INTRA_OP")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    policy = SETTINGS[setting][0]
    print(json.dumps({"setting": setting, "images_per_s": training_rate(size, batch, steps, policy)}))


def measure(setting: str, size: int, batch: int, steps: int) -> float | None:
    """Run one setting in its own process; None when it failed (its error is printed)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **SETTINGS[setting][1]}
    command = [sys.executable, __file__, "--child", setting, "--size", str(size), "--batch", str(batch),
               "--steps", str(steps)]
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        print(f"{setting}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])["images_per_s"]


def print_table(rates: dict[str, list[float]], size: int, batch: int, steps: int) -> None:
    """Median images/s per setting, and how it compares with plain float32."""
    base = statistics.median(rates["float32"]) if rates.get("float32") else None
    print(f"\nCNN (default architecture) at {size} px, batch {batch}, {steps} timed steps; {cpu_name()}; "
          f"bf16 units: {bf16_units()}; load average {os.getloadavg()[0]:.1f}")
    print(f"| {'setting':<30} | {'images/s (median)':>17} | {'runs':<24} | {'vs float32':>10} |")
    print(f"|{'-' * 32}|{'-' * 18}:|{'-' * 26}|{'-' * 11}:|")
    for setting, values in rates.items():
        if not values:
            print(f"| {setting:<30} | {'failed':>17} | {'':<24} | {'':>10} |")
            continue
        median = statistics.median(values)
        runs = ", ".join(f"{v:.0f}" for v in values)
        ratio = f"{median / base:.2f}x" if base else ""
        print(f"| {setting:<30} | {median:>17.0f} | {runs:<24} | {ratio:>10} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setting, taking turns")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="input size in pixels")
    parser.add_argument("--only", action="append", choices=list(SETTINGS), help="measure only these settings")
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.size, args.batch, args.steps)
        return 0
    settings = args.only or list(SETTINGS)
    rates: dict[str, list[float]] = {s: [] for s in settings}
    for round_ in range(1, args.rounds + 1):
        for setting in settings:
            rate = measure(setting, args.size, args.batch, args.steps)
            if rate is not None:
                rates[setting].append(rate)
            print(f"round {round_}: {setting}: {rate if rate is None else round(rate)} images/s", flush=True)
    print_table(rates, args.size, args.batch, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
