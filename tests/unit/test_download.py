"""download: local imports, the Kaggle path (client faked), records and safety."""

import json

import pandas as pd
import pytest
import requests

from conftest import make_ferplus_tree, one_hot_votes, texture, write_image, zip_folder

from aidentify.config import DownloadConfig
from aidentify.data import download as download_module
from aidentify.data.download import download
from aidentify.errors import ArchiveError, ConfigError, CredentialsError, DataError, DownloadError


def test_import_archive_records_checksum_and_does_not_repeat(workdir, ferplus_archive):
    [result] = download(DownloadConfig(), "ferplus", from_path=ferplus_archive)
    assert not result.skipped and result.layout == "ferplus-folders"
    record = json.loads((workdir / "data/raw/ferplus/download.json").read_text())
    assert len(record["sha256"]["ferplus-mini.zip"]) == 64
    manifest = pd.read_csv(workdir / "data/raw/ferplus/manifest.csv")
    assert len(manifest) == result.images == 67
    assert all((workdir / "data/raw/ferplus" / p).is_file() for p in manifest["path"])

    [again] = download(DownloadConfig(), "ferplus", from_path=ferplus_archive)
    assert again.skipped and "--force" in again.notes[0]
    [forced] = download(DownloadConfig(), "ferplus", from_path=ferplus_archive, force=True)
    assert not forced.skipped


def test_a_different_copy_needs_force_and_the_old_one_survives(workdir, ferplus_archive, tmp_path):
    download(DownloadConfig(), "ferplus", from_path=ferplus_archive)
    other = make_ferplus_tree(tmp_path / "other", {"train": [one_hot_votes("fear")] * 2}, seed=3)
    with pytest.raises(DataError, match="--force"):
        download(DownloadConfig(), "ferplus", from_path=zip_folder(other, tmp_path / "other.zip"))
    assert len(pd.read_csv(workdir / "data/raw/ferplus/manifest.csv")) == 67


def test_bad_archives_fail_cleanly_and_keep_existing_data(workdir, ferplus_archive, tmp_path):
    download(DownloadConfig(), "ferplus", from_path=ferplus_archive)
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(ferplus_archive.read_bytes()[:3000])
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        download(DownloadConfig(), "ferplus", from_path=truncated, force=True)
    import zipfile
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", "x")
    with pytest.raises(ArchiveError, match="escapes"):
        download(DownloadConfig(), "ferplus", from_path=evil, force=True)
    assert not (workdir / "escape.txt").exists() and not (workdir / "data/escape.txt").exists()
    assert len(pd.read_csv(workdir / "data/raw/ferplus/manifest.csv")) == 67
    assert not (workdir / "data/raw/ferplus.partial").exists()


def test_unknown_layout_and_unknown_dataset(workdir, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.md").write_text("nothing here")
    with pytest.raises(DataError, match="unrecognised dataset layout"):
        download(DownloadConfig(), "mine", from_path=folder)
    with pytest.raises(ConfigError, match="choose one of: ferplus"):
        download(DownloadConfig(), "ferplsu")
    with pytest.raises(ConfigError, match="--from imports one dataset"):
        download(DownloadConfig(), "all", from_path=folder)


def test_missing_kaggle_credentials_explain_setup(workdir):
    with pytest.raises(CredentialsError) as err:
        download(DownloadConfig(), "ferplus")
    assert "kaggle.json" in str(err.value) and "KAGGLE_USERNAME" in str(err.value)
    assert not (workdir / "data/raw/ferplus").exists()


class _FakeResponse:
    def __init__(self, status):
        self.status_code = status


@pytest.fixture
def kaggle_calls(monkeypatch, tmp_path):
    """The real KaggleApi class, authenticated with a dummy key; its downloads faked."""
    from kaggle.api.kaggle_api_extended import KaggleApi

    monkeypatch.setenv("KAGGLE_USERNAME", "tester")
    monkeypatch.setenv("KAGGLE_KEY", "0123")
    calls = []
    source = tmp_path / "kaggle_src"
    write_image(source / "train" / "happy" / "a.png", texture(1))
    write_image(source / "test" / "angry" / "b.png", texture(2))

    def fake_dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False, licenses=None):
        calls.append(("dataset", dataset))
        if dataset == "owner/rejected":
            raise requests.HTTPError("401 Client Error: Unauthorized", response=_FakeResponse(401))
        if dataset == "owner/missing":
            raise requests.HTTPError("404 Client Error: Not Found", response=_FakeResponse(404))
        if dataset == "owner/offline":
            raise _no_dns()
        if dataset == "owner/slow":
            raise requests.ConnectTimeout("HTTPSConnectionPool(host='api.kaggle.com', port=443): timed out")
        zip_folder(source, Path(path) / (dataset.split("/")[1] + ".zip"))

    from pathlib import Path
    monkeypatch.setattr(KaggleApi, "dataset_download_files", fake_dataset_download_files)
    return calls


def _config_with(ref: str) -> DownloadConfig:
    return DownloadConfig(datasets={"mirror": {"kaggle": [{"kind": "dataset", "ref": ref}]}})


