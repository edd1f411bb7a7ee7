"""Folder locks end with their holder; pool workers end with their parent (issue 23, kind 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aidentify.processes import FolderBusy, folder_lock, lock_file_for, lock_output_folder

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _python(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, text=True)


HOLD_LOCK = """
    import sys, time
    from pathlib import Path
    from aidentify.processes import lock_output_folder
    with lock_output_folder(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(60)
"""


def _holder(folder: Path) -> subprocess.Popen:
    holder = _python(HOLD_LOCK, str(folder))
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_holder_is_refused_with_one_line_naming_the_first(tmp_path):
    folder = tmp_path / "prepared"
    holder = _holder(folder)
    try:
        with pytest.raises(FolderBusy) as busy:
            with lock_output_folder(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
    message = str(busy.value)
    assert message == (f"{folder} is being written by process {holder.pid}; wait for it or stop it first")
    assert "\n" not in message


def test_a_lock_of_a_killed_process_is_free(tmp_path):
    folder = tmp_path / "prepared"
    holder = _holder(folder)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock_file_for(folder).exists()  # left behind by kill -9, yet not held
    with lock_output_folder(folder):
        pass
    assert not lock_file_for(folder).exists()


def test_the_lock_is_not_reentrant_even_in_one_process(tmp_path):
    with folder_lock(tmp_path / ".lock", "busy"):
        with pytest.raises(FolderBusy, match=f"busy by process {os.getpid()}"):
            with folder_lock(tmp_path / ".lock", "busy"):
                pass


POOL_THEN_WAIT = """
    import os, time
    from aidentify.processes import process_pool
    pool = process_pool(2)
    pids = sorted({pool.submit(os.getpid).result() for _ in range(20)} | set(pool._processes))
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    if status.exists():  # a zombie waiting for its (new) parent to reap it has ended
        return status.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def test_pool_workers_die_when_their_parent_is_killed():
    parent = _python(POOL_THEN_WAIT)
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert workers and all(_alive(pid) for pid in workers)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # do not leak them from a failing test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers outlived their parent: {left}"


def test_the_train_run_lock_is_the_same_atomic_lock(tmp_path):
    from aidentify.errors import DataError
    from aidentify.train.runs import run_lock

    run = tmp_path / "cnn" / "train"
    run.mkdir(parents=True)
    (run / ".lock").write_text(str(os.getppid()))  # a PID that is alive but holds no lock: not busy
    with run_lock(run):
        with pytest.raises(DataError, match=f"^{run} is being trained by process {os.getpid()}; wait for it"):
            with run_lock(run):  # a second resume of the same run, even from this process
                pass
    assert not (run / ".lock").exists()
