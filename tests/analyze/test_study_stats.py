"""The study aggregation on hand-made timelines with known answers (no TensorFlow).

Timelines are written by live's own TimelineWriter, so the tests read the format the
pipeline writes. Expected statistics come from the hand-made values and from SciPy's
own interval and test functions on them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aidentify.analyze.aggregate import StudyAggregator
from aidentify.analyze.epochs import AggregateSettings, NoBaselineFace, Segment, epoch_medians, respondent_epochs
from aidentify.analyze.stats import key_moments
from aidentify.classes import CLASSES
from aidentify.errors import ConfigError, DataError
from aidentify.inference.results import FaceResult, FrameResult
from aidentify.live.timeline import TimelineWriter

FER = list(CLASSES)


def probs(**values: float) -> np.ndarray:
    """A probability vector in FER+ order: the given classes, neutral takes the rest."""
    vector = np.zeros(len(FER))
    for name, value in values.items():
        vector[FER.index(name)] = value
    if "neutral" not in values:
        vector[0] = 1.0 - vector.sum()
    return vector


def write_timeline(path: Path, frames: list[tuple[float, list[np.ndarray]]], classes: list[str] = FER) -> Path:
    """One timeline: per frame its media time (s) and its faces' probabilities (none: no face)."""
    writer = TimelineWriter(path, classes)
    for index, (time_s, faces) in enumerate(frames):
        results = [FaceResult(track + 1, (10, 10, 50, 50), p, classes[int(np.argmax(p))], float(np.max(p)))
                   for track, p in enumerate(faces)]
        writer.add(time_s, FrameResult(index, results, detected=True))
    return writer.commit()


def steady(path: Path, seconds: float, value: np.ndarray | None, fps: int = 10, start: float = 0.0,
           no_face: tuple[float, float] | None = None) -> Path:
    """A timeline with the same probabilities on every frame (None: never a face), without a face in ``no_face``."""
    frames = []
    for i in range(int(seconds * fps)):
        t = start + i / fps
        missing = value is None or (no_face is not None and no_face[0] <= t < no_face[1])
        frames.append((t, [] if missing else [value]))
    return write_timeline(path, frames)


def test_epoch_median_is_of_per_frame_values_and_face_share_counts_frames(tmp_path):
    # Epoch 0: three faces and one empty frame. Per-frame valence .3, -.3, .2 has median .2; the
    # valence of the class medians would be .5 - 0 = .5, so the test tells the two apart.
    epoch0 = [probs(neutral=.1, happiness=.6, sadness=.3), probs(neutral=.3, happiness=.2, anger=.5),
              probs(neutral=.2, happiness=.5, fear=.3)]
    frames = [(0.0, [epoch0[0]]), (0.25, [epoch0[1]]), (0.5, []), (0.75, [epoch0[2]]),
              (1.0, []), (1.5, [])]  # epoch 1: frames, no face
    timeline = write_timeline(tmp_path / "t.csv", frames)
    table = respondent_epochs(timeline, 0.0, AggregateSettings(FER))
    assert list(table.columns) == ["time_s", "face_share", *FER, "valence", "expressiveness"]
    assert table["time_s"].tolist() == [0.0, 1.0]
    assert table["face_share"].tolist() == pytest.approx([0.75, 0.0])
    first = table.iloc[0]
    assert first["happiness"] == pytest.approx(0.5, abs=1e-4)
    assert first["sadness"] == pytest.approx(0.0, abs=1e-4)
    assert first["valence"] == pytest.approx(0.2, abs=1e-4)
    assert first["expressiveness"] == pytest.approx(0.8, abs=1e-4)  # 1 - neutral: .9, .7, .8
    assert table.iloc[1][FER + ["valence"]].isna().all()


def test_epoch_medians_match_the_median_of_each_epoch():
    rng = np.random.default_rng(3)
    epoch = rng.integers(0, 50, 701)  # unsorted, odd and even counts
    epoch[epoch == 7] = 8  # epoch 7 has no value, nor do 50 and 51
    values = rng.random((701, 4)) * 2 - 1
    medians = epoch_medians(epoch, values, 52)
    for e in range(52):
        inside = values[epoch == e]
        expected = np.median(inside, axis=0) if len(inside) else np.full(4, np.nan)
        np.testing.assert_allclose(medians[e], expected, atol=1e-9)


