"""A progress callback the library calls and the CLI renders.

Library code must not import Rich, so long loops report through a plain
function ``progress(task, done, total)``; the CLI passes one that drives a
Rich progress bar, tests pass nothing.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, int, int], None]


def no_progress(task: str, done: int, total: int) -> None:
    """The default: report nothing."""
