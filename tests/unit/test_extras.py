"""Without the `train` extra, a command that needs it says so in one line (TensorFlow, Kaggle blocked).

The packages are made absent the way Python allows: ``sys.modules[name] = None``
makes ``import name`` raise ``ModuleNotFoundError``, in a fresh process running
the real CLI, so nothing of this test process's TensorFlow leaks in.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from aidentify.errors import ExtraMissing
from aidentify.extras import import_extra, missing_extra

BLOCKED = ("tensorflow", "keras", "tensorboard", "kaggle")


def run_without_train_extra(cwd, body: str) -> subprocess.CompletedProcess:
    script = f"import sys\nfor name in {BLOCKED!r}:\n    sys.modules[name] = None\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("args,line", [
    (["train", "--model", "cnn"], "error: train needs TensorFlow: pip install 'aidentify[train]'"),
    (["download", "ferplus"], "error: download needs Kaggle: pip install 'aidentify[train]'"),
])
def test_a_command_that_needs_the_train_extra_says_so_in_one_line(tmp_path, args, line):
    done = run_without_train_extra(tmp_path, f"""
        sys.argv = ["aidentify", *{args!r}]
        from aidentify.cli import main
        main()
    """)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == line, done.stderr
    assert "Traceback" not in done.stderr


def test_the_library_raises_extra_missing_naming_the_extra(tmp_path):
    done = run_without_train_extra(tmp_path, """
        from aidentify.errors import ExtraMissing
        from aidentify.native_logs import import_tensorflow
        try:
            import_tensorflow()
        except ExtraMissing as exc:
            print(exc)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "TensorFlow is not installed: pip install 'aidentify[train]'"


def test_only_the_extras_own_modules_count_as_missing():
    assert isinstance(missing_extra(ModuleNotFoundError("x", name="keras.src.models")), ExtraMissing)
    assert missing_extra(ModuleNotFoundError("x", name="absl")) is None  # a broken TensorFlow stays itself
    assert missing_extra(ImportError("x", name="tensorflow")) is None  # present but failing to load
    with pytest.raises(ModuleNotFoundError):
        import_extra("no_such_module_anywhere")
