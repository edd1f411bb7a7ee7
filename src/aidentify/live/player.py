"""The player: owns the source, the window and the output files around the pipeline.

Whatever happens (end of video, `q`, Ctrl-C, an error), the camera and the
window are released. Output video and timeline are written under temporary
names and renamed into place when the run ends normally or is stopped by the
user (`q`, Ctrl-C, or SIGTERM, which is treated as Ctrl-C); an error discards
them. Annotated images (``live/outputs.py``) are each written whole as soon as
they are done and always kept. Nothing else is written, except a snapshot when
the user presses `s`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from aidentify.config import LiveConfig
from aidentify.errors import DataError
from aidentify.files import atomic_write_bytes, check_output_file, check_output_folder
from aidentify.live.capture import FrameSource, SkipFn, check_camera_index, open_source, source_kind
from aidentify.live.draw import draw_fps
from aidentify.live.outputs import FolderOutput, ImageOutput, VideoOutput, plan_output
from aidentify.live.pipeline import STAGES
from aidentify.live.timeline import EmotionSummary, TimelineWriter
from aidentify.live.recognizer import Frame, Pipelines, Recognizer
from aidentify.processes import interrupts_deferred, sigterm_as_interrupt

WINDOW = "AIdentify (q: quit, s: snapshot)"
QUIT_KEYS = {ord("q"), ord("Q"), 27}


@dataclass
class LiveOptions:
    """Where frames come from and what to write; everything else is in LiveConfig."""

    camera: int | None = None
    source: str | None = None
    output: Path | None = None
    timeline: Path | None = None
    chart: Path | None = None
    window: bool = True
    max_frames: int | None = None
    # Instead of camera/source: writes the demo video into the folder it is given and returns its path
    # (called only once everything else has been checked and the model loaded).
    demo: Callable[[Path], str] | None = None


@dataclass
class LiveRun:
    """What a run did: frames, speed, mean stage costs, the summary and files written."""

    frames: int
    seconds: float
    stage_ms: dict[str, float]
    summary: EmotionSummary
    written: list[Path] = field(default_factory=list)
    snapshots: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (image file, why) left out
    stopped_by_user: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def has_display() -> bool:
    """Whether an OpenCV window can open (on Linux, cv2.imshow aborts the process without one)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run_live(config: LiveConfig, options: LiveOptions,
             on_frame: Callable[[Frame, FrameSource], bool | None] | None = None,
             on_skip: SkipFn | None = None) -> LiveRun:
    """Run the live pipeline over a source until it ends, the user quits or max_frames.

    ``on_frame(frame, source)`` hears of each processed frame as the Python API's :class:`Frame`
    (``frame.to_dict()`` is what ``live --json`` prints) and ends the run, as a user's stop
    does, by returning True (``live --json | head`` once its reader is gone); ``on_skip(file, why)`` hears of each
    unreadable or truncated image a folder source skips. Everything that can be refused (display,
    output paths, the model) is checked before ``options.demo`` composes its video, so an error
    comes before any word about the demo.
    """
    if options.window and not has_display():
        raise DataError("no display to open a window on; add --no-window (with --output/--timeline) "
                        "or run inside a desktop session")
    if options.camera is not None:
        check_camera_index(options.camera)  # before the model loads: a bad index is a typo, said at once
    out = plan_files(config, options)
    recognizer = Recognizer(config)
    scratch = tempfile.TemporaryDirectory(prefix="aidentify-demo-") if options.demo else contextlib.nullcontext()
    with scratch as folder:
        source_name = options.demo(Path(folder)) if options.demo else options.source
        source = open_source(options.camera, source_name, on_skip)
        return _play(config, options, recognizer, source, out, on_frame)


