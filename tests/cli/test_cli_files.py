"""Files the commands cannot read as text or cannot write: one ``error:`` line that says what to do.

A config or a manifest saved in another encoding (Latin-1, Excel's UTF-16
"Unicode Text"), a folder without write permission, a full disk. Tests run as
root in CI, where permission bits stop nothing: refusals there are made with
a path through a regular file, or faked where only the message is under test.
"""

import errno
import os

import pytest
from typer.testing import CliRunner

from aidentify.cli import app

runner = CliRunner()

MANIFEST = "path,label,split,source,id\nimages/a.png,happiness,train,tiny,1\n"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "unexpected" not in lines[0] and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("encoding, said", [
    ("latin-1", "bad.yaml is not UTF-8 text (it holds byte 0xE9, which UTF-8 never has there); save it as UTF-8"),
    ("utf-16", "bad.yaml is UTF-16 text, not UTF-8; save it as UTF-8 and try again"),
])
def test_a_config_that_is_not_utf8_is_one_line_naming_it(encoding, said, workdir):
    (workdir / "bad.yaml").write_bytes("raw_dir: données\n".encode(encoding))
    assert said in one_error_line(invoke("clean", "--config", "bad.yaml"))


def test_a_manifest_saved_as_utf16_by_excel_is_one_line_naming_it(workdir):
    (workdir / "data" / "clean").mkdir(parents=True)
    (workdir / "data" / "clean" / "manifest.csv").write_bytes(MANIFEST.encode("utf-16"))
    line = one_error_line(invoke("prepare", "--workers", "1"))
    assert line.startswith("error: data/clean/manifest.csv is UTF-16 text"), line
    assert 'save it as UTF-8 (in Excel: "CSV UTF-8")' in line
    assert not (workdir / "data" / "prepared").exists()


def test_a_label_file_that_is_not_utf8_is_one_line_naming_it(workdir):
    from aidentify.data.csvfiles import read_csv_rows
    from aidentify.errors import DataError

    (workdir / "label.csv").write_bytes("fer0000001.png,(0, 0, 48, 48),1,0\ncafé,x,1,0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"label.csv is not UTF-8 text \(it holds byte 0xE9.*; save it as UTF-8"):
        read_csv_rows(workdir / "label.csv")


def test_a_run_folder_that_cannot_be_made_is_one_line_naming_the_folder(tiny_data, workdir):
    (workdir / "runs").write_text("a file where the runs folder would go")
    line = one_error_line(invoke("train", "--set", f"data_dir={tiny_data / 'augmented'}", "--set", "project=runs"))
    assert line == ("error: cannot make a run folder in runs/cnn: runs is a file, not a folder; "
                    "choose another path"), line


@pytest.mark.parametrize("project, blocked", [("afile", "afile"), ("afile/runs", "afile"), ("runs", "runs/cnn")])
def test_a_run_folder_under_or_at_a_file_is_one_line_before_training(project, blocked, tiny_data, workdir):
    (workdir / "afile").write_text("a file")
    (workdir / "runs").mkdir()
    (workdir / "runs" / "cnn").write_text("a file where the model's runs folder would go")
    line = one_error_line(invoke("train", "--set", f"data_dir={tiny_data / 'augmented'}", "--set",
                                 f"project={project}"))
    assert line == (f"error: cannot make a run folder in {project}/cnn: {blocked} is a file, not a folder; "
                    "choose another path"), line


@pytest.mark.parametrize("command", [
    ["evaluate", "--out", "{out}"], ["clean", "--out", "{out}"], ["prepare", "--workers", "1", "--out", "{out}"],
    ["augment", "--out", "{out}"], ["download", "ferplus", "--from", "afile", "--raw-dir", "{out}"],
    ["export", "--model", "model.keras", "--out", "{out}"],
])
@pytest.mark.parametrize("out", ["afile", "afile/sub", "afile/sub/deeper"])
def test_an_output_folder_at_or_under_a_file_is_one_line_before_any_work(command, out, workdir, monkeypatch):
    import aidentify.inference.export

    monkeypatch.setattr(aidentify.inference.export, "resolve_model_path", lambda path: workdir / "model.keras")
    monkeypatch.setattr(aidentify.inference.export, "load_model",
                        lambda path: pytest.fail("export loaded the model before checking --out"))
    (workdir / "afile").write_text("a file where a folder would go")
    for stage in ("clean", "prepared"):
        (workdir / "data" / stage).mkdir(parents=True)
        (workdir / "data" / stage / "manifest.csv").write_text(MANIFEST)
    before = sorted(p for p in workdir.rglob("*"))
    line = one_error_line(invoke(*(part.format(out=out) for part in command)))
    where = f"{out}/ferplus" if command[0] == "download" else out
    assert line == f"error: cannot write in {where}: afile is a file, not a folder; choose another path", line
    assert sorted(p for p in workdir.rglob("*")) == before
    assert (workdir / "afile").read_text() == "a file where a folder would go"


def test_a_stage_folder_without_write_permission_is_one_line(workdir):
    if os.geteuid() == 0:
        pytest.skip("running as root: permission bits do not stop root (the message is tested with a faked "
                    "refusal below)")
    (workdir / "data" / "clean").mkdir(parents=True)
    (workdir / "data" / "clean" / "manifest.csv").write_text(MANIFEST)
    (workdir / "data").chmod(0o555)
    try:
        line = one_error_line(invoke("prepare", "--workers", "1"))
    finally:
        (workdir / "data").chmod(0o755)
    assert line == "error: cannot write in data: permission denied on data; check its permissions or choose " \
                   "another folder"


@pytest.mark.parametrize("raised, said", [
    (PermissionError(errno.EACCES, "Permission denied", "data/clean/images"),
     "error: permission denied on data/clean/images; check its permissions or choose another folder"),
    (OSError(errno.EROFS, "Read-only file system", "data/clean"),
     "error: data/clean is on a read-only file system; choose another folder"),
    (OSError(errno.ENOSPC, "No space left on device", "data/clean/x.png"),
     "error: the disk holding data/clean/x.png is full; free some space or choose another folder"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "afile/x"),
     "error: a part of afile/x is a file, not a folder; choose another path"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "data"),
     "error: data is a folder, not a file; give a file name"),
])
def test_os_errors_no_library_code_caught_still_say_what_to_do(raised, said, workdir, monkeypatch):
    import aidentify.data.clean

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr(aidentify.data.clean, "clean", fail)
    assert one_error_line(invoke("clean")) == said


def test_a_text_decode_error_no_library_code_caught_says_to_save_as_utf8(workdir, monkeypatch):
    import aidentify.data.clean

    def fail(*args, **kwargs):
        b"ok\xe9".decode("utf-8")

    monkeypatch.setattr(aidentify.data.clean, "clean", fail)
    assert one_error_line(invoke("clean")) == ("error: a text file this command read is not UTF-8 text (it holds "
                                               "byte 0xE9, which UTF-8 never has there); save it as UTF-8 (in "
                                               "Excel: \"CSV UTF-8\") and try again")
