"""A demo video of a real-looking scene, built from photos that AIdentify's dependencies ship.

So that ``aidentify live --demo`` works on a machine with no webcam and no
download: people cut from public-domain portraits (Eileen Collins from
scikit-image, Grace Hopper from matplotlib) stand at different distances in front
of the Summer Palace (scikit-learn's ``china.jpg``, CC BY 2.0), some mirrored and
turned, some tilted, all swaying while a virtual camera pans and zooms; see
:mod:`aidentify.live.scene` for the sources. Detection, tracking and the timeline
all have real work to do. The same video drives the tests and the live benchmark.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from aidentify.errors import DataError
from aidentify.files import PendingFile
from aidentify.live.scene import MAX_PEOPLE, check_people, scene_frames

__all__ = ["MAX_PEOPLE", "demo_frames", "write_demo_video"]


def demo_frames(faces: int = 4, seconds: float = 6.0, fps: float = 30.0, size: tuple[int, int] = (640, 480)):
    """Yield the demo's BGR frames: ``faces`` people (1 to :data:`MAX_PEOPLE`) in the scene."""
    check_people(faces)
    return scene_frames(faces, seconds, fps, size)


def write_demo_video(path: Path, faces: int = 4, seconds: float = 6.0, fps: float = 30.0,
                     size: tuple[int, int] = (640, 480)) -> Path:
    """Write the demo video (mp4v .mp4 or MJPG .avi) and return its path."""
    pending = PendingFile(Path(path))
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if pending.final.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(pending.path), fourcc, fps, size)
    if not writer.isOpened():
        raise DataError(f"cannot write the demo video {path}")
    try:
        for frame in demo_frames(faces, seconds, fps, size):
            writer.write(frame)
    except BaseException:
        writer.release()
        pending.discard()
        raise
    writer.release()
    return pending.commit()
