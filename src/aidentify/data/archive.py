"""Extract .zip and .tar(.gz|.bz2|.xz) archives without trusting them.

An archive from the internet may hold members named ``../../.bashrc`` or
``/etc/passwd``, links pointing outside the folder, or be cut short by a
failed download. Every member is checked before anything is written, and
the caller extracts into a staging folder that is renamed into place only
when extraction has completed.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from aidentify.errors import ArchiveError
from aidentify.progress import ProgressFn, no_progress

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    """True for file names we know how to extract."""
    name = Path(path).name.lower()
    return any(name.endswith(suffix) for suffix in ARCHIVE_SUFFIXES)


def extract_archive(archive: Path, dest: Path, progress: ProgressFn = no_progress) -> int:
    """Extract ``archive`` into the existing folder ``dest``; return members written.

    Raises :class:`ArchiveError` for unsafe members (absolute paths, ``..``,
    links or devices) and for corrupt or truncated archives.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise ArchiveError(f"archive not found: {archive}")
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            return _extract_zip(archive, dest, progress)
        if is_archive(archive):
            return _extract_tar(archive, dest, progress)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and not _looks_corrupt(exc):
            raise ArchiveError(f"cannot extract {archive}: {exc}") from None
        raise ArchiveError(
            f"{archive} is corrupt or truncated ({type(exc).__name__}: {exc}); "
            "download it again (for Kaggle: `aidentify download ... --force`)"
        ) from None
    raise ArchiveError(f"{archive} is not a supported archive ({', '.join(ARCHIVE_SUFFIXES)})")


def _looks_corrupt(exc: OSError) -> bool:
    # gzip/lzma/bz2 report damage as OSError subclasses with these messages.
    text = str(exc).lower()
    return any(word in text for word in ("compressed", "crc", "end-of-stream", "not a gzip", "invalid"))


def _safe_member_path(name: str, archive: Path) -> PurePosixPath:
    """Refuse absolute names, drive letters and any '..' component."""
    clean = name.replace("\\", "/")
    path = PurePosixPath(clean)
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise ArchiveError(f"{archive}: refusing member with an absolute path: {name!r}")
    if ".." in path.parts:
        raise ArchiveError(f"{archive}: refusing member that escapes the folder: {name!r}")
    return path


def _extract_zip(archive: Path, dest: Path, progress: ProgressFn) -> int:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            _safe_member_path(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"{archive}: refusing symbolic link member {info.filename!r}")
        written = 0
        for i, info in enumerate(members):
            target = dest / _safe_member_path(info.filename, archive)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                # ZipFile.open verifies each member's CRC as it is read.
                with zf.open(info) as src, open(target, "wb") as out:
                    while block := src.read(1 << 20):
                        out.write(block)
                written += 1
            if i % 500 == 0 or i == len(members) - 1:
                progress("extract", i + 1, len(members))
        return written


def _extract_tar(archive: Path, dest: Path, progress: ProgressFn) -> int:
    dest_real = os.path.realpath(dest)
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()  # reads to the end: detects truncation up front
        for member in members:
            path = _safe_member_path(member.name, archive)
            if member.isdev() or member.isfifo():
                raise ArchiveError(f"{archive}: refusing device or fifo member {member.name!r}")
            if member.issym() or member.islnk():
                base = (dest / path).parent if member.issym() else Path(dest)
                target = os.path.realpath(base / member.linkname)
                if os.path.commonpath([dest_real, target]) != dest_real:
                    raise ArchiveError(
                        f"{archive}: refusing link {member.name!r} -> {member.linkname!r} "
                        "that points outside the folder"
                    )
        written = 0
        for i, member in enumerate(members):
            if hasattr(tarfile, "data_filter"):
                tf.extract(member, dest, filter="data")
            else:  # Python < 3.11.4: our own checks above are the guard
                tf.extract(member, dest)
            written += member.isfile()
            if i % 500 == 0 or i == len(members) - 1:
                progress("extract", i + 1, len(members))
        return written
