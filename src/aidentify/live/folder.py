"""What a folder source reads: its files one by one, each judged by the rule it would be read by alone.

Every file in the folder (in name order) is judged by what it holds
(:mod:`aidentify.imagefile`): a photo is one frame; an animation or a video is read
whole, frame by frame at its media time. System clutter (``._*``, ``.DS_Store``,
``__MACOSX/``, ``Thumbs.db``) is not looked at; everything else (a text file, a
folder inside the folder, an unreadable or truncated image or video) is left out,
named through ``on_skip`` and kept in ``skipped`` for the count in the last line.

A folder of photos only is ``stills``: one frame per photo, each at its place
among the photos read (0, 1, 2... s). A folder holding a video or an animation
is processed file after file (``capture.FolderSource``): each file starts afresh (``new_file``: new tracks,
frame numbers and media time from 0), and rows name their file.
"""

from __future__ import annotations

from pathlib import Path

import cv2
from aidentify.files import is_junk_name
from aidentify.imagefile import IMAGE_SUFFIXES, probe_image
from aidentify.native_logs import native_stderr_silenced, opencv_log_silenced

NOT_MEDIA = "not an image or video"
SUBFOLDER = "a folder inside the folder (not read; give that folder on its own)"
# Containers that hold video: a file named so that no decoder opens is a damaged video (reported as
# one that cannot be read, to failed.csv in a study), not "not an image or video".
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".flv", ".mpg", ".mpeg", ".ts",
                  ".3gp", ".ogv", ".mts", ".m2ts"}
PHOTO, MOVING = "photo", "moving"  # one frame, or several in time (a video or an animation)


def media_kind(path: Path) -> str | None:
    """``"photo"``, ``"moving"`` (a video or an animation) or None (not media) for one file, by content.

    A file with an image suffix that nothing decodes counts as a photo, and one with a video
    suffix as a video, so that it is reported as unreadable or truncated rather than as "not an
    image or video". FFmpeg's own lines about a damaged file ("moov atom not found") are kept off
    the terminal: the file's reader says it in one line.
    """
    kind = probe_image(path)
    if kind is not None:
        return MOVING if kind.animated else PHOTO
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return PHOTO
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return MOVING
    with opencv_log_silenced(), native_stderr_silenced():
        capture = cv2.VideoCapture(str(path))
    try:
        return MOVING if capture.isOpened() else None
    finally:
        capture.release()


def list_folder(folder: Path) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """``(files to read with their media kind, (path, why) left out)``, in name order, clutter not listed."""
    items, left_out = [], []
    for path in sorted(folder.iterdir()):
        if is_junk_name(path.name):
            continue
        if path.is_dir():
            left_out.append((path, SUBFOLDER))
            continue
        kind = media_kind(path)
        if kind is None:
            left_out.append((path, NOT_MEDIA))
        else:
            items.append((path, kind))
    return items, left_out


def frames_hint(file: Path, kind: str) -> int:
    """Frames a file is expected to give, for the progress bar (0 when a video does not say)."""
    if kind == PHOTO:
        return 1
    kind_of_image = probe_image(file)
    if kind_of_image is not None:
        return kind_of_image.frames
    with native_stderr_silenced():
        capture = cv2.VideoCapture(str(file))
    try:
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
    finally:
        capture.release()
