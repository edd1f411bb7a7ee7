"""`live --chart` and the summary: per-face probabilities over time with gaps, photos per file, no face."""

import re
import warnings

import cv2
import numpy as np
import pandas as pd
from typer.testing import CliRunner

from aidentify.cli import app
from aidentify.inference.results import FaceResult, FrameResult
from aidentify.live.chart import face_series, write_chart
from aidentify.live.timeline import EmotionSummary

CLASSES = ["neutral", "happiness", "surprise"]
runner = CliRunner()


def face(track_id: int, probs) -> FaceResult:
    probs = np.asarray(probs, dtype=np.float64)
    best = int(np.argmax(probs))
    return FaceResult(track_id, (10, 10, 50, 50), probs, CLASSES[best], float(probs[best]))


def test_a_faceless_stretch_is_a_gap_in_the_plotted_series(tmp_path):
    summary = EmotionSummary(CLASSES)
    for i in range(15):  # the face in frames 0-4 and 10-14, nobody in 5-9
        faces = [] if 5 <= i < 10 else [face(1, [0.1, 0.8, 0.1])]
        summary.add(i / 5, FrameResult(i, faces, detected=True))
    [series] = face_series(summary)
    assert series.name == "#1" and series.seen == 10
    np.testing.assert_allclose(series.times, np.arange(15) / 5)
    absent = np.isnan(series.probs).all(axis=1)
    assert absent.tolist() == [5 <= i < 10 for i in range(15)]
    np.testing.assert_allclose(series.probs[0], [0.1, 0.8, 0.1], rtol=1e-6)
    chart = write_chart(summary, tmp_path / "chart.png")
    assert cv2.imread(str(chart)) is not None


def test_no_face_says_so_without_a_matplotlib_warning(tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 90, np.uint8))
    chart = tmp_path / "chart.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["live", "--source", str(blank), "--no-window", "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    assert [str(w.message) for w in caught if "matplotlib" in w.filename] == []
    assert "no face found in blank.png\n" in result.output  # one photo is named, as in a folder
    assert not re.search(r"(?<![\d.])1 frames\b", result.output)  # singular; a rate such as "70.1 frames/s" may follow
    assert "┃ face" not in result.output  # no empty table
    assert cv2.imread(str(chart)) is not None


def test_a_photo_folder_gets_one_row_per_face_per_photo(tmp_path):
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "a.jpg"), astronaut)
    cv2.imwrite(str(folder / "b-empty.png"), np.full((240, 320, 3), 90, np.uint8))
    cv2.imwrite(str(folder / "c.png"), astronaut[:, ::-1])
    chart, timeline = tmp_path / "chart.png", tmp_path / "timeline.csv"
    result = runner.invoke(app, ["live", "--source", str(folder), "--no-window", "--chart", str(chart),
                                 "--timeline", str(timeline)])
    assert result.exit_code == 0, result.output
    assert "a.jpg #1" in result.output and "c.png #1" in result.output
    assert "no face found in b-empty.png" in result.output
    assert "(3 photos, 1 without a face)" in result.output
    assert cv2.imread(str(chart)) is not None
    rows = pd.read_csv(timeline)  # every row names its photo; the faceless one has an empty face
    assert list(rows["file"]) == ["a.jpg", "b-empty.png", "c.png"]
    assert rows["track_id"].isna().tolist() == [False, True, False]


def test_photo_summary_keeps_photos_apart():
    summary = EmotionSummary(CLASSES, stills=True)
    summary.add(0.0, FrameResult(0, [face(1, [0.7, 0.2, 0.1])], True), photo="01.jpg")
    summary.add(1.0, FrameResult(1, [], True), photo="02.jpg")
    summary.add(2.0, FrameResult(2, [face(1, [0.1, 0.2, 0.7]), face(2, [0.2, 0.7, 0.1])], True), photo="03.jpg")
    assert [(t.name, t.frames) for t in summary.rows()] == [("01.jpg #1", 1), ("03.jpg #1", 1), ("03.jpg #2", 1)]
    assert summary.photos_without_face == ["02.jpg"]


def test_one_photo_is_singular_in_the_chart_title_and_named_when_faceless():
    from aidentify.live.chart import no_face_message, stills_title

    one = EmotionSummary(CLASSES, stills=True)
    one.add(0.0, FrameResult(0, [], True), photo="blank.png")
    assert stills_title(one).endswith("(1 photo)") and no_face_message(one) == "no face found in blank.png"
    one.add(1.0, FrameResult(1, [], True), photo="other.png")
    assert stills_title(one).endswith("(2 photos)") and no_face_message(one) == "no face found in 2 photos"
    video = EmotionSummary(CLASSES)
    video.add(0.0, FrameResult(0, [], True))
    assert no_face_message(video) == "no face found in 1 frame"


def test_a_photos_time_is_its_frame_number_when_files_before_it_were_skipped(tmp_path):
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    whole = cv2.imencode(".jpg", astronaut)[1].tobytes()
    (folder / "a-good.jpg").write_bytes(whole)
    (folder / "b-truncated.jpg").write_bytes(whole[: len(whole) * 3 // 10])
    (folder / "c-good.jpg").write_bytes(whole)
    timeline = tmp_path / "timeline.csv"
    result = runner.invoke(app, ["live", "--source", str(folder), "--no-window", "--timeline", str(timeline)])
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(timeline)
    assert list(rows["file"]) == ["a-good.jpg", "c-good.jpg"]
    assert list(rows["frame"]) == [0, 1] and list(rows["time_s"]) == [0.0, 1.0]


def test_faces_left_off_the_chart_are_counted_honestly_and_the_title_clears_the_panels():
    """Issue 36: "briefly seen faces not shown" was said of faces seen for 20 s, and the title overprinted
    the first panel's caption."""
    from aidentify.live.chart import MAX_PANELS, chart_figure

    summary = EmotionSummary(CLASSES)
    for i in range(700):  # 13 faces: 12 seen in every frame, the 13th in 600 frames (20 s at 30 frames/s)
        faces = [face(t, [0.2, 0.7, 0.1]) for t in range(1, MAX_PANELS + 1)]
        if i < 600:
            faces.append(face(99, [0.6, 0.3, 0.1]))
        summary.add(i / 30, FrameResult(i, faces, detected=True))
    fig = chart_figure(summary)
    title = fig._suptitle.get_text()
    assert "briefly" not in title and "1 more faces not shown" in title and "at most 600 frames" in title
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top = fig.axes[0].title.get_window_extent(renderer)
    assert not fig._suptitle.get_window_extent(renderer).overlaps(top)
