"""The ``analyze`` command: a study of many recordings of one stimulus (docs/analyze.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from aidentify.cli.app import (ConfigOption, VerboseOption, app, console, err_console, progress_bar, run_guarded,
                               say_config, set_option)
from aidentify.config import AnalyzeConfig, load_config
from aidentify.errors import DataError

AnalyzeSet = set_option("epoch_s=0.5")


@app.command()
def analyze(
    recordings: Annotated[list[Path] | None, typer.Argument(help="Recordings (video files) or folders of them.",
                                                            show_default=False)] = None,
    respondents: Annotated[Path | None, typer.Option("--respondents", help="A CSV: recording (path relative to the CSV), "
                                                     "respondent, offset_s (when the stimulus starts in the recording), "
                                                     "and group columns.", show_default=False)] = None,
    segments: Annotated[Path | None, typer.Option("--segments", help="A CSV of name,start_s,end_s on the stimulus clock.",
                                                  show_default=False)] = None,
    stimulus: Annotated[Path | None, typer.Option("--stimulus", help="The video they watched: its length bounds the "
                                                  "epochs, its frames mark the report's time axis.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The study folder [default: study].",
                                             show_default=False)] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Recordings at once, one process each "
                                                "[default: one per CPU core].", show_default=False)] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Run on a Dask scheduler (tcp://HOST:8786; "
                                                "pip install 'aidentify[cluster]').", show_default=False)] = None,
    all_faces: Annotated[bool, typer.Option("--all-faces", help="Keep every face of a frame, not one respondent "
                                            "(a group watching together).")] = False,
    annotate: Annotated[bool, typer.Option("--annotate", help="Also write each recording's annotated video.")] = False,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="A .tflite or .keras file or a run folder "
                                               "[default: the shipped model].", show_default=False)] = None,
    config: ConfigOption = None,
    set_: AnalyzeSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Analyse a study: many recordings of people watching one stimulus, on every core, into one report."""

    def work() -> None:
        from aidentify.analyze.inputs import study_inputs
        from aidentify.analyze.study import run_study
        from aidentify.live.timeline import plural

        options = {"out": out, "workers": workers, "cluster": cluster, "model": model,
                   "all_faces": all_faces or None, "annotate": annotate or None}
        cfg, origin = load_config(AnalyzeConfig, config, set_, options, stage="analyze")
        say_config(origin)
        if stimulus is not None and not Path(stimulus).is_file():
            raise DataError(f"--stimulus {stimulus}: no such file")
        inputs = study_inputs(list(recordings or []), respondents, segments)
        for note in inputs.notes:
            err_console.print(f"[bold yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
        total = _frames_expected(inputs)
        heading = f"{plural(len(inputs.recordings), 'recording')} ({total:,} frames) -> {escape(str(cfg.out))}"
        with progress_bar() as progress:
            run = run_study(cfg, inputs, stimulus, _Hooks(progress, total, heading))
        _say_outcome(run)

    run_guarded(verbose, work)


def _frames_expected(inputs) -> int:
    from aidentify.live.folder import MOVING, frames_hint

    return sum(frames_hint(r.path, MOVING) for r in inputs.recordings)


class _Hooks:
    """The study's progress bar over the frames of all recordings, and one line as each ends."""

    def __init__(self, progress, total: int, heading: str):
        self._progress, self._total, self._heading = progress, total, heading

    def started(self) -> None:  # said once the folder is ours: a refusal comes alone
        console.print(self._heading)

    def progress(self, frames_done: int) -> None:
        if self._total:
            self._progress("frames", min(frames_done, self._total), self._total)

    def finished(self, result) -> None:
        name = escape(result.recording.respondent)
        if result.failure is not None:
            err_console.print(f"[bold red]failed[/] {name}: {escape(result.failure)}", highlight=False, soft_wrap=True)
        elif result.reused:
            console.print(f"[dim]done before[/] {name}: {result.summary['frames']} frames (same file, model and settings)")
        else:
            s = result.summary
            fps = s["frames"] / s["processing_s"] if s["processing_s"] else 0.0
            console.print(f"done {name}: {s['frames']} frames, face in {s['face_share']:.0%}, "
                          f"{s['processing_s']:.1f} s ({fps:.0f} frames/s)")
        if result.summary and result.summary.get("ended_early"):
            s = result.summary
            err_console.print(f"[bold yellow]warning:[/] {name}: decoding stopped after {s['frames']} of the "
                              f"{s['frames_expected']} frames its header announces ({s['duration_s']:.1f} s); "
                              "the file may be cut short (its timeline covers only that part)",
                              highlight=False, soft_wrap=True)

    def retry(self, recording, attempt: int) -> None:
        err_console.print(f"[bold yellow]retry[/] {escape(recording.respondent)}: its worker died; "
                          f"starting it again (attempt {attempt})", highlight=False, soft_wrap=True)


def _say_outcome(run) -> None:
    from aidentify.live.timeline import plural

    for respondent, why in run.skipped.items():
        err_console.print(f"[bold yellow]warning:[/] {escape(respondent)} left out of the statistics: {escape(why)}",
                          highlight=False, soft_wrap=True)
    analysed = len(run.results) - len(run.failed)
    fps = f", {run.fps:.0f} frames/s" if run.fps is not None else ""  # reused recordings cost no work
    console.print(f"analysed {analysed} of {plural(len(run.results), 'recording')} in {run.analyse_s:.1f} s{fps}"
                  f"{' on ' + escape(run.runner) if run.runner else ''}; aggregated in {run.aggregate_s:.1f} s")
    for path in run.written:
        console.print(f"wrote {escape(str(path))}")
    if run.failed:
        names = ", ".join(escape(str(r.recording.path)) for r in run.failed)
        err_console.print(f"[bold yellow]{len(run.failed)} failed[/] (see failed.csv): {names}",
                          highlight=False, soft_wrap=True)
    if analysed == 0:
        raise typer.Exit(1)
