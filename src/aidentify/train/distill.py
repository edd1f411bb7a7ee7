"""Knowledge distillation: trained models' predictions as part of the training targets.

An ensemble of independently trained models is more accurate than any of its
members (on FER+ Valid, two of our CNNs averaged beat the better one by about
0.3 points), but it costs one forward pass per member at every live frame.
Training one model towards the ensemble's averaged predictions (Hinton et
al., 2015) aims to keep part of that gain in a single model of the same size.
The teachers' predictions are mixed with the label targets (FER+ vote
distributions or one-hot labels), so the human annotations keep their say.
Whether it pays depends on the teachers: two same-size CNNs did not improve
our default model (README, model card), a larger teacher may.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aidentify.config import Distillation
from aidentify.errors import ConfigError
from aidentify.files import sha256_file
from aidentify.progress import ProgressFn, no_progress
from aidentify.inference.modelfile import read_metadata, resolve_model_path

if TYPE_CHECKING:
    from aidentify.inference.classify import TestTimeViews


def resolve_teachers(settings: Distillation, classes: list[str]) -> list[Path]:
    """The teachers' model files, checked before any work: each must know exactly ``classes``, in order."""
    teachers = []
    for teacher in settings.teachers:
        path = resolve_model_path(Path(teacher))
        known = read_metadata(path).get("classes")
        if known != classes:
            raise ConfigError(f"distill teacher {path} predicts {known}, this run trains {classes}; "
                              "use teachers trained on the same classes")
        teachers.append(path)
    return teachers


def teacher_probabilities(teachers: list[Path], paths: list[str], views: TestTimeViews, batch_size: int = 256,
                          progress: ProgressFn = no_progress) -> np.ndarray:
    """The teachers' mean class probabilities, ``(len(paths), n_classes) float32``, over ``views``.

    Each teacher reads the images at its own input size; the probabilities
    are averaged over its views (``TestTimeViews.from_settings(distill)``:
    a teacher read in several views is more accurate than in one, the shipped
    model 0.8577 on FER+ Valid with one view and 0.8641 with 10), then over
    the teachers.
    """
    from aidentify.inference.classify import load_classifier
    from aidentify.train.evaluate import predict_probabilities

    total = np.zeros(0)
    for number, teacher in enumerate(teachers, 1):
        model = load_classifier(teacher)

        def report(task: str, done: int, steps: int, number: int = number) -> None:
            progress(f"teacher {number}/{len(teachers)} {task}", done, steps)

        probs = predict_probabilities(model, paths, batch_size, views, report)
        total = probs if number == 1 else total + probs
        del model
    return (total / len(teachers)).astype(np.float32)


def distilled_targets(targets: np.ndarray, teacher_probs: np.ndarray, weight: float) -> np.ndarray:
    """``weight`` of the teachers' prediction plus the rest of the label target; rows still sum to 1."""
    if teacher_probs.shape != targets.shape:
        raise ValueError(f"teacher predictions {teacher_probs.shape} do not match targets {targets.shape}")
    mixed = weight * teacher_probs + (1.0 - weight) * targets
    return (mixed / mixed.sum(axis=1, keepdims=True)).astype(np.float32)


def teacher_record(teachers: list[Path], settings: Distillation) -> dict:
    """What run.json keeps about the teachers, so a run can be traced back to them."""
    return {"teachers": [{"path": str(t), "sha256": sha256_file(t)} for t in teachers],
            "weight": settings.weight, "tta_flip": settings.tta_flip, "tta_zooms": list(settings.tta_zooms)}
