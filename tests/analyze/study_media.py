"""A study whose expressions are known, built from real photos our dependencies ship.

Two portraits the shipped model reads with confidence: scikit-image's astronaut (Eileen Collins,
smiling: happiness) and matplotlib's Grace Hopper (neutral). Each recording shows one of them on a
grey wall, switching at a known stimulus time; recordings start ``offset_s`` before the stimulus, so
recording time = stimulus time + offset. A face can be absent for a stretch (an empty wall).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SIZE = (320, 240)
FPS = 10.0


def _portraits() -> dict[str, np.ndarray]:
    from aidentify.faces.samples import expression_portraits

    return expression_portraits(110)


@dataclass(frozen=True)
class Respondent:
    """``schedule``: ``[(start_s, label or None)]`` on the stimulus clock (None: nobody in view)."""

    name: str
    group: str
    offset_s: float
    schedule: tuple[tuple[float, str | None], ...]


def label_at(schedule, t: float) -> str | None:
    current = None
    for start, label in schedule:
        if t >= start:
            current = label
    return current


def write_recording(path: Path, respondent: Respondent, stimulus_s: float) -> Path:
    """A 320x240 video (MJPG .avi, or mp4v .mp4) at 10 frames/s covering the offset, then the stimulus."""
    portraits = _portraits()
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, FPS, SIZE)
    assert writer.isOpened()
    frames = int(round((respondent.offset_s + stimulus_s) * FPS))
    for i in range(frames):
        t = i / FPS - respondent.offset_s
        frame = np.full((SIZE[1], SIZE[0], 3), 105, np.uint8)
        label = label_at(respondent.schedule, max(t, 0.0))
        if label is not None:
            head = portraits[label]
            x = 110 + int(6 * np.sin(i / 7))  # a little sway, as a person sitting
            frame[60:60 + head.shape[0], x:x + head.shape[1]] = head
        writer.write(frame)
    writer.release()
    return path


def write_study(folder: Path, respondents: list[Respondent], stimulus_s: float,
                truncated: bool = True) -> Path:
    """Recordings plus ``respondents.csv`` (and one truncated file listed too, if asked); the CSV's path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in respondents:
        write_recording(folder / f"{r.name}.avi", r, stimulus_s)
        rows.append([f"{r.name}.avi", r.name, r.offset_s, r.group])
    if truncated:  # an .mp4 cut at 30%, as a copy that stopped: its index (moov) is at the end, so gone
        whole = write_recording(folder / "broken.mp4", respondents[0], stimulus_s).read_bytes()
        (folder / "broken.mp4").write_bytes(whole[: len(whole) * 3 // 10])
        rows.append(["broken.mp4", "broken", 0.0, "A"])
    with open(folder / "respondents.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["recording", "respondent", "offset_s", "group"])
        writer.writerows(rows)
    return folder / "respondents.csv"
