"""What TensorFlow's and LiteRT's C++ cores print on stderr, kept out of the user's terminal.

Both write straight to file descriptor 2, below Python, so ``sys.stderr``
redirection cannot catch them. TensorFlow 2.21 logs through absl before absl's
logging is set up, and those start-up lines ignore ``TF_CPP_MIN_LOG_LEVEL``:
every command that imported TensorFlow opened with a dozen lines of oneDNN and
CUDA notices. :func:`import_tensorflow` imports it with those lines filtered
by the level the variable sets, as TensorFlow itself did before 2.21.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Callable, Iterator

# I0000 00:00:1795583821.974579   29477 port.cc:153] message  (severity letter first)
ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] ")
ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 0 shows all, 1 hides I, 2 hides I and W, 3 hides I, W and E
# The one error-level start-up line of a machine without a usable NVIDIA driver: not an error
# for a CPU install. `train` says which device it uses; TF_CPP_MIN_LOG_LEVEL=0 shows the line.
NO_CUDA_DRIVER = "failed call to cuInit"


@contextmanager
def native_stderr_filtered(keep: Callable[[str], bool]) -> Iterator[None]:
    """Hold back what native code writes on stderr, then pass on the lines ``keep`` accepts.

    Python's own errors still surface as exceptions; only printed lines are filtered.
    Lines are held in a temporary file until the block ends, so a process that
    dies inside the block (a native abort) loses them: keep the blocks short.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (tests, notebooks)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            held.seek(0)
            passed = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                      if keep(line)]
            if passed:
                sys.stderr.write("".join(passed))
                sys.stderr.flush()


def native_stderr_silenced() -> Any:
    """Drop everything native code prints on stderr (LiteRT's "Created XNNPACK delegate" INFO line)."""
    return native_stderr_filtered(lambda line: False)


@contextmanager
def opencv_log_silenced() -> Iterator[None]:
    """Silence OpenCV's own log while probing a device or file: a missing camera prints a dozen
    backend warnings before ``isOpened()`` says False, and we report it in one line."""
    import cv2

    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def tensorflow_line_shown(line: str, min_level: int) -> bool:
    """Whether TensorFlow's ``TF_CPP_MIN_LOG_LEVEL`` lets this stderr line through.

    Lines that are not absl log lines (a crash message, say) always pass.
    """
    if line.rstrip("\n") == ABSL_BANNER:
        return min_level == 0
    match = ABSL_LINE.match(line)
    if not match:
        return True
    if NO_CUDA_DRIVER in line:
        return min_level == 0
    return SEVERITIES.index(match.group(1)) >= min_level


def tensorflow_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as set, clipped to 0-3.

    When unset it is set to 2 (errors only), so TensorFlow's own later lines,
    which do obey the variable, follow the same level as the filtered start-up.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return min(max(int(os.environ["TF_CPP_MIN_LOG_LEVEL"]), 0), 3)
    except ValueError:
        return 2


def import_tensorflow() -> Any:
    """Import TensorFlow and Keras once, showing only the start-up lines the log level allows.

    Also looks for GPUs inside the filter, since CUDA's set-up logs on first use.
    Call it before any other TensorFlow import on a command's path. Raises
    :class:`~aidentify.errors.ExtraMissing` when TensorFlow is not installed
    (``pip install aidentify`` leaves it out; the ``train`` extra brings it).
    """
    level = tensorflow_log_level()
    if sys.modules.get("tensorflow") is not None:
        return sys.modules["tensorflow"]
    from aidentify.extras import import_extra

    with native_stderr_filtered(lambda line: tensorflow_line_shown(line, level)):
        import_extra("keras")  # its backend import is part of the start-up
        tf = import_extra("tensorflow")
        tf.config.list_physical_devices("GPU")
    return tf
