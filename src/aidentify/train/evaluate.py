"""``evaluate``: measure one or more models on a split or on any labelled folder.

The data is the pipeline's own split (default ``test`` of ``data/prepared``),
or a folder or archive in any layout ``download`` recognises. External data
goes through the training recipe: FER+ votes are labelled with the majority
rule (unknown and not-a-face excluded, as in FER+'s protocol), faces are
cropped with the model's recorded face settings at the same size, and class
synonyms are mapped to the model's classes. Classes on only one side are
reported and left out explicitly.

Per model it writes ``metrics.json`` (``accuracy``, ``macro_f1``,
``per_class``, ``n``, ...), ``predictions.csv``, ``confusion_matrix.png``
(counts and row-normalised) and ``worst_mistakes.png``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aidentify.config import EvaluateConfig, FaceDetection
from aidentify.data.archive import extract_archive, is_archive
from aidentify.data.clean import apply_vote_rule
from aidentify.data.images import read_gray, read_image, write_png
from aidentify.faces.crop import FACE_CROP_MAX_SIDE, cut_face, recorded_face_settings, resize_square
from aidentify.faces.detector import FaceDetector, make_detector
from aidentify.data.manifest import SPLITS, absolute_paths, read_manifest
from aidentify.data.sources import index_dataset
from aidentify.errors import ConfigError, DataError
from aidentify.files import atomic_write_text, check_output_folder
from aidentify.inference.classify import (
    Classifier,
    LiteRTClassifier,
    TestTimeViews,
    load_classifier,
)
from aidentify.progress import ProgressFn, no_progress
from aidentify.inference.modelfile import resolve_model_path

CROPPED_LAYOUTS = ("ferplus-folders", "fer2013-pixels", "fer2013-pixels+ferplus-votes")


@dataclass
class EvalData:
    """Images to score: crop paths, canonical labels, and what was left out and why."""

    paths: list[str]
    labels: list[str]
    ids: list[str]
    description: str
    excluded: dict[str, int] = field(default_factory=dict)


@dataclass
class EvalResult:
    name: str
    model_path: Path
    out_dir: Path
    metrics: dict[str, Any]


def evaluate(model_paths: list[Path], data: str | None, out_dir: Path, config: EvaluateConfig,
             progress: ProgressFn = no_progress) -> list[EvalResult]:
    """Evaluate every model on the same data; one output folder per model."""
    check_output_folder(Path(out_dir))
    resolved = [resolve_model_path(p) for p in (model_paths or [None])]  # none given: the shipped model
    names = _unique_names(resolved)
    results = []
    if config.ensemble and len(resolved) < 2:
        raise ConfigError("ensemble=true needs two or more --model")
    with tempfile.TemporaryDirectory(prefix="aidentify-eval-") as scratch:
        loaded_sets: dict[str, EvalData] = {}
        members: list[tuple[Path, EvalData, np.ndarray, list[str]]] = []
        for name, path in zip(names, resolved):
            classifier = load_classifier(path)
            metadata = classifier.info.metadata
            key = json.dumps([metadata.get("faces"), metadata.get("prepared_size")], sort_keys=True)
            if key not in loaded_sets:
                loaded_sets[key] = load_eval_data(data, config, metadata, Path(scratch) / f"set{len(loaded_sets)}", progress)
            eval_data = loaded_sets[key]
            target = Path(out_dir) if len(resolved) == 1 else Path(out_dir) / name
            probs = predict_probabilities(classifier, eval_data.paths, config.batch_size,
                                          TestTimeViews.from_settings(config), progress)
            metrics = score(eval_data, probs, metadata["classes"], name, path, config)
            write_reports(target, eval_data, probs, metrics, metadata["classes"], config.worst_mistakes)
            results.append(EvalResult(name, path, target, metrics))
            members.append((path, eval_data, probs, metadata["classes"]))
        if config.ensemble:
            results.append(_evaluate_ensemble(members, Path(out_dir) / "ensemble", config))
    if len(results) > 1:
        comparison = {r.name: {k: r.metrics[k] for k in ("accuracy", "macro_f1", "n")} for r in results}
        atomic_write_text(Path(out_dir) / "comparison.json", json.dumps(comparison, indent=2))
    return results


def _evaluate_ensemble(members: list[tuple[Path, EvalData, np.ndarray, list[str]]], out: Path,
                       config: EvaluateConfig) -> EvalResult:
    """Score the mean of the members' probabilities: what averaging the models would give.

    Models err on different faces, so their average is often more accurate than the
    best of them; this measures by how much before anyone pays for it at every frame.
    """
    _, data, _, classes = members[0]
    if any(member_classes != classes for *_, member_classes in members):
        raise ConfigError("ensemble=true needs models with the same class names in the same order")
    if any(member_data is not data for _, member_data, _, _ in members):
        raise ConfigError("ensemble=true needs models that crop faces the same way (they saw different images)")
    probs = np.mean([member_probs for _, _, member_probs, _ in members], axis=0)
    metrics = score(data, probs, classes, "ensemble", out, config)
    metrics["model"] = " + ".join(str(path) for path, *_ in members)
    write_reports(out, data, probs, metrics, classes, config.worst_mistakes)
    return EvalResult("ensemble", out, out, metrics)


def _unique_names(paths: list[Path]) -> list[str]:
    names = []
    for path in paths:
        # runs/<model>/<run>/weights/best.keras -> "<model>-<run>"; other files -> their stem
        in_run = path.parent.name == "weights"
        base = f"{path.parent.parent.parent.name}-{path.parent.parent.name}" if in_run else path.stem
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def load_eval_data(data: str | None, config: EvaluateConfig, metadata: dict[str, Any], scratch: Path,
                   progress: ProgressFn = no_progress) -> EvalData:
    """The pipeline's split, or an external folder/archive prepared like the training data."""
    split = data or config.split
    if split in SPLITS:
        frame = read_manifest(Path(config.data_dir), produced_by="prepare")
        frame = frame[frame["split"] == split]
        if frame.empty:
            raise DataError(f"{config.data_dir}/manifest.csv has no '{split}' images; "
                            "pick another with --data train|val|test or pass a folder")
        paths = [str(p) for p in absolute_paths(frame, Path(config.data_dir))]
        return EvalData(paths, list(frame["label"]), list(frame["id"]), f"{config.data_dir} [{split}]")
    return _external_data(Path(split), config, metadata, scratch, progress)