def test_kaggle_download_extracts_indexes_and_records(workdir, kaggle_calls):
    [result] = download(_config_with("owner/fer-mirror"), "mirror")
    assert kaggle_calls == [("dataset", "owner/fer-mirror")]
    assert result.layout == "class-folders" and result.images == 2
    record = json.loads((workdir / "data/raw/mirror/download.json").read_text())
    assert record["origin"]["kaggle"][0]["ref"] == "owner/fer-mirror"
    assert "fer-mirror.zip" in record["sha256"]
    [again] = download(_config_with("owner/fer-mirror"), "mirror")
    assert again.skipped and len(kaggle_calls) == 1


def test_kaggle_rejected_credentials_and_missing_dataset(workdir, kaggle_calls):
    with pytest.raises(CredentialsError, match="rejected"):
        download(_config_with("owner/rejected"), "mirror")
    with pytest.raises(DownloadError, match="404.*configs/download.yaml"):
        download(_config_with("owner/missing"), "mirror")
    assert not (workdir / "data/raw/mirror").exists()


def test_kaggle_client_exiting_on_bad_credentials_becomes_our_error(workdir, monkeypatch):
    from kaggle.api.kaggle_api_extended import KaggleApi

    monkeypatch.setenv("KAGGLE_API_TOKEN", "expired")
    monkeypatch.setattr(KaggleApi, "authenticate", lambda self: exit(1))
    with pytest.raises(CredentialsError, match="did not accept"):
        download_module._kaggle_api()


def test_same_archive_from_another_place_is_not_imported_twice(workdir, ferplus_archive, tmp_path):
    download(DownloadConfig(), "ferplus", from_path=ferplus_archive)
    moved = tmp_path / "elsewhere.zip"
    moved.write_bytes(ferplus_archive.read_bytes())
    [again] = download(DownloadConfig(), "ferplus", from_path=moved)
    assert again.skipped


def test_truncated_kaggle_json_is_named_as_not_json_and_the_client_stays_quiet(workdir, capfd):
    from pathlib import Path

    from typer.testing import CliRunner

    from aidentify.cli import app

    kaggle_json = Path.home() / ".kaggle" / "kaggle.json"
    kaggle_json.parent.mkdir()
    kaggle_json.write_text('{"username": "someone"\n')
    with pytest.raises(CredentialsError) as err:
        download_module._kaggle_api()
    message = str(err.value)
    assert message.startswith(f"{kaggle_json} is not valid JSON (")
    assert "save it over that file" in message and "did not accept" not in message
    result = CliRunner().invoke(app, ["download", "fer2013"])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {message}"
    captured = capfd.readouterr()
    assert "kaggle" not in (captured.out + result.stdout).lower().replace("kaggle.json", "")


def test_kaggle_json_without_a_key_says_so(workdir):
    from pathlib import Path

    kaggle_json = Path.home() / ".kaggle" / "kaggle.json"
    kaggle_json.parent.mkdir()
    kaggle_json.write_text('{"username": "someone"}')
    with pytest.raises(CredentialsError, match=r"kaggle\.json has no 'key'"):
        download_module._kaggle_api()


def _no_dns() -> Exception:
    """What requests raises when api.kaggle.com does not resolve (built as urllib3 builds it)."""
    import socket

    from urllib3.connection import HTTPSConnection
    from urllib3.connectionpool import HTTPSConnectionPool
    from urllib3.exceptions import MaxRetryError, NameResolutionError

    conn = HTTPSConnection("api.kaggle.com", 443)
    reason = NameResolutionError("api.kaggle.com", conn, socket.gaierror(-2, "Name or service not known"))
    pool = HTTPSConnectionPool("api.kaggle.com", 443)
    try:
        raise MaxRetryError(pool, "/api/v1/datasets/download/owner/offline", reason) from reason
    except MaxRetryError as exc:
        try:
            raise requests.ConnectionError(exc)
        except requests.ConnectionError as outer:
            return outer


def test_kaggle_unreachable_says_why_in_a_few_words_and_offers_from(workdir, kaggle_calls):
    with pytest.raises(DownloadError) as err:
        download(_config_with("owner/offline"), "mirror")
    assert str(err.value) == (
        "could not reach Kaggle (api.kaggle.com): name resolution failed; check the connection, "
        "or download the archive elsewhere and use `aidentify download mirror --from PATH`")
    with pytest.raises(DownloadError, match=r"could not reach Kaggle .*: the connection timed out; .*--from PATH"):
        download(_config_with("owner/slow"), "mirror")
    assert not (workdir / "data/raw/mirror").exists()


def test_an_access_token_that_cannot_be_checked_offline_is_not_called_rejected(workdir, monkeypatch):
    from kaggle.api.kaggle_api_extended import KaggleApi

    monkeypatch.setenv("KAGGLE_API_TOKEN", "some-token")

    def authenticate(self):
        raise _no_dns()

    monkeypatch.setattr(KaggleApi, "authenticate", authenticate)
    with pytest.raises(DownloadError, match=r"could not reach Kaggle \(api.kaggle.com\): name resolution") as err:
        download_module._kaggle_api("ferplus")
    assert not isinstance(err.value, CredentialsError)
