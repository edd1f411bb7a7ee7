"""Layout detection: every supported layout becomes the same table."""

import csv

import numpy as np
import pytest

from conftest import make_ferplus_tree, one_hot_votes, texture, write_image

from aidentify.data.sources import index_dataset, split_name
from aidentify.errors import DataError


def test_ferplus_folders_keep_votes_and_splits(tmp_path):
    root = make_ferplus_tree(tmp_path / "src", {"train": [one_hot_votes("happiness")] * 3,
                                                "val": [one_hot_votes("fear")] * 2})
    found = index_dataset(root, "ferplus", tmp_path / "derived")
    frame = found.frame
    assert found.layout == "ferplus-folders"
    assert sorted(frame["split"]) == ["train"] * 3 + ["val"] * 2
    assert set(frame.loc[frame.split == "val", "label"]) == {"fear"}
    assert frame["votes_happiness"].max() == 10
    assert frame["id"].iloc[0].startswith("ferplus/FER2013")


def test_pixel_csv_joined_with_ferplus_votes_by_row_order(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    pixels = [" ".join(map(str, texture(i).flatten())) for i in range(4)]
    with open(root / "fer2013.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for i, usage in enumerate(["Training", "Training", "PublicTest", "PrivateTest"]):
            writer.writerow([3, pixels[i], usage])  # FER2013 says happy for all
    with open(root / "fer2013new.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Usage", "Image name", "neutral", "happiness", "surprise", "sadness",
                         "anger", "disgust", "fear", "contempt", "unknown", "NF"])
        writer.writerow(["Training", "fer0000000.png", *one_hot_votes("sadness")])
        writer.writerow(["Training", "", *one_hot_votes("anger")])  # no name: not a face
        writer.writerow(["PublicTest", "fer0000002.png", *one_hot_votes("surprise")])
    found = index_dataset(root, "fer2013", tmp_path / "derived")
    frame = found.frame
    assert found.layout == "fer2013-pixels+ferplus-votes"
    assert list(frame["label"]) == ["sadness", "not_face", "surprise", "happiness"]
    assert list(frame["split"]) == ["train", "train", "val", "test"]
    assert np.isnan(frame["votes_neutral"].iloc[3])  # PrivateTest: no votes in this file
    decoded = (tmp_path / "derived" / "pixels" / "row00000.png")
    assert decoded.is_file()


def test_pixel_csv_and_votes_of_different_length_is_an_error(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    (root / "fer2013.csv").write_text("emotion,pixels,Usage\n3,1 2 3 4,Training\n3,1 2 3 4,Training\n")
    (root / "fer2013new.csv").write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
        "Training,a.png,10,0,0,0,0,0,0,0,0,0\n")
    with pytest.raises(DataError, match="same images in the same order"):
        index_dataset(root, "fer2013", tmp_path / "derived")


def test_label_csv_takes_precedence_over_folders(tmp_path):
    root = tmp_path / "src"
    write_image(root / "anger" / "img1.jpg", texture(1, 96))
    write_image(root / "happy" / "img2.jpg", texture(2, 96))
    (root / "labels.csv").write_text("pth,label,relFCs\nanger/img1.jpg,surprise,0.9\nhappy/img2.jpg,happy,0.8\n")
    found = index_dataset(root, "affectnet-hq", tmp_path / "derived")
    assert found.layout == "label-csv"
    assert list(found.frame["label"]) == ["surprise", "happiness"]


def test_class_folders_with_split_synonyms_and_class_synonyms(tmp_path):
    root = tmp_path / "src" / "archive"
    write_image(root / "Training" / "Angry" / "a.png", texture(1))
    write_image(root / "PublicTest" / "Happy" / "b.png", texture(2))
    write_image(root / "testing" / "suprise" / "c.png", texture(3))
    write_image(root / "other" / "d.png", texture(4))  # not a class folder: ignored with a note
    found = index_dataset(tmp_path / "src", "mirror", tmp_path / "derived")
    frame = found.frame.sort_values("path")
    assert found.layout == "class-folders"
    assert list(frame["split"]) == ["val", "train", "test"]  # PublicTest, Training, testing
    assert list(frame["label"]) == ["happiness", "anger", "surprise"]
    assert any("not named after an emotion" in note for note in found.notes)


def test_class_folders_without_splits_leave_split_empty(tmp_path):
    write_image(tmp_path / "src" / "sad" / "a.png", texture(1))
    found = index_dataset(tmp_path / "src", "x", tmp_path / "derived")
    assert list(found.frame["split"]) == [""]


def test_unknown_layout_lists_what_was_looked_for(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "readme.txt").write_text("hi")
    with pytest.raises(DataError) as err:
        index_dataset(tmp_path / "src", "x", tmp_path / "derived")
    assert "unrecognised dataset layout" in str(err.value)
    assert "label.csv" in str(err.value) and "pixels" in str(err.value)


@pytest.mark.parametrize("name,expected", [("FER2013Train", "train"), ("Validation", "val"),
                                           ("PrivateTest", "test"), ("images", None)])
def test_split_names(name, expected):
    assert split_name(name) == expected


def _timeline_csv(path, frames: int) -> None:
    """What `aidentify live --timeline` writes: file and label columns, but frames not on disk."""
    rows = [f"{i / 10},{i},frame{i:04d}.png,1,1,2,3,4,0.5,happiness,0.9" for i in range(frames)]
    path.write_text("time_s,frame,file,track_id,x,y,w,h,p_neutral,label,confidence\n" + "\n".join(rows) + "\n")


def test_a_csv_whose_paths_are_not_images_here_is_not_a_label_file(tmp_path):
    root = tmp_path / "src"
    for i, folder in enumerate(("happy", "happy", "sad", "angry")):
        write_image(root / folder / f"img{i}.png", texture(i))
    _timeline_csv(root / "happy.csv", 4)
    found = index_dataset(root, "mine", tmp_path / "derived")
    assert found.layout == "class-folders"
    assert sorted(found.frame["label"]) == ["anger", "happiness", "happiness", "sadness"]
    assert any("ignored happy.csv" in note and "4 of the 4" in note for note in found.notes)


def test_an_ignored_csv_is_named_when_no_layout_is_found(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    _timeline_csv(root / "log.csv", 3)
    with pytest.raises(DataError, match=r"unrecognised dataset layout.*ignored log\.csv.*3 of the 3"):
        index_dataset(root, "mine", tmp_path / "derived")


def test_a_label_csv_with_a_few_missing_images_is_kept_and_says_so(tmp_path):
    root = tmp_path / "src"
    write_image(root / "a.jpg", texture(1))
    write_image(root / "b.jpg", texture(2))
    (root / "labels.csv").write_text("pth,label\na.jpg,happy\nb.jpg,sad\ngone.jpg,sad\n")
    found = index_dataset(root, "mine", tmp_path / "derived")
    assert found.layout == "label-csv" and len(found.frame) == 3
    assert any("1 of the 3 images it lists are not here" in note for note in found.notes)
