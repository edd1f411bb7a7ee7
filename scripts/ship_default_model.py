"""Turn a finished training run into the default model shipped in the package.

    python scripts/ship_default_model.py runs/cnn/soup [--kind int8|float32]
    python scripts/ship_default_model.py --rescore

Exports the run's best.keras to TFLite (checked against Keras by `export`),
scores the export on the pipeline's val split (FER+ Valid), one view per face
and with the model card's test-time views, records where the
model came from (the training command and config, the SHA-256 of the data
manifest, the scores) inside the .tflite metadata and in
src/aidentify/assets/default-model.json, then puts the file in place as
src/aidentify/assets/default.tflite. `make default-model` runs it.

``--rescore`` measures the shipped file's scores again and records them, for
when the way faces are read changes and the training run is not at hand.

Both also score the shipped file on posed expressions, CK+48's dev subjects
(``--posed``, by default ``../shared/datasets/ckplus48-dev`` beside the
checkout; skipped with a note when the folder is absent), as
``benchmarks/posed_expressions.py`` does: measured, never trained on.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from aidentify.config import EvaluateConfig
from aidentify.files import atomic_write_bytes, atomic_write_text
from aidentify.inference.export import export_model
from aidentify.train.evaluate import evaluate, plot_confusion
from aidentify.inference.modelfile import DEFAULT_MODEL, embed_tflite_metadata, read_metadata

CONFUSION_SVG = Path("docs/default-model-confusion.svg")
POSED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ckplus48-dev"
# The recipe `make default-model` runs: a first cosine cycle, then six more, each from the best weights
# before it: three at 48 px, a gentle one from the fourth stage's int8 export, then two at 64 px;
# then four fine-tunes of the seventh stage's int8 export, averaged with it into one model.
FINE_TUNES = ["float", "distill-flip", "distill-views-ema", "bf16-seed61"]
TRAIN_COMMANDS = [
    "aidentify train --model cnn --config configs/default-model/train_cnn.yaml",
    *(f"aidentify train --model cnn --config configs/default-model/cycle{n}/train_cnn.yaml" for n in range(2, 8)),
    *(f"aidentify train --model cnn --config configs/default-model/cycle8/{name}/train_cnn.yaml"
      for name in FINE_TUNES),
]
AVERAGE_COMMAND = "aidentify average --config configs/default-model/average.yaml"
# The test-time views the model card reports (evaluate/live --set tta_flip=true --set tta_zooms=[...]):
# the original, four centre zooms (1 to 4 px per side at 48 px, 1 to 5 at 64) and the mirror of each, 10 views.
# Chosen on the held-out `test` split, not on Valid.
TEST_TIME_VIEWS = {"tta_flip": True, "tta_zooms": [0.96, 0.92, 0.88, 0.83]}


def write_confusion_svg(metrics: dict, classes: list[str]) -> None:
    """The model card's confusion matrix, as SVG (text, so it can live in git)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"
    metrics = {**metrics, "name": "default model on FER+ Valid"}
    present = [c for c in classes if c in metrics["per_class"]]
    CONFUSION_SVG.parent.mkdir(exist_ok=True)
    plot_confusion(CONFUSION_SVG, np.array(metrics["confusion_matrix"]), classes, present, metrics)


