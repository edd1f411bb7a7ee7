"""Processes that end with their parent, and folder locks that end with their holder.

- :func:`process_pool` is the one way AIdentify makes a worker pool: every
  worker watches the process that started it and exits as soon as that
  process is gone, so ``kill -9`` of a stage leaves no orphaned workers.
  (A watchdog thread rather than Linux's ``PR_SET_PDEATHSIG``: that signal
  fires when the parent *thread* that forked the worker ends, and pools such
  as the server's are restarted from short-lived request threads.)
- :func:`folder_lock` is the one way a command claims a folder it writes:
  an exclusive, non-blocking ``flock`` on a lock file. Taking it is one
  atomic step, and the kernel drops it when the holder exits for any reason
  (``kill -9`` included), so a lock left by a dead process is free by
  construction.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aidentify.errors import DataError
from aidentify.files import check_output_folder, os_error_cause

WATCH_INTERVAL_S = 0.2


class FolderBusy(DataError):
    """Another live process holds the lock on a folder this command would write."""


def lock_file_for(folder: Path) -> Path:
    """The hidden lock file beside ``folder`` (hidden names are never read as data)."""
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.lock")


@contextlib.contextmanager
def folder_lock(lock_path: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` for the body, or refuse at once.

    ``busy`` describes the work for the refusal, which reads
    ``<busy> by process <PID>; wait for it or stop it first``, e.g.
    ``data/prepared is being written by process 123; ...``. The lock file
    holds the owner's PID for that message only: the ``flock`` is the lock.
    It is removed on release while still locked; a taker checks that the file
    it locked is still the one at ``lock_path`` (else it retries), so no two
    processes can ever hold locks on two different files of that name.
    """
    lock_path = Path(lock_path)
    while True:
        fd = _open_lock_file(lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise FolderBusy(f"{busy} by {who}; wait for it or stop it first") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed it as we opened it: take the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)  # releases the flock


def _open_lock_file(lock_path: Path) -> int:
    """Open (create) the lock file; a folder this process cannot write in is one clear error."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise DataError(f"cannot write in {lock_path.parent}: {os_error_cause(exc, lock_path.parent)}") from None


def lock_output_folder(folder: Path) -> contextlib.AbstractContextManager[None]:
    """:func:`folder_lock` for a stage's output folder (and its ``.partial`` staging folder),
    after checking that files can be written there (:func:`aidentify.files.check_output_folder`)."""
    check_output_folder(folder)
    return folder_lock(lock_file_for(folder), f"{folder} is being written")


HOLDER_WAIT_S = 1.0  # how long a refusal waits for a just-started holder to write its PID


def _read_holder(fd: int) -> str:
    """The PID the lock's holder wrote, or "" if none appears within ``HOLDER_WAIT_S``.

    The holder writes its PID just after taking the lock, so a process refused in
    between would otherwise read an empty file and name no one.
    """
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            return ""
        if text.isdigit() or time.monotonic() >= deadline:
            return text if text.isdigit() else ""
        time.sleep(0.02)


def process_pool(workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = (),
                 **kwargs: Any) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` whose workers exit when the process that made it dies."""
    return ProcessPoolExecutor(workers, initializer=_start_worker,
                               initargs=(os.getpid(), initializer, initargs), **kwargs)


def _start_worker(parent_pid: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent_pid: int) -> None:
    """Exit this process as soon as ``parent_pid`` is no longer its parent."""
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCH_INTERVAL_S)
        os._exit(1)

    threading.Thread(target=watch, name="aidentify-die-with-parent", daemon=True).start()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the body, SIGTERM (``kill``, a service manager stopping us) raises
    ``KeyboardInterrupt`` like Ctrl-C, so the caller's clean stop runs; the previous
    handler is restored afterwards. Outside the main thread (where Python cannot
    install handlers) the body runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Within the body, Ctrl-C and SIGTERM wait: the body runs to its end, then ``KeyboardInterrupt``
    is raised. ``live`` records a frame (timeline row, annotated video frame) as one unit this way: an
    encoder with Python code in it (PyAV's) could otherwise be stopped between a frame's timeline row
    and its video frame. Outside the main thread the body runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        caught.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        raise KeyboardInterrupt