def _play(config: LiveConfig, options: LiveOptions, recognizer: Recognizer, source: FrameSource,
          out: VideoOutput | ImageOutput | FolderOutput | None,
          on_frame: Callable[[Frame, FrameSource], bool | None] | None) -> LiveRun:
    """Run the pipeline over the opened ``source`` (closed at the end); commit or discard the outputs."""
    try:
        pipelines = Pipelines(recognizer, source.stills)
    except BaseException:
        source.close()
        raise
    classes = recognizer.classes
    run = LiveRun(0, 0.0, {}, EmotionSummary(classes, stills=source.stills, files=source.folder))
    totals = dict.fromkeys(("capture", *STAGES, "output"), 0.0)
    timeline = None
    finished = False
    started = time.perf_counter()
    try:
        timeline = (TimelineWriter(options.timeline, classes, files=source.stills or source.folder)
                    if options.timeline else None)
        with sigterm_as_interrupt():  # `kill` keeps the recording, like Ctrl-C
            while options.max_frames is None or run.frames < options.max_frames:
                t0 = time.perf_counter()
                item = source.read()
                if item is None:
                    break
                frame, time_s = item
                totals["capture"] += (time.perf_counter() - t0) * 1000
                pipeline = pipelines.for_frame(source)
                annotated, result = pipeline(frame, draw=bool(out or options.window))
                for stage in STAGES:
                    totals[stage] += result.timings[stage]
                t1 = time.perf_counter()
                with interrupts_deferred():  # a frame is recorded whole: in the timeline and the video, or in neither
                    run.summary.add(time_s, result, photo=source.current_name)
                    if timeline:
                        timeline.add(time_s, result, photo=source.current_name)
                    if out:
                        # a file's frames go at their media time; a camera or stream's, one each
                        out.write(annotated, source.fps or 30.0, source.current, None if source.live else time_s,
                                  video=not pipeline.stills)
                quit_now = options.window and _show(annotated, config, run, source, time_s, started)
                totals["output"] += (time.perf_counter() - t1) * 1000
                run.frames += 1
                if on_frame and on_frame(recognizer.to_frame(result, frame, time_s, source.current_name or None,
                                                             pipeline.detector.name), source):
                    quit_now = True
                if quit_now:
                    run.stopped_by_user = True
                    break
        finished = True
    except KeyboardInterrupt:
        run.stopped_by_user = finished = True
    finally:
        run.seconds = time.perf_counter() - started if run.frames else 0.0
        run.skipped = list(source.skipped)
        source.close()
        if options.window:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
        if out:
            out.release()
        for writer, has_content in ((out, out and out.frames), (timeline, True)):
            if writer is not None:
                if finished and has_content:
                    run.written.append(writer.commit())
                else:
                    writer.discard()
    run.stage_ms = {stage: total / max(run.frames, 1) for stage, total in totals.items()}
    if options.chart:
        from aidentify.live.chart import write_chart  # matplotlib: only when a chart is asked for

        run.written.append(write_chart(run.summary, Path(options.chart)))
    return run


def plan_files(config: LiveConfig, options: LiveOptions) -> VideoOutput | ImageOutput | FolderOutput | None:
    """Check every path the run may write before any work (one error line for a path through a
    file, an existing folder given as a file, a folder without permission or room); the
    ``--output`` writer, or None."""
    out = None
    if options.output is not None:
        out = plan_output(Path(options.output), source_kind(options.camera, options.source), options.source)
    for option, path in (("--timeline", options.timeline), ("--chart", options.chart)):
        if path is not None:
            check_output_file(Path(path), f"{option} {path}")
    if options.window:  # `s` saves a snapshot there
        check_output_folder(Path(config.snapshot_dir), f"snapshots in {config.snapshot_dir}")
    return out


def _show(annotated: np.ndarray, config: LiveConfig, run: LiveRun, source: FrameSource, time_s: float,
          started: float) -> bool:
    """Show the frame, handle the keys (s: snapshot); True when the user wants to stop."""
    if config.draw.fps:
        elapsed = time.perf_counter() - started
        draw_fps(annotated, run.frames / elapsed if elapsed > 0 else 0.0)
    cv2.imshow(WINDOW, annotated)
    key = cv2.waitKey(_pace_ms(source, time_s, started)) & 0xFF
    if key in (ord("s"), ord("S")):
        run.snapshots.append(_save_snapshot(annotated, Path(config.snapshot_dir)))
    return key in QUIT_KEYS or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1


def _pace_ms(source: FrameSource, time_s: float, started: float) -> int:
    """Milliseconds to wait for a key so that a file plays at its own speed in the window."""
    if source.live:
        return 1
    ahead = time_s - (time.perf_counter() - started)
    return max(1, int(ahead * 1000))


def _save_snapshot(frame: np.ndarray, folder: Path) -> Path:
    """Write the annotated frame (only when the user asked with `s`)."""
    path = folder / f"snapshot-{datetime.now():%Y%m%d-%H%M%S-%f}.png"
    ok, encoded = cv2.imencode(".png", frame)
    if not ok:
        raise DataError("could not encode the snapshot")
    atomic_write_bytes(path, encoded.tobytes())
    return path
