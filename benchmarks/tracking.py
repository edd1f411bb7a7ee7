"""Face tracking: AIdentify's tracker against ByteTrack, fed the same detector passes.

Issue 23 ("ghost faces") asked whether a well-kept tracker does better than ours.
ByteTrack now lives in Roboflow's `trackers` package (`trackers.ByteTrackTracker`;
`supervision` 0.31 dropped its own `sv.ByteTrack` and points there). Install both with
`pip install -e '.[bench]'`.

The default video detector (MTCNN, 40 px smallest face) runs once on every frame of
each input and its faces are cached, so both trackers see exactly the same boxes and
scores on the same frames:

- ours (`aidentify.live.track.Tracker`), driven as `LivePipeline` drives it: a detector
  pass every `every` frames (or when there is no track), optical flow between passes,
  a face reported only while the last pass saw it, boxes cut at the frame's edges;
- ByteTrack (library defaults, `frame_rate` set to the video's) updated on the same
  passes with each pass's time, so its Kalman filter and lost-track clock run in
  media time. A new track gets its id at its second detection whatever
  `minimum_consecutive_frames` says (1 measured the same as the default 2), so a new
  face is reported one pass late. It reports only the detections it confirms; between passes (every > 1)
  there are no detections, so it reports the tracks the last pass confirmed where its
  Kalman filter predicts them (its own motion model, as optical flow is ours).
  At every = 1 both trackers get a detector pass on every frame.

Per input and setting it reports: faces found per frame (IoU >= 0.5 with a true
face), false boxes per frame, ghost frames (a box on no face at all: less than a
quarter of it on any true face), distinct ids per true face and id switches (the id on
a true face changing from one frame where it is found to the next), and milliseconds
per frame spent tracking (the detector's time is not counted).

    .venv/bin/python benchmarks/tracking.py [--seconds 10] [--faceset DIR] [--case PATH]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from scenes import (GROUP_PHOTOS, SIX_FACE_PHOTO, WINDOW_WIDTHS, FrameTruth, absent_video,  # noqa: E402
                    edge_exit_video, faceset_video, match_faces, read_frames)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# A box is a ghost when less than this share of its area lies on any true face.
GHOST_COVER = 0.25


@dataclass
class Reported:
    """What a tracker reports over a video: per frame ``(ids, (N, 4) boxes)``, and its time."""

    frames: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    passes: int = 0
    tracking_s: float = 0.0


def detect_all(frames: list[np.ndarray]) -> list:
    """The default video detector's faces on every frame (largest first, at most ``max_faces``)."""
    from aidentify.config import LiveConfig
    from aidentify.faces.detector import make_detector
    from aidentify.live.pipeline import video_settings

    config = LiveConfig()
    detector = make_detector(video_settings(config.detect), "video")
    return [detector.detect(frame).largest_first(config.detect.max_faces) for frame in frames]


def clipped(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """An ``(x, y, w, h)`` box cut at the frame's edges, as live reports it."""
    from aidentify.live.pipeline import _clipped

    return np.array(_clipped(np.asarray(box, dtype=float), width, height), dtype=float)


def run_ours(frames: list[np.ndarray], faces: list, every: int) -> Reported:
    """Our tracker over cached detections, driven as ``LivePipeline._detect_or_follow`` drives it."""
    from aidentify.config import LiveConfig
    from aidentify.faces.crop import eyes_of
    from aidentify.live.pipeline import FLOW_WIDTH
    from aidentify.live.track import Tracker

    config = LiveConfig()
    tracker = Tracker(config.track)
    out = Reported()
    previous = None
    for index, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        start = time.perf_counter()
        scale = min(1.0, FLOW_WIDTH / gray.shape[1])
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if index % every == 0 or not tracker.tracks:
            tracker.update(faces[index].boxes, eyes_of(faces[index], config.align))
            out.passes += 1
        elif previous is not None:
            tracker.follow(previous, small, scale)
        previous = small
        seen = [t for t in tracker.tracks if t.missed == 0]
        height, width = gray.shape
        out.frames.append((np.array([t.id for t in seen], dtype=int),
                           np.array([clipped(t.box, width, height) for t in seen]).reshape(-1, 4)))
        out.tracking_s += time.perf_counter() - start
    return out


def run_bytetrack(frames: list[np.ndarray], faces: list, every: int, fps: float, **settings) -> Reported:
    """ByteTrack (library defaults unless ``settings``) on the same passes; Kalman predictions between them."""
    import supervision as sv
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker(frame_rate=fps, **settings)
    out = Reported()
    confirmed: list = []  # (id, tracklet) pairs the last pass reported
    last_pass = 0
    for index, frame in enumerate(frames):
        height, width = frame.shape[:2]
        start = time.perf_counter()
        if index % every == 0 or not tracker.tracks:
            boxes = faces[index].boxes
            detections = sv.Detections(xyxy=np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]]).reshape(-1, 4),
                                       confidence=np.asarray(faces[index].scores, dtype=float))
            result = tracker.update(detections, timestamp=index / fps)
            keep = result.tracker_id != -1
            ids, xyxy = result.tracker_id[keep], result.xyxy[keep]
            by_id = {t.tracker_id: t for t in tracker.tracks}
            confirmed = [(i, by_id[i]) for i in ids if i in by_id]
            last_pass = index
            out.passes += 1
        else:
            ids, xyxy = [], []
            for track_id, tracklet in confirmed:
                state = copy.deepcopy(tracklet.state_estimator)
                state.predict(float(index - last_pass), fps)
                ids.append(track_id)
                xyxy.append(state.state_to_bbox())
        xyxy = np.asarray(xyxy, dtype=float).reshape(-1, 4)
        boxes = [clipped(np.r_[b[:2], b[2:] - b[:2]], width, height) for b in xyxy]
        out.frames.append((np.asarray(ids, dtype=int), np.array(boxes).reshape(-1, 4)))
        out.tracking_s += time.perf_counter() - start
    return out