def test_several_faces_in_a_frame_give_the_mean_of_their_probabilities(tmp_path):
    frames = [(0.0, [probs(happiness=.8), probs(happiness=.2)]), (0.5, [probs(happiness=.4)])]
    table = respondent_epochs(write_timeline(tmp_path / "t.csv", frames), 0.0, AggregateSettings(FER))
    # frame means .5 and .4: the epoch median is their mean .45 (faces are not frames)
    assert table.loc[0, "happiness"] == pytest.approx(0.45, abs=1e-4)
    assert table.loc[0, "face_share"] == 1.0


def test_offset_moves_frames_onto_the_stimulus_clock_and_duration_cuts_them(tmp_path):
    # Media 0-6 s; the stimulus starts at 2.3 s and lasts 2.5 s: epochs [0,1), [1,2), [2,2.5).
    frames = [(i / 10, [probs(happiness=.9 if i / 10 < 2.3 else .1)]) for i in range(60)]
    timeline = write_timeline(tmp_path / "t.csv", frames)
    table = respondent_epochs(timeline, 2.3, AggregateSettings(FER, duration_s=2.5))
    assert table["time_s"].tolist() == [0.0, 1.0, 2.0]
    assert table["happiness"].tolist() == pytest.approx([0.1, 0.1, 0.1], abs=1e-4)  # nothing from before 2.3 s
    # without a duration the epochs run to the last frame (media 5.9 s = stimulus 3.6 s)
    assert len(respondent_epochs(timeline, 2.3, AggregateSettings(FER))) == 4
    # a recording that starts after the stimulus: the epochs it missed have no frames (face_share empty)
    late = respondent_epochs(timeline, -1.5, AggregateSettings(FER, duration_s=3))
    assert np.isnan(late.loc[0, "face_share"]) and late.loc[1, "face_share"] == pytest.approx(1.0)


def test_baseline_subtracts_the_respondents_median_over_the_window(tmp_path):
    # happiness .2 for stimulus seconds -2..0 (before the stimulus), .7 after
    frames = [(i / 10, [probs(happiness=.2 if i < 20 else .7)]) for i in range(50)]
    timeline = write_timeline(tmp_path / "t.csv", frames)
    table = respondent_epochs(timeline, 2.0, AggregateSettings(FER, baseline=(-2, 0)))
    assert table["happiness"].tolist() == pytest.approx([0.5, 0.5, 0.5], abs=1e-4)
    assert table["face_share"].tolist() == [1.0, 1.0, 1.0]  # not baselined
    with pytest.raises(NoBaselineFace, match="t.csv has no frame with a face in the baseline window 5-6 s"):
        respondent_epochs(timeline, 2.0, AggregateSettings(FER, baseline=(5, 6)))


def test_a_timeline_without_the_models_columns_is_a_data_error_naming_it(tmp_path):
    other = write_timeline(tmp_path / "three.csv", [(0.0, [np.array([.2, .3, .5])])], classes=["a", "b", "c"])
    with pytest.raises(DataError, match=r"three\.csv .*lacks the columns p_neutral, p_happiness"):
        respondent_epochs(other, 0.0, AggregateSettings(FER))
    with pytest.raises(DataError, match="missing.csv does not exist"):
        respondent_epochs(tmp_path / "missing.csv", 0.0, AggregateSettings(FER))


def test_settings_refuse_empty_spans():
    with pytest.raises(ConfigError, match="baseline must start before it ends"):
        AggregateSettings(FER, baseline=(5, 5))
    with pytest.raises(ConfigError, match="epoch_s"):
        AggregateSettings(FER, epoch_s=0)


