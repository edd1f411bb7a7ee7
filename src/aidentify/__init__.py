"""AIdentify: facial-emotion recognition from public datasets to a live overlay.

The Python API (docs/api.md)::

    import aidentify
    recognizer = aidentify.load()                 # the shipped model and the default detector
    faces = recognizer.predict("photo.jpg")       # or an (H, W, 3) uint8 BGR array, or a PIL image
    faces[0].label, faces[0].confidence, faces[0].box, faces[0].probabilities
    for frame in recognizer.stream("video.mp4"):  # or a camera index, a folder, a stream URL
        print(frame.time_s, [face.label for face in frame.faces])

The package is a library first: every stage is a plain function driven by a
validated config (see :mod:`aidentify.config`). Only :mod:`aidentify.cli`
imports Typer or Rich, and TensorFlow is imported only by training code, so
``import aidentify``, ``aidentify --help`` and labelling start fast and run
without it. The API's names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AidentifyError", "Face", "Frame", "Recognizer", "load"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs; imported lazily at run time
    from aidentify.errors import AidentifyError
    from aidentify.live.recognizer import Face, Frame, Recognizer, load

_API = "aidentify.live.recognizer"
_LAZY = {"load": _API, "Recognizer": _API, "Face": _API, "Frame": _API, "AidentifyError": "aidentify.errors"}


def __getattr__(name: str) -> Any:
    """Import the API's names on first use (``import aidentify`` stays light for the CLI)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aidentify' has no attribute {name!r}")
