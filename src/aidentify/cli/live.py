"""Live and deployment commands: live (camera, video, images, demo) and export."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from aidentify.cli.app import (ConfigOption, VerboseOption, app, console, err_console, progress_bar, run_guarded,
                               set_option)
from aidentify.config import LiveConfig, load_config
from aidentify.errors import DataError

LiveSet = set_option("detect.every=5")


@app.command()
def live(
    camera: Annotated[int | None, typer.Option("--camera", help="Camera index (0 is usually the built-in webcam).",
                                               show_default=False)] = None,
    source: Annotated[str | None, typer.Option("--source", help="A video file, an image or animation, a folder of them, or a stream URL.",
                                               show_default=False)] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Use the built-in demo video (a scene made of photos our dependencies ship).")] = False,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="A .keras or .tflite file or a run folder [default: the shipped model].",
                                               show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the annotated result here: a video (.mp4/.avi) for a video, camera or stream; "
                                                "an image (.jpg/.png/.webp/.bmp) for an image; a folder for a folder of images.",
                                                show_default=False)] = None,
    timeline: Annotated[Path | None, typer.Option("--timeline", help="Write one CSV row per face per frame here.",
                                                  show_default=False)] = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="Write the per-face emotion summary as a PNG chart.",
                                               show_default=False)] = None,
    window: Annotated[bool, typer.Option("--window/--no-window", help="Show the overlay in a window (q/Esc quits, s saves a snapshot).")] = True,
    bars: Annotated[bool | None, typer.Option("--bars/--no-bars", help="Probability bars beside each face.",
                                              show_default=False)] = None,
    detect_every: Annotated[int | None, typer.Option("--detect-every", help="Run the face detector every N frames.",
                                                     show_default=False)] = None,
    max_frames: Annotated[int | None, typer.Option("--max-frames", help="Stop after this many frames.",
                                                   show_default=False)] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="Print one JSON object per photo or frame on stdout "
                                             "(the fields of /api/predict; docs/api.md); tables go to stderr.")] = False,
    config: ConfigOption = None,
    set_: LiveSet = None,
    verbose: VerboseOption = False,
) -> None:
    """Label every face in a camera feed, video, image or folder with its emotion."""
    from aidentify.live.player import LiveOptions, run_live
    from aidentify.live.timeline import plural

    screen = err_console if json_lines else console  # with --json, stdout carries JSON only

    def work() -> None:
        if [demo, camera is not None, source is not None].count(True) != 1:
            raise DataError("give one of --demo, --camera INDEX or --source PATH_OR_URL")
        options = {"model": model, "draw.bars": bars, "detect.every": detect_every}
        cfg, origin = load_config(LiveConfig, config, set_, options, stage="live")
        screen.print(f"[dim]config: {origin}[/]")
        opts = LiveOptions(camera=camera, source=source, output=output, timeline=timeline, chart=chart,
                           window=window, max_frames=max_frames, demo=_demo_source if demo else None)
        with progress_bar() as progress:
            done = [0]

            def on_frame(frame, frame_source) -> bool:
                done[0] += 1
                if json_lines and not _print_json_line(frame.to_dict()):
                    return True  # the reader is gone (`| head`): stop as a user's quit does
                if frame_source.frame_count and not frame_source.live:
                    progress("frames", min(done[0], frame_source.frame_count), frame_source.frame_count)
                return False

            def on_skip(path: Path, why: str) -> None:
                err_console.print(f"[bold yellow]warning:[/] {escape(str(path))}: {why} (skipped)",
                                  highlight=False, soft_wrap=True)

            run = run_live(cfg, opts, on_frame, on_skip)
        _print_summary(run.summary, screen)
        cap_key = "photo_max_faces" if run.summary.stills else "max_faces"
        note = run.summary.cap_note(getattr(cfg.detect, cap_key))
        if note:
            err_console.print(f"[bold yellow]warning:[/] {note}; keep more with --set detect.{cap_key}=N",
                              highlight=False, soft_wrap=True)
        stages = ", ".join(f"{name} {ms:.1f}" for name, ms in run.stage_ms.items())
        screen.print(f"{plural(run.frames, 'frame')} in {run.seconds:.1f} s: {run.fps:.1f} frames/s "
                      f"(ms per frame: {stages}){_skipped_note(run.skipped)}")
        for path in run.written + run.snapshots:
            screen.print(f"wrote {escape(str(path))}")

    run_guarded(verbose, work)


def _print_json_line(record: dict) -> bool:
    """Write one JSON object a line on stdout, flushed at once (`| jq` follows along); False when
    the reader has gone (`| head -n 3`), after pointing stdout at /dev/null so that Python's own
    flush at exit finds no broken pipe (the recipe of Python's `signal` docs, "Note on SIGPIPE")."""
    try:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False


def _print_summary(summary, screen) -> None:
    """The summary table, or one clear line when no face was found; for photos, a line per faceless photo."""
    if not summary.tracks:
        screen.print(f"[bold yellow]no face found[/] in {escape(summary.without_face_where())}")
        return
    screen.print(_summary_table(summary))
    for photo in summary.photos_without_face:
        screen.print(f"[bold yellow]no face found[/] in {escape(photo)}")


def _skipped_note(skipped: list[tuple[Path, str]]) -> str:
    """"; 3 files skipped (1 unreadable, 1 truncated, 1 not an image or video)", or nothing when none was."""
    from aidentify.imagefile import UNREADABLE
    from aidentify.live.folder import SUBFOLDER

    if not skipped:
        return ""
    short = {UNREADABLE: "unreadable", SUBFOLDER: "a folder"}
    counts = Counter(short.get(why, why) for _, why in skipped)
    files = "file" if len(skipped) == 1 else "files"
    return f"; {len(skipped)} {files} skipped ({', '.join(f'{n} {why}' for why, n in counts.items())})"


def _summary_table(summary) -> Table:
    """Videos: one row per tracked face (frames, time seen, main emotion, largest shares of frames).
    Photos: one row per face per photo, named by the file, with its largest probabilities."""
    from aidentify.live.timeline import plural

    unit = "photo" if summary.stills else "frame"
    title = "Emotion per face per photo" if summary.stills else "Emotion shares per face"
    table = Table(title=f"{title} ({plural(summary.frames, unit)}, {summary.frames_without_face} without a face)")
    table.add_column("face", justify="right", no_wrap=True)
    if summary.stills:
        table.add_column("emotion")
        table.add_column("probabilities")
        for track in summary.rows():
            probs = track.samples[0][1]
            top = sorted(zip(summary.classes, probs), key=lambda item: -item[1])
            table.add_row(escape(track.name), f"{top[0][0]} {top[0][1]:.0%}",
                          ", ".join(f"{label} {p:.0%}" for label, p in top[:4] if p >= 0.005 or label == top[0][0]))
        return table
    for column, justify in (("frames", "right"), ("seen (s)", "right"), ("main emotion", "left"), ("shares", "left")):
        table.add_column(column, justify=justify)
    for track in summary.rows():
        shares = track.shares()
        main = next(iter(shares))
        table.add_row(track.name, str(track.frames), f"{track.first_s:.1f}–{track.last_s:.1f}",
                      f"{main} {shares[main]:.0%}",
                      ", ".join(f"{label} {share:.0%}" for label, share in list(shares.items())[:4]))
    return table


def _demo_source(folder: Path) -> str:
    """Compose the demo video into ``folder`` and return its path (run_live calls it once the run's
    options and model have passed their checks, so an error is never preceded by this banner)."""
    from aidentify.live.demo import write_demo_video

    err_console.print("[dim]demo: 4 people in front of the Summer Palace, from photos our dependencies ship "
                  "(docs/live.md), 6 s at 30 frames/s[/]")
    return str(write_demo_video(folder / "demo.mp4", faces=4, seconds=6.0))


@app.command()
def export(
    model: Annotated[Path, typer.Option("--model", "-m", help="A .keras file or a run folder.")],
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default: next to the model].",
                                             show_default=False)] = None,
    verbose: VerboseOption = False,
) -> None:
    """Write .tflite files (float32 and dynamic-range int8) and check them against the Keras model."""
    from aidentify.inference.export import TOLERANCE, export_model

    def work() -> None:
        for item in export_model(model, out):
            console.print(f"{item.kind:>7}: {escape(str(item.path))} ({item.size_bytes / 1e6:.2f} MB); "
                          f"largest probability difference {item.max_difference:.2g} (limit {TOLERANCE[item.kind]:g}), "
                          f"same top class on {item.top1_agreement:.0%} of {item.checked_on} face crops")

    run_guarded(verbose, work)
