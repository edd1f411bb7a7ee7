"""AIdentify: facial-emotion recognition from public datasets to a live overlay.

The package is a library first: every stage is a plain function driven by a
validated config (see :mod:`aidentify.config`). Only :mod:`aidentify.cli`
imports Typer or Rich, and TensorFlow is imported lazily inside the training
and live code, so ``aidentify --help`` and the data stages start fast.
"""

__version__ = "0.1.0"
