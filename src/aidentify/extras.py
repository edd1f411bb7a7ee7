"""The packages only the ``train`` extra installs, and the one error their absence becomes.

``pip install aidentify`` brings what labelling needs (OpenCV, LiteRT, the shipped
detector and classifier files); ``pip install 'aidentify[train]'`` adds TensorFlow
(with Keras), TensorBoard and the Kaggle client for ``download``, ``train``,
``average``, ``export``, ``distill`` and ``.keras`` models. Every lazy import of
those goes through :func:`import_extra` (TensorFlow through
:func:`aidentify.native_logs.import_tensorflow`), so a missing one is always the
same :class:`~aidentify.errors.ExtraMissing`, which the CLI prints as
``error: train needs TensorFlow: pip install 'aidentify[train]'``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from aidentify.errors import ExtraMissing

# Top-level module -> (the name users know it by, the extra that installs it).
EXTRA_MODULES = {
    "tensorflow": ("TensorFlow", "train"),
    "keras": ("TensorFlow", "train"),  # Keras 3 comes with TensorFlow here
    "tensorboard": ("TensorBoard", "train"),
    "kaggle": ("Kaggle", "train"),
    "mtcnn": ("the mtcnn package", "train"),  # scripts/ship_detectors.py and the reference tests only
}


def missing_extra(exc: ImportError) -> ExtraMissing | None:
    """The :class:`ExtraMissing` that ``exc`` means, or None when it is about another module.

    Only a module of :data:`EXTRA_MODULES` that is itself absent counts; a broken
    TensorFlow install (one of its own dependencies missing) stays the ImportError it is.
    """
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or name not in EXTRA_MODULES:
        return None
    return ExtraMissing(*EXTRA_MODULES[name])


def import_extra(module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"kaggle.api.kaggle_api_extended"``) from an optional extra.

    Raises :class:`ExtraMissing` when its top-level package is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc)
        if missing is None:
            raise
        raise missing from None


def require_extra(module: str) -> None:
    """Raise :class:`ExtraMissing` now when ``module`` (a key of :data:`EXTRA_MODULES`) is not installed.

    Finds it without importing it (TensorFlow takes 5-10 s), so a command can say
    what to install before it checks its inputs.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules (None), as Python allows
        found = False
    if not found:
        raise ExtraMissing(*EXTRA_MODULES[module])