def test_mean_interval_n_and_share_over_across_respondents(tmp_path):
    # Three respondents, 2 s; the third has no face in the second epoch, so n drops to 2 there.
    values = [0.2, 0.4, 0.9]
    settings = AggregateSettings(FER, duration_s=2.0, threshold=0.5)
    with StudyAggregator(settings, tmp_path / "out") as aggregator:
        for i, v in enumerate(values):
            timeline = steady(tmp_path / f"r{i}.csv", 2.0, probs(happiness=v), no_face=(1, 2) if i == 2 else None)
            aggregator.add(f"r{i}", {}, timeline, 0.0)
        tables = aggregator.finish()
    written = pd.read_csv(tables.aggregate_csv)
    assert list(written.columns) == ["group", "time_s", "metric", "mean", "ci_low", "ci_high", "n", "share_over"]
    happy = written[written.metric == "happiness"].set_index("time_s")
    low, high = stats.t.interval(0.95, df=2, loc=np.mean(values), scale=stats.sem(values))
    assert happy.loc[0, ["mean", "ci_low", "ci_high"]].tolist() == pytest.approx([0.5, low, high], abs=1e-4)
    assert happy.loc[0, "n"] == 3 and happy.loc[0, "share_over"] == pytest.approx(1 / 3)
    low, high = stats.t.interval(0.95, df=1, loc=0.3, scale=stats.sem(values[:2]))
    assert happy.loc[1, ["mean", "ci_low", "ci_high"]].tolist() == pytest.approx([0.3, low, high], abs=1e-4)
    assert happy.loc[1, "n"] == 2 and happy.loc[1, "share_over"] == 0
    epochs = pd.read_csv(tables.epochs_csv)
    assert list(epochs.columns) == ["respondent", "time_s", "face_share", *FER, "valence", "expressiveness"]
    assert len(epochs) == 6 and epochs.loc[5, "face_share"] == 0 and np.isnan(epochs.loc[5, "happiness"])


def test_an_interval_needs_two_respondents_and_an_epoch_without_faces_has_n_zero(tmp_path):
    settings = AggregateSettings(FER, duration_s=2.0)
    with StudyAggregator(settings, tmp_path / "out") as aggregator:
        aggregator.add("only", {}, steady(tmp_path / "r.csv", 2.0, probs(happiness=.6), no_face=(1, 2)), 0.0)
        tables = aggregator.finish()
    happy = tables.aggregate[tables.aggregate.metric == "happiness"].set_index("time_s")
    assert happy.loc[0, "mean"] == pytest.approx(0.6, abs=1e-4) and np.isnan(happy.loc[0, "ci_low"])
    assert happy.loc[1, "n"] == 0 and np.isnan(happy.loc[1, "mean"]) and np.isnan(happy.loc[1, "share_over"])
    with open(tables.aggregate_csv, newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["time_s"] == "1" and r["metric"] == "happiness")
    assert row["mean"] == row["ci_low"] == row["share_over"] == "" and row["n"] == "0"  # missing: empty cells


def test_epochs_grow_to_the_longest_respondent_when_the_duration_is_unknown(tmp_path):
    with StudyAggregator(AggregateSettings(FER), tmp_path / "out") as aggregator:
        aggregator.add('short, "2 s"', {}, steady(tmp_path / "a.csv", 2.0, probs(happiness=.2)), 0.0)
        aggregator.add("long", {}, steady(tmp_path / "b.csv", 5.0, probs(happiness=.4)), 0.0)
        tables = aggregator.finish()
    epochs = pd.read_csv(tables.epochs_csv)
    assert epochs["respondent"].tolist() == ['short, "2 s"'] * 2 + ["long"] * 5  # rows only where recorded
    assert epochs["time_s"].tolist() == [0, 1, 0, 1, 2, 3, 4]
    happy = tables.aggregate[tables.aggregate.metric == "happiness"]
    assert tables.epoch_count == 5
    assert happy["n"].tolist() == [2, 2, 1, 1, 1]
    assert happy["mean"].tolist() == pytest.approx([0.3, 0.3, 0.4, 0.4, 0.4], abs=1e-4)