def _external_data(source: Path, config: EvaluateConfig, metadata: dict[str, Any], scratch: Path,
                   progress: ProgressFn) -> EvalData:
    if not source.exists():
        raise DataError(f"--data {source}: not a split name (train, val, test) and no such file or folder")
    scratch.mkdir(parents=True, exist_ok=True)
    root = source
    if source.is_file():
        if not is_archive(source):
            raise DataError(f"--data {source}: expected a folder or a .zip/.tar.gz archive")
        root = scratch / "extracted"
        root.mkdir()
        extract_archive(source, root, progress)
    found = index_dataset(root, source.stem, scratch / "derived", progress)
    drops: list[pd.DataFrame] = []
    frame = found.frame.copy()
    frame["abs_path"] = frame["path"]
    frame = apply_vote_rule(frame, config.vote_rule, True, drops)
    excluded: dict[str, int] = dict(found.left_out)  # folders not named after an emotion, with "did you mean"
    for dropped in drops:
        for reason, count in dropped["reason"].value_counts().items():
            excluded[f"label: {reason}"] = excluded.get(f"label: {reason}", 0) + int(count)
    recorded = recorded_face_settings(metadata.get("faces"))
    mode, crops_whole = config.detect, False
    if mode == "auto":
        # FER+ layouts are crops (never detect); elsewhere detect as in training, but keep small crops whole.
        mode, crops_whole = ("never", False) if found.layout in CROPPED_LAYOUTS else (recorded.detect, True)
    detector = None
    if mode != "never":
        recorded.detector = config.detector if config.detector != "recorded" else recorded.detector
        detector = make_detector(recorded, "still")
    size = int(metadata.get("prepared_size") or metadata["input_size"])
    paths, labels, ids = _crop_faces(frame, mode, crops_whole, detector, recorded, size, scratch / "crops",
                                     excluded, progress)
    if not paths:
        raise DataError(f"no usable labelled faces in {source} (left out: {excluded})")
    used = f"detect {mode}" + (f", {detector.name}" if detector else "")
    used += f", images of at most {FACE_CROP_MAX_SIDE} px used whole" if crops_whole else ""
    return EvalData(paths, labels, ids, f"{source} ({found.layout}, {used})", excluded)


def _crop_faces(frame: pd.DataFrame, mode: str, crops_whole: bool, detector: FaceDetector | None,
                faces: FaceDetection, size: int, out: Path, excluded: dict,
                progress: ProgressFn) -> tuple[list[str], list[str], list[str]]:
    """Cut faces through the crop path ``prepare`` used for the model's training data."""
    paths, labels, ids = [], [], []
    for i, row in enumerate(frame.itertuples(index=False)):
        image = read_gray(Path(row.abs_path)) if mode == "never" else read_image(Path(row.abs_path))
        if image is None:
            excluded["unreadable"] = excluded.get("unreadable", 0) + 1
            continue
        cut = cut_face(image, detector, mode, faces.margin, size, crops_whole=crops_whole, align=faces.align)
        if cut.crop is None:
            excluded["no face found"] = excluded.get("no face found", 0) + 1
            continue
        path = out / f"{i:07d}.png"
        write_png(path, cut.crop)
        paths.append(str(path))
        labels.append(row.label)
        ids.append(row.id)
        if i % 500 == 0 or i == len(frame) - 1:
            progress("prepare faces", i + 1, len(frame))
    return paths, labels, ids


