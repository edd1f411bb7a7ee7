"""The command line: help, exit codes, one-line errors, lazy TensorFlow."""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from aidentify.cli import app
from aidentify.native_logs import ABSL_BANNER

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_help_lists_the_commands_with_option_help():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("download", "clean", "prepare", "augment", "train", "train-cnn", "train-densenet", "evaluate"):
        assert command in result.output
    for command in ("download", "clean", "prepare", "augment"):
        sub = invoke(command, "--help")
        assert sub.exit_code == 0 and "--config" in sub.output and "--set" in sub.output


def _set_examples():
    from aidentify import config as c

    return [("download", c.DownloadConfig), ("clean", c.CleanConfig), ("prepare", c.PrepareConfig),
            ("augment", c.AugmentConfig), ("train", c.TRAIN_CONFIGS["cnn"]), ("train", c.TRAIN_CONFIGS["densenet"]),
            ("train-cnn", c.TRAIN_CONFIGS["cnn"]), ("train-densenet", c.TRAIN_CONFIGS["densenet"]),
            ("average", c.AverageConfig), ("evaluate", c.EvaluateConfig), ("live", c.LiveConfig),
            ("serve", c.ServeConfig)]


@pytest.mark.parametrize("command, model", _set_examples())
def test_every_commands_set_example_is_a_key_that_command_accepts(command, model):
    from aidentify.config import load_config

    help_text = " ".join(invoke(command, "--help").output.split())
    example = re.search(r"e\.g\. --set (\S+)", help_text).group(1)
    config, _ = load_config(model, None, [example])  # raises on a key this command's config lacks
    key, value = example.split("=")
    node = config
    for part in key.split("."):
        node = getattr(node, part)
    assert str(node).lower() == value.lower() or float(node) == float(value)


def _assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output + result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_mistyped_config_key_is_one_line(workdir):
    (workdir / "clean.yaml").write_text("dedupe:\n  enabled: true\n")
    _assert_one_line_error(invoke("clean", "--config", "clean.yaml"), "unknown key 'dedupe'", "did you mean 'dedup'")
    _assert_one_line_error(invoke("prepare", "--set", "image_size=large"), "'image_size'", "integer")


def test_stage_without_input_says_what_to_run(workdir):
    _assert_one_line_error(invoke("clean"), "aidentify download")
    _assert_one_line_error(invoke("prepare"), "aidentify clean")
    _assert_one_line_error(invoke("augment"), "aidentify prepare")


def test_missing_kaggle_credentials_is_one_line(workdir):
    _assert_one_line_error(invoke("download", "ferplus"), "no Kaggle credentials", "kaggle.json")


def test_path_escaping_and_truncated_archives_are_one_line_and_lose_nothing(workdir, ferplus_archive, tmp_path):
    assert invoke("download", "ferplus", "--from", str(ferplus_archive)).exit_code == 0
    import zipfile
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../x.txt", "x")
    _assert_one_line_error(invoke("download", "ferplus", "--from", str(evil), "--force"), "escapes")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(ferplus_archive.read_bytes()[:2000])
    _assert_one_line_error(invoke("download", "ferplus", "--from", str(cut), "--force"), "truncated")
    record = json.loads((workdir / "data/raw/ferplus/download.json").read_text())
    assert record["images"] == 67


def test_verbose_shows_the_traceback(workdir):
    result = invoke("clean", "--verbose")
    assert result.exit_code == 1 and "Traceback" in result.stderr


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and "aidentify" in result.output


def test_help_data_stages_and_live_with_a_tflite_model_never_import_tensorflow(tmp_path, ferplus_archive):
    script = textwrap.dedent(f"""
        import os, sys
        os.chdir({str(tmp_path)!r})
        from typer.testing import CliRunner
        from aidentify.cli import app
        r = CliRunner()
        for args in (["--help"], ["download", "ferplus", "--from", {str(ferplus_archive)!r}],
                     ["clean"], ["prepare", "--workers", "1"], ["augment"],
                     ["live", "--demo", "--no-window", "--max-frames", "3"]):
            result = r.invoke(app, args)
            assert result.exit_code == 0, (args, result.output)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "kaggle"))
        print("HEAVY", heavy)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout[:500]


def test_train_command_prints_its_device_and_none_of_tensorflows_start_up_notices(tiny_data, tmp_path):
    """The real CLI in a fresh process, where TensorFlow's first import happens."""
    script = textwrap.dedent(f"""
        import sys
        sys.argv = ["aidentify", "train", "--model", "cnn", "--set", "data_dir={tiny_data / 'augmented'}",
                    "--set", "project={tmp_path / 'runs'}", "--set", "image_size=32", "--set", "epochs=1",
                    "--set", "batch_size=16", "--set", "tensorboard=false", "--set", "cnn.filters=[8,16]",
                    "--set", "cnn.convs_per_block=1", "--set", "cnn.dense_units=16"]
        from aidentify.cli import main
        main()
    """)
    user_env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=user_env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"^device: (CPU, \d+ threads|\d+ GPUs?)", out.stdout, re.M), out.stdout
    assert ABSL_BANNER not in out.stderr
    assert not re.search(r"^[IW]\d{4} \d\d:\d\d:\d+", out.stderr, re.M), out.stderr[-3000:]