def test_respondent_without_a_face_in_the_baseline_is_left_out_and_listed(tmp_path):
    settings = AggregateSettings(FER, baseline=(0, 1), duration_s=3)
    with StudyAggregator(settings, tmp_path / "out") as aggregator:
        aggregator.add("seen", {}, steady(tmp_path / "a.csv", 3.0, probs(happiness=.2)), 0.0)
        aggregator.add("hidden", {}, steady(tmp_path / "b.csv", 3.0, probs(happiness=.9), no_face=(0, 1)), 0.0)
        tables = aggregator.finish()
    assert tables.respondents == 1 and list(tables.skipped) == ["hidden"]
    assert "baseline window 0-1 s" in tables.skipped["hidden"]
    assert set(pd.read_csv(tables.epochs_csv)["respondent"]) == {"seen"}
    happy = tables.aggregate[tables.aggregate.metric == "happiness"]
    assert happy["mean"].tolist() == pytest.approx([0, 0, 0], abs=1e-4)


def test_group_labels_and_welch_test_between_two_groups(tmp_path):
    # Group a: happiness .1, .2, .3 over the whole 2 s; group b: .5, .7 and one respondent .9 only in epoch 1.
    settings = AggregateSettings(FER, duration_s=2.0, group_columns=["group"],
                                 segments=[Segment("first", 0, 1), Segment("both", 0, 2)])
    people = [("a1", "a", .1, None), ("a2", "a", .2, None), ("a3", "a", .3, None),
              ("b1", "b", .5, None), ("b2", "b", .7, None), ("b3", "b", .9, (0, 1))]
    with StudyAggregator(settings, tmp_path / "out") as aggregator:
        for name, group, v, gap in people:
            timeline = steady(tmp_path / f"{name}.csv", 2.0, probs(happiness=v), no_face=gap)
            aggregator.add(name, {"group": group}, timeline, 0)
        tables = aggregator.finish()
    assert tables.aggregate["group"].unique().tolist() == ["all", "a", "b"]
    summary = pd.read_csv(tables.segment_summary_csv)
    assert list(summary.columns) == ["group", "segment", "metric", "mean", "ci_low", "ci_high", "n", "p_value"]
    happy = summary[summary.metric == "happiness"].set_index(["segment", "group"])
    expected = stats.ttest_ind([.1, .2, .3], [.5, .7], equal_var=False).pvalue
    assert happy.loc[("first", "a"), "p_value"] == pytest.approx(expected, rel=1e-3)
    assert happy.loc[("first", "b"), "p_value"] == happy.loc[("first", "a"), "p_value"]
    assert np.isnan(happy.loc[("first", "all"), "p_value"])
    assert happy.loc[("first", "b"), ["mean", "n"]].tolist() == pytest.approx([0.6, 2], abs=1e-4)
    # b3 had a face in epoch 1 only: it counts in the segment over both epochs
    assert happy.loc[("both", "b"), ["mean", "n"]].tolist() == pytest.approx([0.7, 3], abs=1e-4)
    expected = stats.ttest_ind([.1, .2, .3], [.5, .7, .9], equal_var=False).pvalue
    assert happy.loc[("both", "a"), "p_value"] == pytest.approx(expected, rel=1e-3)


def test_several_group_columns_are_labelled_column_equals_value_and_three_groups_use_alexander_govern(tmp_path):
    settings = AggregateSettings(FER, duration_s=1.0, group_columns=["site", "age_band"])
    values = {"x": [.1, .2, .35], "y": [.4, .5, .55], "z": [.8, .7, .95]}
    with StudyAggregator(settings, tmp_path / "out") as aggregator:
        for site, vs in values.items():
            for i, v in enumerate(vs):
                name = f"{site}{i}"
                aggregator.add(name, {"site": site, "age_band": "18-30" if i else ""},
                               steady(tmp_path / f"{name}.csv", 1.0, probs(happiness=v)), 0)
        tables = aggregator.finish()
    happy = tables.segment_summary[tables.segment_summary.metric == "happiness"].set_index("group")
    assert happy.index.tolist() == ["all", "site=x", "site=y", "site=z", "age_band=18-30"]
    assert happy.loc["site=y", "p_value"] == pytest.approx(stats.alexandergovern(*values.values()).pvalue, rel=1e-3)
    assert np.isnan(happy.loc["age_band=18-30", "p_value"])  # one group in that column: nothing to compare
    assert happy.loc["age_band=18-30", "n"] == 6  # an empty value keeps a respondent out of that column only
    assert happy.loc["all", "n"] == 9 and (happy["segment"] == "whole").all()


