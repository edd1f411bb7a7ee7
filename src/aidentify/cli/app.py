"""The Typer app and what every command shares: options, errors, progress."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from typer.core import TyperCommand, TyperOption

from aidentify import __version__
from aidentify.errors import AidentifyError, ExtraMissing
from aidentify.extras import missing_extra
from aidentify.files import not_utf8_message, os_error_cause

class OneValueCommand(TyperCommand):
    """A command that refuses a single-value option given more than once.

    Click keeps only the last of ``--source a.jpg --source b.mp4``, so the run
    silently ignores the first; here that is one error line and exit code 2 (a
    usage error) instead. Options meant to repeat (``--set``, ``evaluate --model``)
    are lists and flags (``--window/--no-window``) are left alone.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            repeated = repeated_options(self, ctx, args)
            if repeated:
                option, times = repeated
                err_console.print(f"[bold red]error:[/] {option} was given {times} times; "
                                  f"{ctx.info_name} takes one {option}: give it once", highlight=False,
                                  soft_wrap=True)
                raise typer.Exit(2)
        return super().parse_args(ctx, args)


def repeated_options(command: TyperCommand, ctx: typer.Context, args: list[str]) -> tuple[str, int] | None:
    """The first single-value option ``args`` give more than once and how many times, or None.

    Parses a copy of ``args`` with the command's own parser (so ``--opt=value``, short
    names and values that look like options count as Click counts them); a parse error
    is left for the real parse to report."""
    try:
        _, _, order = command.make_parser(ctx).parse_args(args=list(args))
    except Exception:  # Click's usage errors (typer vendors its own click)
        return None
    counts = Counter(param for param in order if isinstance(param, TyperOption) and not param.multiple
                     and not param.is_flag and not param.count)
    for param, times in counts.items():
        if times > 1:
            return max(param.opts, key=len), times
    return None


class AidentifyTyper(typer.Typer):
    """Every command of the app is a :class:`OneValueCommand`."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any):
        return super().command(*args, cls=cls or OneValueCommand, **kwargs)


app = AidentifyTyper(
    name="aidentify",
    help="Facial-emotion recognition: datasets -> clean face crops -> trained model -> live overlay.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Stage YAML file (default: configs/<stage>.yaml if present, else built-in defaults).",
                 show_default=False),
]


def set_option(example: str) -> Any:
    """The ``--set`` option of a command whose config has the key of ``example`` (``key=value``).

    Each command names its own example, so no ``--help`` shows a key its command refuses
    (``tests/cli`` loads every example into its command's config)."""
    return Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help=f"Override a config key, e.g. --set {example} (repeatable; dotted keys; "
                                         "YAML values).", show_default=False),
    ]


VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show full tracebacks on errors.")
]


def _version(value: bool) -> None:
    if value:
        console.print(f"aidentify {__version__}")
        raise typer.Exit()


# The subcommand being run ("train"), for messages that name it; set by the app's callback.
_running = {"command": "aidentify"}


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Facial-emotion recognition: datasets -> clean face crops -> trained model -> live overlay."""
    _running["command"] = ctx.invoked_subcommand or "aidentify"


def run_guarded(verbose: bool, work: Callable[[], T]) -> T:
    """Run a command body; turn our errors into one line and exit code 1.

    Ctrl-C exits with 130 and a hint that stages resume; a package of the
    ``train`` extra that is not installed is one line naming the command and the
    extra (:class:`~aidentify.errors.ExtraMissing`); anything unexpected is one
    line too, unless ``--verbose`` asks for the traceback.
    """
    try:
        try:
            return work()
        except ImportError as exc:  # a lazy import of the train extra not made through import_extra
            missing = missing_extra(exc)
            if missing is None:
                raise
            raise missing from None
    except ExtraMissing as exc:  # one line that names the command: "train needs TensorFlow: pip install ..."
        if verbose:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {escape(exc.for_command(_running['command']))}",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except AidentifyError as exc:
        if verbose:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: nothing finished was lost; run the same command to resume")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:  # a bug or an environment problem: still one line
        if verbose:
            traceback.print_exc()
        explained = environment_problem(exc)
        message = explained or (f"unexpected {type(exc).__name__}: {exc} "
                                "(run again with --verbose for the traceback)")
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def environment_problem(exc: Exception) -> str | None:
    """The one line for an error a user can fix that no library code turned into ours, else None.

    A last net: a file read as text that is not UTF-8, a folder without write
    permission, a full disk, a path through a file. Every output path is checked
    before work starts (``files.check_output_file``/``check_output_folder``). Where library code knows the file it names it itself.
    """
    if isinstance(exc, UnicodeDecodeError):
        return not_utf8_message(None, exc)
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
                                                   errno.ENOTDIR, errno.EISDIR):
        return os_error_cause(exc)
    return None


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A Rich progress display driven by the library's ``progress(task, done, total)``."""
    columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=False, disable=not sys.stderr.isatty()
                  and not _force_progress()) as bar:
        tasks: dict[str, Any] = {}

        def update(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        yield update


def _force_progress() -> bool:
    return os.environ.get("AIDENTIFY_PROGRESS") == "1"


def say_config(origin: str) -> None:
    console.print(f"[dim]config: {origin}[/]")
