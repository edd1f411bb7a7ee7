"""A study's inputs, checked whole before any work: recordings, ``respondents.csv``, ``segments.csv``.

Recordings come as paths and folders (every video or animation in a folder, by content; anything
else there is named in a note, never dropped silently), or from ``respondents.csv``:

    recording,respondent,offset_s,group
    videos/p01.mp4,p01,2.5,A

``recording`` is a path relative to the CSV's folder; ``respondent`` (default: the file's stem) names
the person; ``offset_s`` (default 0) is the recording time at which the stimulus starts; every other
column is a group variable. ``segments.csv`` (``name,start_s,end_s``) names parts of the stimulus on
its clock. Every problem found is reported, one ``FILE line N: …`` each, in one :class:`StudyInputError`.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from aidentify.analyze.epochs import Segment
from aidentify.errors import DataError
from aidentify.files import read_utf8

RESPONDENT_COLUMNS = ("recording", "respondent", "offset_s")
SEGMENT_COLUMNS = ("name", "start_s", "end_s")
# epochs.csv's own columns (the class names are checked once the model is known, by the aggregation)
RESERVED = {"time_s", "face_share", "valence", "expressiveness"}
# Characters a respondent's name cannot carry into its folder name (path separators, control characters).
UNSAFE_IN_FOLDER = re.compile(r"[/\\\x00-\x1f]")


class StudyInputError(DataError):
    """One or more problems with a study's inputs; ``problems`` holds one line each.

    Its text joins them with ``\\nerror: `` so the CLI prints one ``error:`` line per problem.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\nerror: ".join(self.problems))


@dataclass(frozen=True)
class Recording:
    """One respondent's recording: ``path`` (a video file), ``respondent`` (a unique name),
    ``offset_s`` (seconds into the recording when the stimulus starts), ``groups`` (column -> value)."""

    path: Path
    respondent: str
    offset_s: float = 0.0
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def folder_name(self) -> str:
        """The respondent's folder under ``recordings/``: the name, with path separators replaced."""
        return UNSAFE_IN_FOLDER.sub("_", self.respondent).strip(". ") or "respondent"


@dataclass
class StudyInputs:
    """Everything a study reads, checked: recordings in order, group columns, segments, and notes
    (files of a folder that are not videos) for the user."""

    recordings: list[Recording]
    group_columns: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def study_inputs(paths: list[Path], respondents_csv: Path | None = None,
                 segments_csv: Path | None = None) -> StudyInputs:
    """Read and check every input; raise :class:`StudyInputError` listing all problems found.

    Give ``paths`` (recordings and folders) or ``respondents_csv``, not both.
    """
    if paths and respondents_csv is not None:
        raise StudyInputError(["give recordings (files or folders) or --respondents CSV, not both"])
    if not paths and respondents_csv is None:
        raise StudyInputError(["no recordings: give video files or folders, or --respondents respondents.csv"])
    problems: list[str] = []
    if respondents_csv is not None:
        inputs = _from_respondents_csv(Path(respondents_csv), problems)
    else:
        inputs = _from_paths([Path(p) for p in paths], problems)
    if segments_csv is not None:
        inputs.segments = _segments(Path(segments_csv), problems)
    _check_unique_folders(inputs.recordings, problems)
    if problems:
        raise StudyInputError(problems)
    if not inputs.recordings:
        raise StudyInputError(["no recordings found" + (f" ({'; '.join(inputs.notes)})" if inputs.notes else "")])
    return inputs


def _from_paths(paths: list[Path], problems: list[str]) -> StudyInputs:
    """Recordings from files and folders (a folder gives every video or animation in it)."""
    from aidentify.live.folder import MOVING, list_folder

    recordings, notes = [], []
    for path in paths:
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
        elif path.is_dir():
            items, left_out = list_folder(path)
            recordings += [Recording(p, p.stem) for p, kind in items if kind == MOVING]
            skipped = [(p, "a photo, not a recording") for p, kind in items if kind != MOVING] + left_out
            notes += [f"{p}: {why} (not analysed)" for p, why in skipped]
        else:
            recordings.append(Recording(path, path.stem))
    seen: dict[Path, Path] = {}
    stems: dict[str, Path] = {}
    for recording in recordings:
        key = recording.path.resolve()
        if key in seen:
            problems.append(f"{recording.path}: given twice (also as {seen[key]})")
        elif recording.respondent in stems:
            problems.append(f"{recording.path} and {stems[recording.respondent]} would both be respondent "
                            f"{recording.respondent!r}; name them in a --respondents CSV")
        seen.setdefault(key, recording.path)
        stems.setdefault(recording.respondent, recording.path)
    return StudyInputs(recordings, notes=notes)