def test_a_stage_already_writing_its_folder_is_one_line_naming_the_other_process(workdir):
    hold = ("import time; from pathlib import Path; from aidentify.processes import lock_output_folder\n"
            "with lock_output_folder(Path('data/clean')):\n    print('locked', flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    other = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert other.stdout.readline().strip() == "locked"
        _assert_one_line_error(invoke("clean"), f"error: data/clean is being written by process {other.pid}; "
                                                "wait for it or stop it first")
    finally:
        other.kill()
        other.wait()


def test_local_folder_with_a_timeline_csv_reports_class_folders_and_no_split(workdir):
    from conftest import texture, write_image

    for i, folder in enumerate(("happy", "happy", "sad", "angry")):
        write_image(workdir / "ds" / folder / f"img{i}.png", texture(i))
    (workdir / "ds" / "happy.csv").write_text(
        "time_s,frame,file,track_id,x,y,w,h,p_neutral,label,confidence\n"
        "0.0,0,frame0000.png,1,1,2,3,4,0.5,happiness,0.9\n")
    result = invoke("download", "myfaces", "--from", "ds")
    assert result.exit_code == 0, result.output
    assert "4 images (no split 4), layout class-folders" in result.stdout
    assert "ignored happy.csv" in result.stdout and "(none)" not in result.stdout
    cleaned = invoke("clean")
    assert cleaned.exit_code == 0 and "no split" in cleaned.stdout and "(none)" not in cleaned.stdout


def test_download_without_a_dataset_names_the_choices(workdir):
    _assert_one_line_error(invoke("download"), "error: name a dataset: ferplus, fer2013, affectnet-hq or all",
                           "(e.g. aidentify download ferplus)")


def test_download_from_fer2013s_csv_file_itself_imports_it(workdir):
    from conftest import texture

    rows = [f"{i},{' '.join(map(str, texture(i).flatten()))},{usage}"
            for i, usage in enumerate(("Training", "PublicTest", "PrivateTest"))]
    (workdir / "fer2013.csv").write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    result = invoke("download", "fer2013", "--from", "fer2013.csv")
    assert result.exit_code == 0, result.output
    assert "3 images" in result.stdout and (workdir / "data/raw/fer2013/manifest.csv").is_file()


def test_a_bad_row_in_a_csv_given_itself_is_named_by_the_users_path(workdir):
    (workdir / "fer2013.csv").write_text("emotion,pixels,Usage\n3,1 2 3 4,Training,extra\n")
    result = invoke("download", "fer2013", "--from", "fer2013.csv")
    _assert_one_line_error(result, "error: fer2013.csv line 2: expected 3 fields, found 4")
    assert not (workdir / "data/raw/fer2013").exists()


def test_download_from_a_file_that_is_no_archive_or_csv_says_what_it_takes(workdir):
    (workdir / "faces.txt").write_text("not a dataset\n")
    _assert_one_line_error(invoke("download", "mine", "--from", "faces.txt"),
                           "--from expects a folder, a .csv file or a .zip/.tar.gz archive")
    assert not (workdir / "data/raw/mine").exists()


def test_clean_warns_on_stderr_when_a_tiny_dataset_gets_no_val(workdir):
    from conftest import texture, write_image

    for i in range(2):
        write_image(workdir / "ds" / "happy" / f"img{i}.png", texture(i))
    assert invoke("download", "tiny", "--from", "ds").exit_code == 0
    result = invoke("clean")
    assert result.exit_code == 0
    assert "warning: tiny: the carved val split is empty" in result.stderr


@pytest.mark.parametrize("args, option", [
    (["live", "--source", "a.jpg", "--source", "b.mp4", "--no-window"], "--source"),
    (["live", "--source=a.jpg", "--no-window", "--source=b.mp4"], "--source"),
    (["live", "--demo", "-m", "a.tflite", "--model", "b.tflite", "--no-window"], "--model"),
    (["live", "--demo", "--timeline", "a.csv", "--timeline", "b.csv", "--no-window"], "--timeline"),
    (["serve", "--port", "8001", "-p", "8002"], "--port"),
    (["train", "--epochs", "1", "--epochs", "2"], "--epochs"),
    (["evaluate", "--data", "val", "--data", "test"], "--data"),
    (["clean", "--config", "a.yaml", "-c", "b.yaml"], "--config"),
])
def test_a_single_value_option_given_twice_is_one_error_line_not_the_last_silently(args, option, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {option} was given 2 times; {args[0]} takes one {option}: give it once"], result.stderr
    assert not list(tmp_path.iterdir())


def test_options_meant_to_repeat_still_repeat(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("evaluate", "-m", "a.keras", "--model", "b.keras", "--set", "batch_size=8", "--set",
                    "worst_mistakes=4")
    assert "was given" not in result.output, result.output
    assert "model not found: a.keras" in result.stderr, result.stderr
    flags = invoke("live", "--source", "missing.jpg", "--window", "--no-window")
    assert "was given" not in flags.output and "--source missing.jpg" in flags.stderr, flags.stderr
