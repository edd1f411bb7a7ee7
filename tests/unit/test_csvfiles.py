"""CSV files the way people save them: BOM, CRLF, and rows with the wrong number of fields."""

import csv

import pandas as pd
from typer.testing import CliRunner

from conftest import make_ferplus_tree, one_hot_votes, texture, write_image

from aidentify.cli import app
from aidentify.config import DownloadConfig
from aidentify.data.download import download
from aidentify.data.manifest import read_manifest
from aidentify.data.sources import index_dataset

BOM = "\ufeff"


def _write_excel_csv(path, rows):
    """As Excel's "CSV UTF-8" saves: a byte-order mark and CRLF line ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(rows)
    return path


def _pixel_rows(n, usages=("Training", "PublicTest", "PrivateTest")):
    header = [["emotion", "pixels", "Usage"]]
    return header + [[i % 7, " ".join(map(str, texture(i).flatten())), usages[i % 3]] for i in range(n)]


def test_excel_pixel_csv_with_bom_and_crlf_is_recognised_and_loads_every_row(workdir, tmp_path):
    source = tmp_path / "excel"
    _write_excel_csv(source / "fer2013.csv", _pixel_rows(6))
    assert (source / "fer2013.csv").read_bytes().startswith(b"\xef\xbb\xbfemotion,pixels,Usage\r\n")
    [result] = download(DownloadConfig(), "fer2013", from_path=source)
    assert result.layout == "fer2013-pixels" and result.images == 6
    assert result.by_split == {"test": 2, "train": 2, "val": 2}
    manifest = read_manifest(workdir / "data/raw/fer2013", "download")
    assert list(manifest["label"][:3]) == ["anger", "disgust", "fear"]
    assert all((workdir / "data/raw/fer2013" / p).is_file() for p in manifest["path"])


def test_labels_csv_with_bom_takes_precedence_over_folder_names(tmp_path):
    root = tmp_path / "src"
    write_image(root / "anger" / "x1.png", texture(1))
    write_image(root / "happy" / "x2.png", texture(2))
    _write_excel_csv(root / "labels.csv", [["pth", "label"], ["anger/x1.png", "sad"], ["happy/x2.png", "neutral"]])
    found = index_dataset(root, "mine", tmp_path / "derived")
    assert found.layout == "label-csv"
    assert list(found.frame["label"]) == ["sadness", "neutral"]


def test_ferplus_label_csv_with_bom_keeps_the_first_image_name(tmp_path):
    root = make_ferplus_tree(tmp_path / "src", {"train": [one_hot_votes("happiness")] * 2})
    label_csv = root / "FER2013Train" / "label.csv"
    rows = list(csv.reader(label_csv.open(newline="")))
    _write_excel_csv(label_csv, rows)
    found = index_dataset(root, "ferplus", tmp_path / "derived")
    assert found.layout == "ferplus-folders" and len(found.frame) == 2
    assert found.frame["path"].iloc[0].endswith("/FER2013Train/fer0000000.png")


def test_manifest_saved_by_excel_still_reads(tmp_path):
    frame = pd.DataFrame({"path": ["a.png"], "label": ["fear"], "split": ["train"], "id": ["x/a"], "source": ["x"]})
    (tmp_path / "manifest.csv").write_bytes(("\ufeff" + frame.to_csv(index=False)).replace("\n", "\r\n").encode())
    assert list(read_manifest(tmp_path, "download")["path"]) == ["a.png"]


def test_malformed_row_is_one_line_naming_the_file_and_line(workdir, tmp_path):
    source = tmp_path / "bad"
    rows = _pixel_rows(4)
    rows.insert(3, [3, "1 2 3", "Training", "extra", "fields", "here"])  # line 4 of the file
    _write_excel_csv(source / "fer2013.csv", rows)
    result = CliRunner().invoke(app, ["download", "fer2013", "--from", str(source)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {source}/fer2013.csv line 4: expected 3 fields, found 6"]
    assert "Traceback" not in result.output
    assert not (workdir / "data/raw/fer2013").exists() and not (workdir / "data/raw/fer2013.partial").exists()


def test_malformed_row_inside_an_archive_names_the_archive_and_member(workdir, tmp_path):
    import zipfile

    archive = tmp_path / "fer.zip"
    body = "emotion,pixels,Usage\n3,1 2 3 4,Training\n3,1 2 3 4\n"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fer2013.csv", body)
    result = CliRunner().invoke(app, ["download", "fer2013", "--from", str(archive)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {archive}:fer2013.csv line 3: expected 3 fields, found 2"
