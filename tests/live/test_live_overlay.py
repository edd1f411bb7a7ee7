"""Where the overlay's labels and bars go: inside the frame and never over each other (issue 37, item 4).

Checked on the layout alone, on the demo scene (six people, with --bars) and on a crowded
photo of 20 real faces tiled edge to edge, through the real pipeline (BlazeFace + the
shipped model), and on the pixels draw_faces paints.
"""

import itertools

import numpy as np
import pytest

from aidentify.config import LiveConfig
from aidentify.faces.samples import crowd_photo
from aidentify.inference.classify import load_classifier
from aidentify.inference.results import FaceResult
from aidentify.live.demo import demo_frames
from aidentify.live.draw import MIN_TEXT_PX, TextStyle, colour_for, draw_faces, label_text, layout_overlay
from aidentify.live.layout import Rect, label_anchors, place_rects
from aidentify.live.pipeline import LivePipeline

CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]


@pytest.fixture(scope="module")
def default_classifier():
    return load_classifier(None)


def face(track_id, box, label="neutral", confidence=0.77):
    probs = np.full(len(CLASSES), (1 - confidence) / (len(CLASSES) - 1))
    probs[CLASSES.index(label)] = confidence
    return FaceResult(track_id, box, probs, label, confidence)


def assert_readable(rects, width, height):
    """Every rectangle inside the frame, no two sharing a pixel."""
    placed = [r for r in rects if r is not None]
    for rect in placed:
        assert rect.inside(width, height), (rect, width, height)
    for a, b in itertools.combinations(placed, 2):
        assert not a.overlaps(b), (a, b)


def test_a_label_at_the_right_edge_keeps_its_track_id_inside_the_frame():
    faces = [face(4, (590, 200, 48, 60))]  # the issue's `neutral 77%` that lost its `#4`
    layout = layout_overlay(faces, CLASSES, (640, 480))
    (rect,) = layout.labels
    assert rect.inside(640, 480) and rect.right == 640
    assert rect.w == layout_overlay([face(4, (100, 200, 48, 60))], CLASSES, (640, 480)).labels[0].w  # not cut


def test_neighbours_labels_move_apart_and_the_top_edge_puts_them_inside_or_below():
    boxes = [(0, 0, 60, 60), (62, 5, 60, 60), (124, 0, 60, 60)]  # side by side at the top edge
    rects = place_rects(boxes, [(150, 18)] * 3, (320, 240), label_anchors)
    assert all(rect is not None for rect in rects)
    assert_readable(rects, 320, 240)


def test_a_label_with_no_room_is_left_out_rather_than_drawn_over_another():
    rects = place_rects([(0, 0, 10, 10), (20, 0, 10, 10)], [(40, 30), (40, 30)], (40, 30), label_anchors)
    assert rects.count(None) == 1 and rects[0] == Rect(0, 0, 40, 30)  # the larger face (ties: the first) wins


def test_bars_text_is_legible_at_640x480():
    style = TextStyle.for_frame(480)
    assert style.height >= MIN_TEXT_PX >= 12
    layout = layout_overlay([face(1, (100, 100, 80, 90))], CLASSES, (640, 480), bars=True)
    (bars,) = layout.bars
    assert bars is not None and bars.h >= len(CLASSES) * MIN_TEXT_PX
    assert not bars.overlaps(layout.labels[0]) and not bars.overlaps((100, 100, 80, 90))


def test_demo_scene_with_bars_labels_everyone_readably(default_classifier):
    config = LiveConfig()
    config.draw.bars = True
    pipeline = LivePipeline(default_classifier, config)
    classes = default_classifier.info.classes
    frames = 0
    for index, frame in enumerate(demo_frames(faces=6, seconds=151 / 30)):  # frame 150: the issue's
        annotated, result = pipeline(frame, draw=index == 150)
        layout = layout_overlay(result.faces, classes, (640, 480), bars=True)
        assert None not in layout.labels, index  # every face keeps its label
        assert_readable(layout.labels + layout.bars, 640, 480)
        frames += 1
    assert frames == 151 and len(result.faces) >= 5
    assert sum(rect is not None for rect in layout.bars) >= 2  # bars go where there is room
    for item, rect in zip(result.faces, layout.labels):  # draw_faces paints what the layout placed
        assert tuple(annotated[rect.y, rect.x]) == colour_for(item.label)


def test_crowded_photo_labels_all_faces_inside_the_frame_without_overlap(default_classifier):
    photo = crowd_photo((640, 480))
    annotated, result = LivePipeline(default_classifier, LiveConfig())(photo)
    assert len(result.faces) >= 12  # a crowd: faces touch each other and the frame's edges
    boxes = [f.box for f in result.faces]
    assert min(x for x, *_ in boxes) <= 30 and max(x + w for x, _, w, _ in boxes) >= 610  # near the edges
    assert min(y for _, y, _, _ in boxes) <= 30
    layout = layout_overlay(result.faces, default_classifier.info.classes, (640, 480))
    assert None not in layout.labels
    assert_readable(layout.labels, 640, 480)
    for item, rect in zip(result.faces, layout.labels):
        assert tuple(annotated[rect.y, rect.x]) == colour_for(item.label)
        assert tuple(annotated[rect.bottom - 1, rect.right - 1]) == colour_for(item.label)


def test_draw_faces_draws_the_track_id_text_it_measured():
    frame = np.zeros((480, 640, 3), np.uint8)
    faces = [face(4, (590, 200, 48, 60)), face(5, (540, 205, 48, 60), "happiness", 0.9)]
    draw_faces(frame, faces, CLASSES)
    layout = layout_overlay(faces, CLASSES, (640, 480))
    assert_readable(layout.labels, 640, 480)
    assert label_text(faces[0]) == "neutral 77% #4"
    for item, rect in zip(faces, layout.labels):
        patch = frame[rect.y:rect.bottom, rect.x:rect.right].reshape(-1, 3)
        assert (patch == colour_for(item.label)).all(axis=1).mean() > 0.5  # the label's fill
        assert (patch.sum(axis=1) < 200).any()  # and dark text on it