def _read_table(path: Path, problems: list[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """``(header, [(line number, row)])`` of a UTF-8 CSV (a BOM is fine); problems appended."""
    if not path.is_file():
        problems.append(f"{path}: no such file")
        return [], []
    reader = csv.reader(io.StringIO(read_utf8(path), newline=""))
    header = [h.strip() for h in next(reader, [])]
    rows = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"{path} line {reader.line_num}: {len(row)} fields, the header has {len(header)}")
            continue
        rows.append((reader.line_num, {h: cell.strip() for h, cell in zip(header, row)}))
    return header, rows


def _check_columns(path: Path, header: list[str], known: tuple[str, ...], required: tuple[str, ...],
                   free: bool, problems: list[str]) -> None:
    """Required columns present; a column that looks like a misspelt known one is an error (with the
    name it resembles); others are group variables when ``free``, else errors."""
    for name in required:
        if name not in header:
            problems.append(f"{path}: no {name!r} column (columns: {', '.join(header) or 'none'})")
    if len(set(header)) != len(header):
        problems.append(f"{path}: a column name appears twice ({', '.join(header)})")
    for name in header:
        if name in known:
            continue
        close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
        if close or not free:
            hint = f"; did you mean {close[0]!r}?" if close else f"; the columns are {', '.join(known)}"
            problems.append(f"{path}: unknown column {name!r}{hint}")
        elif name in RESERVED:
            problems.append(f"{path}: column {name!r} would clash with an output column; rename it")


def _number(text: str, default: float | None = None) -> float | None:
    """A finite float from ``text`` ('' gives ``default``); None when it is not one."""
    if text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _from_respondents_csv(path: Path, problems: list[str]) -> StudyInputs:
    header, rows = _read_table(path, problems)
    if not header:
        return StudyInputs([])
    _check_columns(path, header, RESPONDENT_COLUMNS, ("recording",), True, problems)
    groups = [h for h in header if h not in RESPONDENT_COLUMNS
              and not difflib.get_close_matches(h.lower(), RESPONDENT_COLUMNS, n=1, cutoff=0.6)]
    recordings: list[Recording] = []
    first_line: dict[Path, int] = {}
    names: dict[str, int] = {}
    for line, row in rows:
        where = f"{path} line {line}"
        if not row.get("recording"):
            problems.append(f"{where}: no recording")
            continue
        video = (path.parent / row["recording"]) if not Path(row["recording"]).is_absolute() else Path(row["recording"])
        offset = _number(row.get("offset_s", ""), 0.0)
        if not video.is_file():
            problems.append(f"{where}: recording {row['recording']}: no such file (looked for {video})")
        if offset is None:
            problems.append(f"{where}: offset_s {row['offset_s']!r} is not a number of seconds")
        key = video.resolve()
        if key in first_line:
            problems.append(f"{where}: recording {row['recording']} is also on line {first_line[key]}")
            continue
        first_line[key] = line
        name = row.get("respondent") or video.stem
        if name in names:
            problems.append(f"{where}: respondent {name!r} is also on line {names[name]}")
        names.setdefault(name, line)
        recordings.append(Recording(video, name, offset or 0.0, {g: row[g] for g in groups}))
    return StudyInputs(recordings, group_columns=groups)


def _segments(path: Path, problems: list[str]) -> list[Segment]:
    header, rows = _read_table(path, problems)
    if not header:
        return []
    _check_columns(path, header, SEGMENT_COLUMNS, SEGMENT_COLUMNS, False, problems)
    if any(name not in header for name in SEGMENT_COLUMNS):
        return []
    segments, names = [], {}
    for line, row in rows:
        where = f"{path} line {line}"
        start, end = _number(row["start_s"]), _number(row["end_s"])
        if not row["name"]:
            problems.append(f"{where}: no name")
        elif row["name"] in names:
            problems.append(f"{where}: segment {row['name']!r} is also on line {names[row['name']]}")
        names.setdefault(row["name"], line)
        if start is None or end is None:
            problems.append(f"{where}: start_s and end_s must be numbers of seconds "
                            f"(got {row['start_s']!r}, {row['end_s']!r})")
        elif not end > start:
            problems.append(f"{where}: end_s {end:g} is not after start_s {start:g}")
        else:
            segments.append(Segment(row["name"], start, end))
    return segments


def _check_unique_folders(recordings: list[Recording], problems: list[str]) -> None:
    """Two respondents whose names make the same folder name cannot both be written."""
    seen: dict[str, str] = {}
    for recording in recordings:
        folder = recording.folder_name.casefold()
        if folder in seen and seen[folder] != recording.respondent:
            problems.append(f"respondents {seen[folder]!r} and {recording.respondent!r} would share the folder "
                            f"recordings/{recording.folder_name}; rename one")
        seen.setdefault(folder, recording.respondent)
