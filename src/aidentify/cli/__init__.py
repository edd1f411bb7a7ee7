"""The ``aidentify`` command line: a thin Typer shell over the library.

Only this package imports Typer and Rich. Commands parse options, load the
stage config, call one library function and render its report; errors from
the library arrive as :class:`aidentify.errors.AidentifyError` and leave as a
single ``error: ...`` line with exit code 1.
"""

from aidentify.cli.app import app
from aidentify.cli import data as _data_commands  # noqa: F401  (registers commands)
from aidentify.cli import train as _train_commands  # noqa: F401
from aidentify.cli import live as _live_commands  # noqa: F401
from aidentify.cli import serve as _serve_commands  # noqa: F401
from aidentify.cli import analyze as _analyze_commands  # noqa: F401


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