def training_stages(run: Path) -> list[dict]:
    """What each run of the recipe did, oldest first, following ``init_weights`` back to random weights.

    ``init_weights`` is recorded relative to where training ran; ``run`` tells where that was.
    A run that started from a shipped model (a .tflite with provenance) takes that model's stages
    from its record, since no run folder lies behind the package's file.
    """
    run_info = json.loads((run / "run.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    stage = {
        "run": run.name,
        "config": config,
        "data_manifest_sha256": run_info["data_manifest_sha256"],
        "epochs": run_info["epochs_done"],
        "best_epoch": run_info["best"],
        "trained": [run_info["started"], run_info["finished"]],
        "versions": run_info["versions"],
    }
    if run_info.get("distill"):  # the teachers' exact files, by SHA-256
        stage["distill"] = {**run_info["distill"], "teachers": [
            {"file": Path(t["path"]).name, "sha256": t["sha256"]} for t in run_info["distill"]["teachers"]]}
    if not run_info.get("init_weights"):
        return [stage]
    stage["init_weights_sha256"] = run_info["init_weights_sha256"]
    if "init_weights_provenance" in run_info:
        return [*run_info["init_weights_provenance"]["stages"], stage]
    workdir = run.resolve().parents[2]  # <workdir>/<project>/<model>/<run>
    parent = Path(run_info["init_weights"])
    parent = parent if parent.is_absolute() else workdir / parent
    return [*training_stages(parent.parents[1]), stage]


def recipe_stages(run: Path) -> tuple[list[dict], dict | None]:
    """The training stages behind ``run`` and, for a run made by ``aidentify average``, what was averaged.

    An averaged run's models must be fine-tunes of one starting file (their stages identical up to
    the last) and that file itself; the stages are then the shared ones followed by each fine-tune.
    """
    run_info = json.loads((run / "run.json").read_text())
    if "averaged" not in run_info:
        return training_stages(run), None
    workdir = run.resolve().parents[2]  # where `average` ran: its model paths are relative to it
    chains, files = [], []
    for item in run_info["averaged"]:
        path = Path(item["model"])
        path = path if path.is_absolute() else workdir / path
        if path.suffix.lower() == ".tflite":
            files.append(item)
        else:
            chains.append(training_stages(path.parents[1]))  # <run>/weights/best.keras
    shared = chains[0][:-1] if chains else []
    starts = {chain[-1].get("init_weights_sha256") for chain in chains}
    if any(chain[:-1] != shared for chain in chains) or len(starts) != 1 or \
            any(item["sha256"] not in starts for item in files):
        raise SystemExit(f"error: the models averaged into {run} are not all fine-tunes of one file and that "
                         "file; average runs that started from the same weights")
    average = {"run": run.name, "command": AVERAGE_COMMAND, "method": run_info["method"],
               "config": yaml.safe_load((run / "config.yaml").read_text()),
               "calibration_images": run_info["calibration_images"],
               "models": [{"model": Path(item["model"]).name if Path(item["model"]).suffix == ".tflite"
                           else Path(item["model"]).parents[1].name, "sha256": item["sha256"],
                           "fer_plus_valid_float32": item["val_accuracy"]} for item in run_info["averaged"]],
               "fer_plus_valid_float32": run_info["best"]["val_accuracy"], "averaged": run_info["finished"]}
    return [*shared, *(chain[-1] for chain in chains)], average


def _scores(metrics: dict) -> dict:
    """What the provenance keeps of an evaluation: accuracy, macro-F1, n and recall per class."""
    kept = {k: metrics[k] for k in ("accuracy", "macro_f1", "n")}
    kept["recall"] = {c: m["recall"] for c, m in metrics["per_class"].items()}
    return kept


def score_on_valid(model: Path, data_dir: Path, scratch: Path, shipped: bool) -> tuple[dict, dict | None]:
    """FER+ Valid scores of ``model`` with one view per face; for the ``shipped`` file also with the
    model card's views (second value, else None), and its confusion matrix drawn for the model card."""
    [result] = evaluate([model], "val", scratch / "eval", EvaluateConfig(data_dir=data_dir))
    if not shipped:
        return _scores(result.metrics), None
    write_confusion_svg(result.metrics, read_metadata(model)["classes"])
    [viewed] = evaluate([model], "val", scratch / "eval-views", EvaluateConfig(data_dir=data_dir, **TEST_TIME_VIEWS))
    return _scores(result.metrics), _scores(viewed.metrics)


def score_on_posed(model: Path, folder: Path, scratch: Path) -> dict | None:
    """Scores of ``model`` on a CK+48-style folder (class folders of face crops, no neutral class), or None
    when the folder is absent: those of :func:`_scores` plus the accuracy over the classes but contempt."""
    if not folder.is_dir():
        print(f"note: no posed-expression folder at {folder}; its scores are not recorded (give --posed)")
        return None
    [result] = evaluate([model], str(folder), scratch / "posed", EvaluateConfig())
    with open(result.out_dir / "predictions.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["label"] != "contempt"]
    without_contempt = sum(r["label"] == r["predicted"] for r in rows) / max(len(rows), 1)
    return {**_scores(result.metrics), "accuracy_without_contempt": without_contempt,
            "data": folder.name, "measured": time.strftime("%Y-%m-%d")}


def ship_run(run: Path, kind: str, data_dir: Path, posed: Path) -> tuple[bytes, dict]:
    """Export, score and describe the best checkpoint of ``run``; returns the file to ship and its provenance."""
    run_info = json.loads((run / "run.json").read_text())
    stages, average = recipe_stages(run)  # before anything is scored or drawn: a refused run changes nothing
    if len(stages) != len(TRAIN_COMMANDS):
        raise SystemExit(f"error: {run} comes from {len(stages)} training stages, the recipe has "
                         f"{len(TRAIN_COMMANDS)}; ship the run of its last stage")
    with tempfile.TemporaryDirectory() as scratch:
        exported = {e.kind: e for e in export_model(run, Path(scratch) / "export")}
        scores, views = {}, {}
        for item_kind, item in exported.items():
            scores[item_kind], views[item_kind] = score_on_valid(item.path, data_dir, Path(scratch) / item_kind,
                                                                 shipped=item_kind == kind)
        provenance = {
            "commands": TRAIN_COMMANDS,
            "stages": stages,
            **({"average": average} if average else {}),
            "data_manifest_sha256": run_info["data_manifest_sha256"],
            "train_images": run_info["train_images"],
            "val_images": run_info["val_images"],
            "epochs": sum(stage["epochs"] for stage in stages),
            "shipped": kind,
            "fer_plus_valid": scores,
            "test_time_views": TEST_TIME_VIEWS,
            "fer_plus_valid_with_views": views[kind],
            "posed_expressions": score_on_posed(exported[kind].path, posed, Path(scratch)),
        }
        metadata = read_metadata(exported[kind].path)
        return exported[kind].path.read_bytes(), {**metadata, "provenance": provenance}


def rescore_shipped(data_dir: Path, posed: Path) -> tuple[bytes, dict]:
    """The shipped file with its FER+ Valid and posed-expression scores measured again (after a change to
    how faces are read, or to add a benchmark).

    Only the shipped export can be scored: the other kind's file, and the run it came from, are not kept.
    FER+ scores it changes stay in the record, under ``scores_before_rescoring``.
    """
    metadata = read_metadata(DEFAULT_MODEL)
    provenance = metadata["provenance"]
    kind = provenance["shipped"]
    with tempfile.TemporaryDirectory() as scratch:
        scores, with_views = score_on_valid(DEFAULT_MODEL, data_dir, Path(scratch), shipped=True)
        posed_scores = score_on_posed(DEFAULT_MODEL, posed, Path(scratch))
    earlier = {key: provenance[key] for key in ("fer_plus_valid", "fer_plus_valid_with_views")}
    if (scores, with_views) != (earlier["fer_plus_valid"].get(kind), earlier["fer_plus_valid_with_views"]):
        provenance.update(fer_plus_valid={kind: scores}, fer_plus_valid_with_views=with_views,
                          rescored=time.strftime("%Y-%m-%d"), scores_before_rescoring=earlier)
    if posed_scores:
        provenance["posed_expressions"] = posed_scores
    return DEFAULT_MODEL.read_bytes(), metadata


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", help="the training run folder (runs/cnn/defaultN)")
    parser.add_argument("--kind", choices=["int8", "float32"], default="int8",
                        help="which TFLite export to ship (int8: dynamic-range weights, 4x smaller)")
    parser.add_argument("--rescore", action="store_true",
                        help="score the shipped file again and update its recorded scores (no run needed)")
    parser.add_argument("--data-dir", type=Path, default=Path("data/prepared"),
                        help="prepared data whose val split scores the model")
    parser.add_argument("--posed", type=Path, default=POSED_DATA,
                        help="CK+48-style class folders of posed expressions, scored and recorded when present")
    args = parser.parse_args()
    if (args.run is None) != args.rescore:
        parser.error("give a run folder to ship, or --rescore to score the shipped model again")
    flatbuffer, metadata = (rescore_shipped(args.data_dir, args.posed) if args.rescore
                            else ship_run(args.run, args.kind, args.data_dir, args.posed))
    provenance = metadata["provenance"]
    flatbuffer = embed_tflite_metadata(flatbuffer, metadata)
    atomic_write_bytes(DEFAULT_MODEL, flatbuffer)
    atomic_write_text(DEFAULT_MODEL.with_name("default-model.json"), json.dumps(provenance, indent=2) + "\n")
    kind = provenance["shipped"]
    print(f"{'rescored' if args.rescore else 'shipped'} {kind} ({len(flatbuffer) / 1e6:.2f} MB) -> {DEFAULT_MODEL}")
    for scored_kind, s in provenance["fer_plus_valid"].items():
        print(f"{scored_kind:>7}: FER+ Valid accuracy {s['accuracy']:.4f}, macro-F1 {s['macro_f1']:.4f}, n={s['n']}")
    viewed = provenance["fer_plus_valid_with_views"]
    print(f"{kind:>7} with {TEST_TIME_VIEWS}: FER+ Valid accuracy {viewed['accuracy']:.4f}, "
          f"macro-F1 {viewed['macro_f1']:.4f}")
    if posed := provenance.get("posed_expressions"):
        print(f"{kind:>7} on {posed['data']}: accuracy {posed['accuracy']:.3f} (7 classes), "
              f"{posed['accuracy_without_contempt']:.3f} (without contempt), macro-F1 {posed['macro_f1']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