def predict_probabilities(classifier: Classifier, paths: list[str], batch_size: int, views: TestTimeViews,
                          progress: ProgressFn = no_progress) -> np.ndarray:
    """Class probabilities for each image at the model's input size, averaged over its test-time ``views``.

    Crops are read like the model's training data was: through ``make_dataset``
    for a Keras model, and with OpenCV for a ``.tflite`` file (LiteRT needs no
    TensorFlow, so neither does scoring one); ``resize_square`` gives the same pixels.
    """
    size = classifier.info.input_size
    steps = -(-len(paths) // batch_size)
    if isinstance(classifier, LiteRTClassifier):
        batches = (np.stack([resize_square(_read_crop(p), size) for p in paths[i * batch_size:(i + 1) * batch_size]])
                   for i in range(steps))
    else:
        from aidentify.train.data import make_dataset

        batches = make_dataset(paths, None, size, batch_size, cache="none").as_numpy_iterator()
    task = "predict" if views.count == 1 else f"predict ({views.count} views)"
    probs = []
    for step, batch in enumerate(batches):
        probs.append(views.predict(classifier, batch))
        progress(task, step + 1, steps)
    if not probs:
        return np.zeros((0, len(classifier.info.classes)))
    return np.concatenate(probs).astype(np.float64)


def _read_crop(path: str) -> np.ndarray:
    image = read_gray(Path(path))
    if image is None:
        raise DataError(f"cannot read {path}; run the stage that made it again")
    return image


def score(data: EvalData, probs: np.ndarray, classes: list[str], name: str, model_path: Path,
          config: EvaluateConfig) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1 over the classes both sides know."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    index = {c: i for i, c in enumerate(classes)}
    labels = np.array(data.labels)
    known = np.array([label in index for label in labels], dtype=bool)
    excluded = dict(data.excluded)
    for label in sorted(set(labels[~known])):
        excluded[f"class not in model: {label}"] = int((labels == label).sum())
    y_true = np.array([index[label] for label in labels[known]], dtype=int)
    y_pred = probs[known].argmax(axis=1)
    present = sorted(set(y_true.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=present, zero_division=0)
    return {
        "model": str(model_path),
        "name": name,
        "data": data.description,
        "n": int(known.sum()),
        "n_left_out": sum(excluded.values()),  # images of the data not scored: every reason in `excluded`
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {
            classes[c]: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(present, precision, recall, f1, support)
        },
        "classes": classes,
        "classes_missing_from_data": [c for i, c in enumerate(classes) if i not in present],
        "excluded": excluded,
        "tta_flip": config.tta_flip,
        "tta_zooms": list(config.tta_zooms),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(range(len(classes)))).tolist(),
    }


def write_reports(out: Path, data: EvalData, probs: np.ndarray, metrics: dict[str, Any], classes: list[str],
                  n_worst: int) -> None:
    """metrics.json, predictions.csv and the two PNGs."""
    out.mkdir(parents=True, exist_ok=True)
    known = np.array([label in classes for label in data.labels], dtype=bool)
    predicted = probs.argmax(axis=1)
    table = pd.DataFrame({
        "id": data.ids, "path": data.paths, "label": data.labels,
        "predicted": [classes[i] for i in predicted], "confidence": probs.max(axis=1),
        **{f"p_{c}": probs[:, i] for i, c in enumerate(classes)},
    })
    atomic_write_text(out / "predictions.csv", table.drop(columns=["path"]).to_csv(index=False))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    plot_confusion(out / "confusion_matrix.png", np.array(metrics["confusion_matrix"]), classes,
                    [c for c in classes if c in metrics["per_class"]], metrics)
    wrong = table[known & (table["label"] != table["predicted"])].sort_values("confidence", ascending=False)
    _plot_mistakes(out / "worst_mistakes.png", wrong.head(n_worst))


def plot_confusion(path: Path, counts: np.ndarray, classes: list[str], present: list[str], metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [classes.index(c) for c in present]
    counts = counts[rows]
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(6 + 1.2 * len(classes), 0.6 * len(present) + 3))
    for ax, values, title, fmt in ((axes[0], counts, "counts", "d"), (axes[1], normalised, "row-normalised (recall)", ".2f")):
        ax.imshow(values if fmt == ".2f" else normalised, cmap="Blues", vmin=0, vmax=1)
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                ax.text(c, r, format(values[r, c], fmt), ha="center", va="center", fontsize=8,
                        color="white" if normalised[r, c] > 0.5 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(present)), present)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.suptitle(f"{metrics['name']}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, "
                 f"n={metrics['n']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_mistakes(path: Path, wrong: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 5
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, wrong.itertuples(index=False)):
        image = read_gray(Path(row.path))
        if image is not None:
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{row.label} → {row.predicted}\np={row.confidence:.2f}", fontsize=8)
    if wrong.empty:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center")
    fig.suptitle("most confident mistakes (true → predicted)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
