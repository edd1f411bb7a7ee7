"""Write files so that a crash or Ctrl-C never leaves half of one on disk.

Every output of AIdentify goes through these helpers: data is written to a
temporary name in the same folder and renamed into place (``os.replace`` is
atomic on one file system), and whole stage folders are built beside the
old one and swapped in only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aidentify.errors import AidentifyError, DataError


JUNK_NAMES = {"thumbs.db", "ehthumbs.db", "desktop.ini", "__macosx"}


def is_junk_name(name: str) -> bool:
    """Whether a file or folder name is operating-system clutter, never data.

    Hidden names (macOS ``._*`` AppleDouble files, ``.DS_Store``, ``.git``), the
    ``__MACOSX/`` folder that macOS zips carry, and Windows' ``Thumbs.db`` and
    ``desktop.ini``. Every reader of a user's folder skips these the same way.
    """
    return name.startswith(".") or name.lower() in JUNK_NAMES


STAGING_SUFFIXES = (".partial", ".old", ".tmp")


def is_unfinished_name(name: str) -> bool:
    """Whether a folder is a stage's staging or leftover copy (``x.partial``, ``x.old``,
    a hidden temporary), never a completed output: readers of a stage's outputs skip it."""
    return is_junk_name(name) or name.endswith(STAGING_SUFFIXES)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def partial_dir_for(final_dir: Path) -> Path:
    """The folder a stage builds its output in before it is swapped into place."""
    final_dir = Path(final_dir)
    return final_dir.with_name(final_dir.name + ".partial")


def promote_dir(partial: Path, final_dir: Path) -> None:
    """Swap a completed ``partial`` folder into ``final_dir``.

    The previous output is renamed aside first and deleted only after the new
    one is in place, so at every instant one complete version exists.
    """
    partial, final_dir = Path(partial), Path(final_dir)
    old = final_dir.with_name(final_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(partial, final_dir)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def fresh_partial_dir(final_dir: Path) -> Iterator[Path]:
    """Yield an empty staging folder for ``final_dir``; promote it on success.

    On any exception the staging folder is removed and ``final_dir`` is left
    exactly as it was. Use :func:`partial_dir_for` directly for stages that
    resume from a kept partial folder.
    """
    partial = partial_dir_for(final_dir)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    promote_dir(partial, final_dir)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (archives can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class PendingFile:
    """A file written over time (a video, a CSV) under a temporary name.

    ``path`` is where the writer should write; the temporary name keeps the
    real suffix, because OpenCV picks the video container from it.
    :meth:`commit` renames it into place; :meth:`discard` removes it.
    """

    def __init__(self, final: Path):
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = self.final.with_name(f".{self.final.stem}.partial-{os.getpid()}{self.final.suffix}")

    def commit(self) -> Path:
        os.replace(self.path, self.final)
        return self.final

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
SPREADSHEET_SUFFIXES = {".csv", ".tsv", ".txt"}  # files users save from Excel: the encoding hint names its menu
PROBE_BYTES = 4096  # enough to meet a full disk when the probe file is flushed


def check_output_folder(folder: Path, what: str | None = None) -> None:
    """Refuse, before any work, an output folder that cannot take files (``what``: how the user named it,
    e.g. ``--out runs/x``; the message says ``cannot write in FOLDER`` without it)."""
    cause = unwritable_cause(folder)
    if cause:
        raise DataError(f"cannot write {what or f'in {folder}'}: {cause}")


def check_output_file(path: Path, what: str | None = None) -> None:
    """Refuse, before any work, a file the command could not write at the end: a path through a
    file, an existing folder, a folder without permission or room (``what`` as in :func:`check_output_folder`)."""
    path = Path(path)
    cause = (f"{path} is a folder, not a file; give a file name" if path.is_dir() or not path.name
             else unwritable_cause(path.parent))
    if cause:
        raise DataError(f"cannot write {what or path}: {cause}")


def unwritable_cause(folder: Path) -> str | None:
    """Why files cannot be written under ``folder``, or None when they can.

    Every command's output paths are checked with this before any work. Folders
    still to be made go under the nearest existing one, which must be a folder
    this process can write in, on a disk with room: a small file is written
    there and removed (permission bits alone do not tell, e.g. for root or on a
    read-only mount).
    """
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder; choose another path"
    try:
        probe_write(existing)
    except OSError as exc:
        return os_error_cause(exc, existing)
    return None


def probe_write(folder: Path) -> None:
    """Write a few KiB to a temporary file in ``folder`` and sync it (the file is removed)."""
    with tempfile.TemporaryFile(dir=folder, prefix=".aidentify-probe-") as probe:
        probe.write(b"\0" * PROBE_BYTES)
        probe.flush()
        os.fsync(probe.fileno())


def os_error_cause(exc: OSError, where: Path | str | None = None) -> str:
    """What a failed read or write means for the user, and what to do (``where``: the file or folder)."""
    where = where if where is not None else exc.filename
    if exc.errno == errno.EEXIST and where and Path(where).exists() and not Path(where).is_dir():
        return f"{where} is a file, not a folder; choose another path"  # mkdir of a folder a file blocks
    if exc.errno == errno.EISDIR:
        return f"{where or 'the path'} is a folder, not a file; give a file name"
    if exc.errno == errno.ENOSPC:
        return f"the disk{f' holding {where}' if where else ''} is full; free some space or choose another folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"permission denied{f' on {where}' if where else ''}; check its permissions "
                "or choose another folder")
    if exc.errno == errno.EROFS:
        return f"{where or 'the folder'} is on a read-only file system; choose another folder"
    if exc.errno == errno.ENOTDIR:
        return f"a part of {where or 'the path'} is a file, not a folder; choose another path"
    return f"{exc.strerror or exc}{f' ({where})' if where else ''}"


def not_utf8_message(path: Path | str | None, exc: UnicodeDecodeError) -> str:
    """``FILE is not UTF-8 text ...; save it as UTF-8``, naming UTF-16 when it is that.

    Excel's names for the encodings ("Unicode Text", "CSV UTF-8") are given for CSV
    files only (and for an unnamed file, which may be one), never for a YAML config.
    """
    name = str(path) if path else "a text file this command read"
    excel = path is None or Path(path).suffix.lower() in SPREADSHEET_SUFFIXES
    if isinstance(exc.object, bytes) and exc.object.startswith(UTF16_BOMS):
        kind = "is UTF-16 text (as Excel's \"Unicode Text\" saves it), not UTF-8" if excel else "is UTF-16 text, not UTF-8"
    else:
        kind = f"is not UTF-8 text (it holds byte 0x{exc.object[exc.start]:02X}, which UTF-8 never has there)"
    how = ' (in Excel: "CSV UTF-8")' if excel else ""
    return f"{name} {kind}; save it as UTF-8{how} and try again"


def read_utf8(path: Path, error: type[AidentifyError] = DataError) -> str:
    """The text of ``path``; a file that is not UTF-8 or cannot be read raises ``error`` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(not_utf8_message(path, exc)) from None
    except PermissionError:
        raise error(f"cannot read {path}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {os_error_cause(exc, path)}") from None
