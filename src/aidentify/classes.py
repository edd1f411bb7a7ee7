"""The canonical emotion classes and the synonyms datasets use for them.

FER+ order is canonical. Datasets name classes in many ways ("angry",
"Anger", "happy", "suprise", ...); :func:`canonical_class` maps all of them
to one spelling so that manifests, models and reports agree.
"""

from __future__ import annotations

import difflib
import re
from pathlib import PurePosixPath

CLASSES: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)

# FER+ vote files carry two more columns after the eight emotions. They are
# not classes: images whose votes land there are dropped by `clean`.
UNKNOWN = "unknown"
NOT_FACE = "not_face"
VOTE_COLUMNS: tuple[str, ...] = CLASSES + (UNKNOWN, NOT_FACE)

# FER2013's integer codes in fer2013.csv / icml_face_data.csv.
FER2013_CODES: tuple[str, ...] = (
    "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral",
)

_SYNONYMS: dict[str, str] = {
    **{name: name for name in CLASSES},
    "calm": "neutral",
    "neutrality": "neutral",
    "happy": "happiness",
    "joy": "happiness",
    "smile": "happiness",
    "surprised": "surprise",
    "suprise": "surprise",
    "sad": "sadness",
    "sorrow": "sadness",
    "angry": "anger",
    "mad": "anger",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "contemptuous": "contempt",
    "unknown": UNKNOWN,
    "nf": NOT_FACE,
    "notface": NOT_FACE,
    "notaface": NOT_FACE,
}


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def canonical_class(name: str) -> str | None:
    """Return the canonical class for a dataset's class name, or None if unknown.

    Also returns :data:`UNKNOWN` or :data:`NOT_FACE` for those pseudo-labels,
    which `clean` drops with a reason.
    """
    return _SYNONYMS.get(_normalise(str(name)))


# difflib similarity a folder name needs for "did you mean": "angery" -> angry is 0.91, "suprised" ->
# surprised 0.94, "neutal" -> neutral 0.92; "happy2" -> happy is 0.91 too (a near miss worth naming).
SUGGEST_CUTOFF = 0.8


def suggest_class(name: str) -> str | None:
    """The canonical class a name that :func:`canonical_class` does not know was most likely meant to be
    (a misspelling: ``"angery"`` -> ``"anger"``), or None when no spelling we know is close."""
    spellings = [k for k, v in _SYNONYMS.items() if v in CLASSES]
    close = difflib.get_close_matches(_normalise(str(name)), spellings, n=1, cutoff=SUGGEST_CUTOFF)
    return _SYNONYMS[close[0]] if close else None


def unknown_folder_reason(name: str) -> str:
    """Why images in a folder called ``name`` were left out: ``"folder angery: not an emotion; did you mean anger?"``."""
    close = suggest_class(PurePosixPath(name).name)
    return f"folder {name}: not an emotion" + (f"; did you mean {close}?" if close else "")


def known_class_names() -> list[str]:
    """Every spelling :func:`canonical_class` understands, for error messages."""
    return sorted(k for k, v in _SYNONYMS.items() if v in CLASSES)
