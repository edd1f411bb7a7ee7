"""Archive extraction refuses unsafe members and reports corrupt archives."""

import io
import tarfile
import zipfile

import pytest

from aidentify.data.archive import extract_archive
from aidentify.errors import ArchiveError


def test_zip_extracts_nested_members(tmp_path):
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/b.txt", "hello")
        zf.writestr("c.txt", "x")
    dest = tmp_path / "out"
    dest.mkdir()
    assert extract_archive(archive, dest) == 2
    assert (dest / "a" / "b.txt").read_text() == "hello"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/evil", "C:/evil"])
def test_zip_member_escaping_the_folder_is_refused_before_writing(tmp_path, name):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr(name, "pwned")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="refusing"):
        extract_archive(archive, dest)
    assert not (tmp_path / "x").exists()
    assert list(dest.iterdir()) == []  # checked before anything was written


def test_zip_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_archive(archive, dest)


def test_truncated_zip_is_a_clear_error(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(20):
            zf.writestr(f"f{i}.bin", bytes(range(256)) * 200)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        extract_archive(truncated, dest)


def test_corrupted_zip_member_fails_its_crc(tmp_path):
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("data.bin", b"A" * 5000)
    raw = bytearray(archive.read_bytes())
    raw[100] ^= 0xFF  # flip a byte inside the stored data
    archive.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        extract_archive(archive, dest)


def _tar_with(tmp_path, build):
    archive = tmp_path / "t.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        build(tf)
    return archive


def _add_file(tf, name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def test_tar_gz_extracts(tmp_path):
    archive = _tar_with(tmp_path, lambda tf: _add_file(tf, "d/e.txt", b"hi"))
    dest = tmp_path / "out"
    dest.mkdir()
    extract_archive(archive, dest)
    assert (dest / "d" / "e.txt").read_bytes() == b"hi"


def test_tar_dotdot_and_outside_symlink_are_refused(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    archive = _tar_with(tmp_path, lambda tf: _add_file(tf, "../escape.txt"))
    with pytest.raises(ArchiveError, match="escapes"):
        extract_archive(archive, dest)

    def with_link(tf):
        link = tarfile.TarInfo("innocent")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../etc/passwd"
        tf.addfile(link)

    archive = _tar_with(tmp_path, with_link)
    with pytest.raises(ArchiveError, match="points outside"):
        extract_archive(archive, dest)
    assert list(dest.iterdir()) == []


def test_truncated_tar_gz_is_a_clear_error(tmp_path):
    archive = _tar_with(tmp_path, lambda tf: [_add_file(tf, f"f{i}", bytes(range(256)) * 100) for i in range(30)])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:600])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        extract_archive(cut, dest)