def ghost_boxes(boxes: np.ndarray, truth: FrameTruth) -> int:
    """Boxes with less than ``GHOST_COVER`` of their area on any true face (counted or neutral)."""
    faces = np.concatenate([truth.counted, truth.neutral]).reshape(-1, 4)
    ghosts = 0
    for x, y, w, h in boxes:
        if w <= 0 or h <= 0:
            continue
        cover = 0.0
        for fx, fy, fw, fh in faces:
            inter = max(0.0, min(x + w, fx + fw) - max(x, fx)) * max(0.0, min(y + h, fy + fh) - max(y, fy))
            cover = max(cover, inter / (w * h))
        ghosts += cover < GHOST_COVER
    return ghosts


def score(reported: Reported, truth: list[FrameTruth]) -> dict:
    """Faces found, false boxes, ghost frames, ids per true face, id switches and tracking ms per frame."""
    hits = false = ghost_frames = switches = 0
    ids_of: dict[int, set] = {}
    last_id: dict[int, int] = {}
    for (ids, boxes), frame_truth in zip(reported.frames, truth):
        pairs, wrong = match_faces(boxes, frame_truth)
        hits, false = hits + len(pairs), false + len(wrong)
        ghost_frames += ghost_boxes(boxes, frame_truth) > 0
        for found, face in pairs:
            person, track_id = int(frame_truth.ids[face]), int(ids[found])
            ids_of.setdefault(person, set()).add(track_id)
            switches += person in last_id and last_id[person] != track_id
            last_id[person] = track_id
    n = len(truth)
    return {"found": hits / n, "false": false / n, "ghost_frames": ghost_frames, "frames": n,
            "ids_per_face": np.mean([len(v) for v in ids_of.values()]) if ids_of else float("nan"),
            "switches": switches, "ms": reported.tracking_s * 1000 / n, "passes": reported.passes}


def case_truth(faces: list, face_frames: list[range]) -> list[FrameTruth]:
    """Truth for a case video without annotations: in ``face_frames``, the one face the detector finds there."""
    truth = []
    for index, found in enumerate(faces):
        present = any(index in r for r in face_frames) and len(found) == 1
        box = found.boxes[:1] if present else np.zeros((0, 4))
        truth.append(FrameTruth(box, np.zeros((0, 4)), np.zeros(len(box), dtype=int)))
    return truth


def build_inputs(args, scratch: Path):
    """Yield (title, frames, truth or None (the case video: truth from the detector), fps) per input, one at a time."""
    if (args.faceset / "boxes.csv").is_file():
        for title, photos in (("six-dancer video", [(SIX_FACE_PHOTO, WINDOW_WIDTHS)]),
                              ("group-photo video", [(name, None) for name in GROUP_PHOTOS])):
            video, truth = faceset_video(args.faceset, scratch / f"{title}.mp4", photos, args.seconds)
            yield title, read_frames(video), truth, 30.0
    else:
        print(f"no face set at {args.faceset}: the dev-photo videos are skipped (pass --faceset DIR)", file=sys.stderr)
    video, truth = edge_exit_video(scratch / "edges.mp4")
    yield "astronaut leaving at each edge", read_frames(video), truth, 30.0
    video, truth = absent_video(scratch / "absent.mp4")
    yield "astronaut absent for 1 s", read_frames(video), truth, 30.0
    if args.case.is_file():
        fps = cv2.VideoCapture(str(args.case)).get(cv2.CAP_PROP_FPS) or 15.0
        yield f"{args.case.name} (truth: the detector's box, frames 0-14, 30-44)", read_frames(args.case), None, fps


def print_table(title: str, frames: int, present: float, rows: list[tuple[str, dict]]) -> None:
    """One markdown table for one input."""
    print(f"\n{title}: {frames} frames, {present:.2f} true faces per frame")
    print("| tracker | passes | faces found/frame | false boxes/frame | ghost frames | ids per true face "
          "| id switches | tracking ms/frame |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['passes']} | {r['found']:.2f} | {r['false']:.2f} | {r['ghost_frames']} | "
              f"{r['ids_per_face']:.2f} | {r['switches']} | {r['ms']:.2f} |", flush=True)


def report(title: str, frames: list[np.ndarray], truth: list[FrameTruth] | None, fps: float) -> None:
    """Detect once on every frame, run both trackers at every 3 and every 1, print the table."""
    start = time.perf_counter()
    faces = detect_all(frames)
    detect_ms = (time.perf_counter() - start) * 1000 / len(frames)
    if truth is None:
        truth = case_truth(faces, [range(0, 15), range(30, 45)])
    rows = []
    for every in (3, 1):
        rows.append((f"ours, detect every {every}", score(run_ours(frames, faces, every), truth)))
        rows.append((f"ByteTrack, detect every {every}", score(run_bytetrack(frames, faces, every, fps), truth)))
    present = float(np.mean([len(t.counted) for t in truth]))
    print_table(f"{title} (detector {detect_ms:.0f} ms/frame)", len(frames), present, rows)



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each dev-photo video")
    parser.add_argument("--faceset", type=Path, default=SHARED / "facesets/dev")
    parser.add_argument("--case", type=Path, default=SHARED / "cases/face-absent-1s.mp4",
                        help="also run on this video (one face in frames 0-14 and 30-44); skipped when missing")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as scratch:
        for title, frames, truth, fps in build_inputs(args, Path(scratch)):
            report(title, frames, truth, fps)
    return 0




if __name__ == "__main__":
    sys.exit(main())
