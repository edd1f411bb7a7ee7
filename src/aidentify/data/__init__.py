"""Data stages: download, clean, prepare and augment, plus their helpers.

Nothing here imports TensorFlow, Typer or Rich: these stages start fast and
report progress through a plain callback (see :mod:`aidentify.progress`).
"""
