"""A finished study folder in the formats issue 35 fixes, for the report's tests and screenshot.

The respondents' class probabilities are simulated (a softmax over smooth logits that follow a
story: a joke at 8-13 s, a surprise at 18 s, a sad scene at 24-28 s; group B laughs more), but
every file is written the way ``aidentify analyze`` writes it: ``epochs.csv``, ``aggregate.csv``
(mean, t-based 95 % confidence interval, n, share over the threshold), ``moments.csv`` (largest
rises and falls of the mean), ``segment_summary.csv`` (Welch's t-test between the groups),
``failed.csv``, ``study.json`` and ``recordings/<respondent>/summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from aidentify.classes import CLASSES

NEGATIVE = ["sadness", "anger", "disgust", "fear", "contempt"]
SEGMENTS = [("intro", 0.0, 8.0), ("joke", 8.0, 14.0), ("reveal", 14.0, 22.0), ("ending", 22.0, 30.0)]


def story_logits(times: np.ndarray, rng: np.random.Generator, laugh: float) -> np.ndarray:
    """(T, 8) float logits for one respondent: the stimulus' story plus their own gain and noise."""
    logits = np.zeros((len(times), len(CLASSES)))
    logits[:, 0] = 2.0
    bump = lambda centre, width: np.exp(-0.5 * ((times - centre) / width) ** 2)  # noqa: E731
    logits[:, 1] = -0.5 + laugh * rng.uniform(0.6, 1.4) * 3.0 * bump(10.5, 2.0)
    logits[:, 2] = -1.0 + rng.uniform(0.5, 1.5) * 3.5 * bump(18.0, 0.8)
    logits[:, 3] = -1.2 + rng.uniform(0.3, 1.3) * 2.5 * bump(26.0, 2.0)
    logits[:, 4:] = -2.0
    return logits + rng.normal(0, 0.35, size=logits.shape)


def respondent_epochs(name: str, group: str, seconds: int, rng: np.random.Generator) -> pd.DataFrame:
    times = np.arange(seconds, dtype=float) + 0.5
    logits = story_logits(times, rng, laugh=1.4 if group == "B" else 0.9)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = pd.DataFrame(probs, columns=list(CLASSES))
    face_share = np.clip(rng.normal(0.95, 0.05, size=seconds), 0, 1)
    face_share[rng.random(seconds) < 0.04] = 0.0  # looked away for a whole epoch
    frame.loc[face_share == 0, list(CLASSES)] = np.nan
    frame["valence"] = frame["happiness"] - frame[NEGATIVE].max(axis=1)
    frame["expressiveness"] = 1 - frame["neutral"]
    frame.insert(0, "face_share", face_share.round(3))
    frame.insert(0, "time_s", times)
    frame.insert(0, "group", group)
    frame.insert(0, "respondent", name)
    return frame


def aggregate(epochs: pd.DataFrame, metrics: list[str], threshold: float) -> pd.DataFrame:
    rows = []
    for group, part in [("all", epochs), *epochs.groupby("group")]:
        for time_s, at in part.groupby("time_s"):
            for metric in metrics:
                values = at[metric].dropna().to_numpy()
                n = len(values)
                mean = values.mean() if n else np.nan
                low = high = np.nan
                if n >= 2:
                    half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)
                    low, high = mean - half, mean + half
                rows.append((group, time_s, metric, mean, low, high, n, (values > threshold).mean() if n else np.nan))
    return pd.DataFrame(rows, columns=["group", "time_s", "metric", "mean", "ci_low", "ci_high", "n", "share_over"])


def key_moments(table: pd.DataFrame, per_metric: int = 2) -> pd.DataFrame:
    rows = []
    for (group, metric), part in table[table.metric.isin(["valence", "happiness", "surprise"])].groupby(
            ["group", "metric"]):
        change = part.sort_values("time_s").set_index("time_s")["mean"].diff().dropna()
        for time_s, value in pd.concat([change.nlargest(per_metric), change.nsmallest(1)]).items():
            rows.append((group, metric, time_s, round(float(value), 4)))
    return pd.DataFrame(rows, columns=["group", "metric", "time_s", "change"])


