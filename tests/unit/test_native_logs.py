"""Native stderr lines: TensorFlow's start-up notices filtered by TF_CPP_MIN_LOG_LEVEL, the rest kept."""

import os
import subprocess
import sys
import textwrap

import pytest

from aidentify.native_logs import ABSL_BANNER, tensorflow_line_shown

INFO = "I0000 00:00:1795583821.974579   29477 port.cc:153] oneDNN custom operations are on.\n"
WARNING = "W0000 00:00:1795583821.974579   29477 cpu_feature_guard.cc:210] This binary is optimized.\n"
ERROR = "E0000 00:00:1795583824.703637   29477 op_kernel.cc:1857] OP_REQUIRES failed: out of memory\n"
NO_DRIVER = ("E0000 00:00:1795583824.703637   29477 cuda_platform.cc:52] failed call to cuInit: "
             "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
PLAIN = "Illegal instruction (core dumped)\n"


@pytest.mark.parametrize("level, shown", [
    (0, {"banner", "info", "warning", "error", "no_driver", "plain"}),
    (1, {"warning", "error", "plain"}),
    (2, {"error", "plain"}),
    (3, {"plain"}),
])
def test_tensorflow_lines_pass_by_the_log_level_and_other_lines_always(level, shown):
    lines = {"banner": ABSL_BANNER + "\n", "info": INFO, "warning": WARNING, "error": ERROR,
             "no_driver": NO_DRIVER, "plain": PLAIN}
    assert {name for name, line in lines.items() if tensorflow_line_shown(line, level)} == shown


def _run(script: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python with TF_CPP_MIN_LOG_LEVEL unset, as a user's shell has it."""
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=300, env=env)


def test_filtered_native_stderr_keeps_wanted_lines_and_restores_stderr_after_an_exception():
    out = _run("""
        import os, sys
        from aidentify.native_logs import native_stderr_filtered
        try:
            with native_stderr_filtered(lambda line: "keep" in line):
                os.write(2, b"drop this\\nkeep this\\n")
                raise KeyError("inside")
        except KeyError:
            pass
        os.write(2, b"after\\n")
    """)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "keep this\nafter\n"