def test_key_moments_find_a_step_within_a_second_in_noisy_respondents(tmp_path):
    # 12 respondents, happiness .2 + noise, rising by .4 at 12.4 s and falling back at 23.7 s.
    rng = np.random.default_rng(7)
    settings = AggregateSettings(FER, duration_s=30.0, moments_min_change=0.1)
    with StudyAggregator(settings, tmp_path / "out") as aggregator:
        for r in range(12):
            frames = []
            for i in range(300):
                t = i / 10
                happy = 0.2 + 0.4 * (12.4 <= t < 23.7) + rng.normal(0, 0.05)
                frames.append((t + 1.0, [probs(happiness=float(np.clip(happy, 0, 1)))]))
            aggregator.add(f"r{r}", {}, write_timeline(tmp_path / f"r{r}.csv", frames), 1.0)
        tables = aggregator.finish()
    happy = tables.moments[(tables.moments.metric == "happiness") & (tables.moments.group == "all")]
    assert len(happy) == 2  # the noise makes no other moment over 0.1
    rise, fall = happy.sort_values("time_s").itertuples()
    assert abs(rise.time_s - 12.4) < 1 and rise.change == pytest.approx(0.4, abs=0.1)
    assert abs(fall.time_s - 23.7) < 1 and fall.change == pytest.approx(-0.4, abs=0.1)
    written = pd.read_csv(tables.moments_csv)
    assert list(written.columns) == ["group", "metric", "time_s", "change"]


def test_key_moments_keep_the_top_changes_apart_and_over_the_minimum():
    curve = np.zeros(40)
    curve[10:] += 0.3  # a rise at 10 s
    curve[25:] += 0.1  # a smaller rise at 25 s
    curve[32:] += 0.02  # too small to report
    both = [[10.0, 0.3], [25.0, 0.1]]
    np.testing.assert_allclose(key_moments(curve, 1.0, top=3, min_change=0.05), both, atol=1e-9)
    np.testing.assert_allclose(key_moments(curve, 1.0, top=1, min_change=0.05), both[:1], atol=1e-9)
    np.testing.assert_allclose(key_moments(-curve, 1.0, top=3, min_change=0.05), [[10.0, -0.3], [25.0, -0.1]],
                               atol=1e-9)  # falls alike
    half_epochs = np.repeat(curve, 2)  # the same curve in 0.5-s epochs: the same times
    np.testing.assert_allclose(key_moments(half_epochs, 0.5, top=3, min_change=0.05), both, atol=1e-9)


def test_outputs_appear_only_when_finished_and_a_failure_leaves_old_ones(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "aggregate.csv").write_text("old\n")
    timeline = steady(tmp_path / "a.csv", 1.0, probs(happiness=.5))
    with pytest.raises(DataError, match="given twice"):
        with StudyAggregator(AggregateSettings(FER), out) as aggregator:
            aggregator.add("r", {}, timeline, 0.0)
            aggregator.add("r", {}, timeline, 0.0)
    assert sorted(p.name for p in out.iterdir()) == ["aggregate.csv"]
    assert (out / "aggregate.csv").read_text() == "old\n"


def test_times_are_written_as_plain_decimals_for_short_epochs(tmp_path):
    settings = AggregateSettings(FER, epoch_s=0.25, duration_s=1.0)
    with StudyAggregator(settings, tmp_path / "out") as aggregator:
        aggregator.add("r", {}, steady(tmp_path / "a.csv", 1.0, probs(happiness=.5), fps=20), 0.0)
        tables = aggregator.finish()
    for path in (tables.epochs_csv, tables.aggregate_csv):
        with open(path, newline="") as handle:
            times = list(dict.fromkeys(row["time_s"] for row in csv.DictReader(handle)))
        assert times == ["0", "0.25", "0.5", "0.75"]