def segment_summary(epochs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    rows = []
    for name, start, end in SEGMENTS:
        inside = epochs[(epochs.time_s >= start) & (epochs.time_s < end)]
        means = inside.groupby(["respondent", "group"])[metrics].mean().reset_index()
        for metric in metrics:
            by_group = {g: part[metric].dropna().to_numpy() for g, part in means.groupby("group")}
            p = stats.ttest_ind(*by_group.values(), equal_var=False).pvalue if len(by_group) == 2 else np.nan
            for group, values in [("all", means[metric].dropna().to_numpy()), *by_group.items()]:
                half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
                rows.append((group, name, metric, values.mean(), values.mean() - half, values.mean() + half,
                             len(values), p if group == "all" else np.nan))
    return pd.DataFrame(rows, columns=["group", "segment", "metric", "mean", "ci_low", "ci_high", "n", "p_value"])


def make_study(folder: Path, respondents: int = 10, seconds: int = 30, stimulus: Path | None = None,
               names: list[str] | None = None, failed: int = 1, seed: int = 0) -> Path:
    """Write a finished study of ``respondents`` people in groups A and B; return the folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"p{index + 1:02d}" for index in range(respondents)]
    groups = ["A" if index % 2 == 0 else "B" for index in range(len(names))]
    epochs = pd.concat([respondent_epochs(name, group, seconds, rng) for name, group in zip(names, groups)],
                       ignore_index=True)
    epochs.to_csv(folder / "epochs.csv", index=False, float_format="%.5g")
    metrics = [*CLASSES, "valence", "expressiveness"]
    table = aggregate(epochs, metrics, threshold=0.5)
    table.to_csv(folder / "aggregate.csv", index=False, float_format="%.5g")
    key_moments(table).to_csv(folder / "moments.csv", index=False)
    segment_summary(epochs, metrics).to_csv(folder / "segment_summary.csv", index=False, float_format="%.5g")
    failures = [(f"recordings/broken{index}.mp4", "cannot open the video (moov atom not found)")
                for index in range(failed)]
    pd.DataFrame(failures, columns=["recording", "reason"]).to_csv(folder / "failed.csv", index=False)
    for name, group in zip(names, groups):
        write_summary(folder, name, group, epochs[epochs.respondent == name], rng)
    write_study_json(folder, len(names), failed, seconds, stimulus)
    return folder


def write_summary(folder: Path, name: str, group: str, rows: pd.DataFrame, rng: np.random.Generator) -> None:
    frames = len(rows) * 30
    with_face = int(round(rows.face_share.sum() * 30))
    summary = {"respondent": name, "recording": f"/data/webcam/{name}.mp4",
               "offset_s": round(float(rng.uniform(0, 3)), 2), "groups": {"group": group}, "frames": frames,
               "frames_with_face": with_face, "face_share": round(with_face / frames, 4),
               "duration_s": float(len(rows)), "fps": 30.0, "processing_s": round(float(rng.uniform(3, 5)), 2)}
    safe = "".join(c if c.isalnum() else "_" for c in name)  # the runner's folder name; the report reads the JSON
    path = folder / "recordings" / safe / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary), encoding="utf-8")


def write_study_json(folder: Path, analysed: int, failed: int, seconds: int, stimulus: Path | None) -> None:
    study = {
        "aidentify": "0.1.0", "created": "2026-12-06T10:00:00+00:00", "classes": list(CLASSES), "groups": ["group"],
        "settings": {"epoch_s": 1.0, "threshold": 0.5, "baseline": None, "smooth_s": 1.0, "workers": 2},
        "model": {"path": "/models/default.tflite", "name": "default"}, "detector": "mtcnn",
        "stimulus": None if stimulus is None else {"path": str(Path(stimulus).resolve()), "duration_s": float(seconds)},
        "segments": [{"name": name, "start_s": start, "end_s": end} for name, start, end in SEGMENTS],
        "counts": {"recordings": analysed + failed, "analysed": analysed, "failed": failed,
                   "frames": analysed * seconds * 30},
        "timings": {"analyse_s": 40.2, "aggregate_s": 1.1, "fps": 220.0},
        "versions": {"python": "3.11.7", "opencv": "4.14.0", "ai-edge-litert": "2.3.0"},
    }
    (folder / "study.json").write_text(json.dumps(study, indent=2), encoding="utf-8")
