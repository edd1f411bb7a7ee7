"""``download``: fetch a dataset from Kaggle, or import a local copy.

The dataset ends up in ``<raw_dir>/<name>/``:

- ``files/``: the archive's contents, exactly as shipped (never modified);
- ``pixels/``: images decoded from a pixel CSV, when the layout has one;
- ``manifest.csv``: every image found, with label, split and FER+ votes;
- ``download.json``: where it came from and the SHA-256 of each archive;
- ``config.yaml``: the resolved download config.

Everything is built in ``<name>.partial/`` and renamed into place when
complete, so an interrupted or failed download never replaces good data.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aidentify.config import DatasetSource, DownloadConfig, dump_config
from aidentify.data.archive import extract_archive, is_archive
from aidentify.data.manifest import MANIFEST_NAME, NO_SPLIT, relative_path, write_manifest
from aidentify.data.network import network_failure
from aidentify.data.sources import index_dataset
from aidentify.errors import ConfigError, CredentialsError, DataError, DownloadError, ExtraMissing
from aidentify.extras import import_extra, require_extra
from aidentify.files import atomic_write_text, fresh_partial_dir, sha256_file
from aidentify.processes import lock_output_folder
from aidentify.progress import ProgressFn, no_progress

RECORD_NAME = "download.json"

CREDENTIALS_HELP = (
    "create an API token at https://www.kaggle.com/settings/api and save the kaggle.json it gives "
    "you as ~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY "
    "(or KAGGLE_API_TOKEN); offline, import a copy you have with --from PATH"
)


@dataclass
class DownloadResult:
    """What one dataset's download did, for the CLI to report."""

    dataset: str
    folder: Path
    skipped: bool
    layout: str = ""
    images: int = 0
    by_split: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def download(
    config: DownloadConfig,
    name: str | None,
    from_path: Path | None = None,
    force: bool = False,
    progress: ProgressFn = no_progress,
) -> list[DownloadResult]:
    """Download dataset ``name`` (or ``all``) into ``config.raw_dir``.

    With ``from_path`` the dataset is imported from a local archive or folder
    instead of Kaggle. A dataset already downloaded from the same source is
    not fetched again unless ``force`` is set.
    """
    if not name:
        known = ", ".join(config.datasets)
        raise ConfigError(f"name a dataset: {known} or all (e.g. aidentify download "
                          f"{next(iter(config.datasets), 'ferplus')})")
    if name == "all":
        if from_path is not None:
            raise ConfigError("--from imports one dataset; name it (e.g. `download ferplus --from ...`)")
        names = [n for n, d in config.datasets.items() if d.in_all]
    elif name in config.datasets or from_path is not None:
        names = [name]
    else:
        known = ", ".join([*config.datasets, "all"])
        raise ConfigError(f"unknown dataset '{name}'; choose one of: {known}")
    results = []
    for n in names:
        with lock_output_folder(Path(config.raw_dir) / n):
            results.append(_download_one(config, n, config.datasets.get(n), from_path, force, progress))
    return results


def _download_one(
    config: DownloadConfig,
    name: str,
    source: DatasetSource | None,
    from_path: Path | None,
    force: bool,
    progress: ProgressFn,
) -> DownloadResult:
    final = Path(config.raw_dir) / name
    origin = _describe_origin(name, source, from_path)
    previous = _read_record(final)
    if previous is not None and not force:
        if _same_origin(previous.get("origin"), origin):
            return DownloadResult(name, final, skipped=True, layout=previous.get("layout", ""),
                                  images=previous.get("images", 0),
                                  notes=[f"already downloaded ({previous.get('completed_at', '?')}); "
                                         "use --force to fetch it again"])
        raise DataError(
            f"{final} already holds {name} from {_origin_text(previous.get('origin'))}; "
            "use --force to replace it with this copy"
        )
    with fresh_partial_dir(final) as partial:
        files_dir = partial / "files"
        files_dir.mkdir()
        if from_path is not None:
            checksums = _import_local(Path(from_path), files_dir, progress)
        else:
            assert source is not None
            checksums = _fetch_from_kaggle(name, source, partial / ".download", files_dir, progress)
        _extract_nested_archives(files_dir, progress)
        try:
            found = index_dataset(files_dir, source=name, derived_dir=partial, progress=progress)
        except DataError as exc:
            raise type(exc)(_as_user_paths(str(exc), files_dir, from_path, name)) from None
        frame = found.frame
        frame["path"] = [relative_path(p, partial) for p in frame["path"]]
        write_manifest(frame, partial / MANIFEST_NAME)
        record = {
            "dataset": name,
            "origin": origin,
            "sha256": checksums,
            "layout": found.layout,
            "images": int(len(frame)),
            "completed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        atomic_write_text(partial / RECORD_NAME, json.dumps(record, indent=2))
        atomic_write_text(partial / "config.yaml", dump_config(config))
    by_split = {k or NO_SPLIT: int(v) for k, v in frame["split"].value_counts().sort_index().items()}
    return DownloadResult(name, final, skipped=False, layout=found.layout, images=len(frame),
                          by_split=by_split, notes=found.notes)


def _as_user_paths(message: str, files_dir: Path, from_path: Path | None, name: str) -> str:
    """Name the user's file, not our staging copy of it, in an error message."""
    if from_path is None:
        shown = f"{name} (from Kaggle): "
    elif Path(from_path).is_dir():
        shown = str(Path(from_path)) + os.sep
    elif Path(from_path).suffix.lower() == ".csv":  # copied in whole: its copy is the user's file
        return message.replace(str(files_dir / Path(from_path).name), str(from_path))
    else:
        shown = f"{from_path}:"
    return message.replace(str(files_dir) + os.sep, shown)


def _describe_origin(name: str, source: DatasetSource | None, from_path: Path | None) -> dict[str, Any]:
    if from_path is not None:
        path = Path(from_path)
        if not path.exists():
            raise DataError(f"--from path not found: {path}")
        if path.is_file():
            return {"local_archive": str(path.resolve()), "sha256": sha256_file(path)}
        return {"local_folder": str(path.resolve())}
    if source is None:
        raise ConfigError(f"no Kaggle source configured for '{name}'")
    return {"kaggle": [item.model_dump() for item in source.kaggle]}


def _same_origin(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Archives are the same copy when their checksums match, wherever they lie."""
    if old and "sha256" in old and "sha256" in new:
        return old["sha256"] == new["sha256"]
    return old == new


def _origin_text(origin: dict[str, Any] | None) -> str:
    if not origin:
        return "an unknown source"
    if "kaggle" in origin:
        return "Kaggle (" + ", ".join(i["ref"] for i in origin["kaggle"]) + ")"
    return origin.get("local_archive") or origin.get("local_folder") or "an unknown source"


def _read_record(folder: Path) -> dict[str, Any] | None:
    path = folder / RECORD_NAME
    if not path.is_file() or not (folder / MANIFEST_NAME).is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _import_local(path: Path, files_dir: Path, progress: ProgressFn) -> dict[str, str]:
    """Copy a local folder or a CSV file (FER2013's fer2013.csv), or extract a local archive, into
    ``files_dir``; returns the SHA-256 of each file taken whole, by name."""
    if path.is_dir():
        shutil.copytree(path, files_dir, dirs_exist_ok=True)
        return {}
    if path.suffix.lower() == ".csv":
        shutil.copy2(path, files_dir / path.name)
        return {path.name: sha256_file(path)}
    if not is_archive(path):
        raise DataError(f"--from expects a folder, a .csv file or a .zip/.tar.gz archive, got {path}")
    extract_archive(path, files_dir, progress)
    return {path.name: sha256_file(path)}


def _extract_nested_archives(files_dir: Path, progress: ProgressFn) -> None:
    """Extract archives shipped inside the download (FER2013's fer2013.tar.gz), one level."""
    for archive in sorted(p for p in files_dir.rglob("*") if p.is_file() and is_archive(p)):
        target = archive.with_name(archive.name.split(".")[0] + "_extracted")
        target.mkdir(exist_ok=True)
        extract_archive(archive, target, progress)


# ----------------------------------------------------------------------- Kaggle
def kaggle_credentials_source() -> str | None:
    """Where the Kaggle client will find credentials, or None if nowhere.

    Checked before importing ``kaggle``, which otherwise prints its help text
    and exits when it finds none.
    """
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    home = Path.home()
    candidates = [home / ".kaggle" / "access_token"]
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        candidates.append(Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json")
    candidates += [home / ".kaggle" / "kaggle.json", home / ".config" / "kaggle" / "kaggle.json"]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    return None


def kaggle_json_path() -> Path:
    """The one ``kaggle.json`` the client reads (kaggle 2.2's own rule)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"
    legacy = Path.home() / ".kaggle"
    if legacy.exists() or not sys.platform.startswith("linux"):
        return legacy / "kaggle.json"
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "kaggle" / "kaggle.json"


def check_kaggle_json() -> None:
    """Refuse a ``kaggle.json`` the client would silently ignore (it swallows JSON errors).

    Only checked when the file is what the client will use: an access token or
    ``KAGGLE_USERNAME`` + ``KAGGLE_KEY`` in the environment take precedence.
    """
    if (os.environ.get("KAGGLE_API_TOKEN")
            or (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"))
            or (Path.home() / ".kaggle" / "access_token").is_file()):
        return
    path = kaggle_json_path()
    if not path.is_file():
        return
    fix = ("download a new token at https://www.kaggle.com/settings/api and save it over that file "
           "(chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY instead")
    try:
        values = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise CredentialsError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}); "
            f'it should read {{"username": "...", "key": "..."}}; {fix}'
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read {path} ({_short(exc)}); {fix}") from None
    missing = [k for k in ("username", "key")
               if not isinstance(values, dict) or not isinstance(values.get(k), str) or not values[k]]
    if missing:
        raise CredentialsError(f"{path} has no {' or '.join(repr(k) for k in missing)}; {fix}")


def _kaggle_api(name: str = "NAME") -> Any:
    """An authenticated ``KaggleApi``; imported here so only `download` pays for it."""
    require_extra("kaggle")  # before credentials: those are no use without it
    if kaggle_credentials_source() is None:
        raise CredentialsError(f"no Kaggle credentials found; {CREDENTIALS_HELP}")
    check_kaggle_json()
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            api = import_extra("kaggle.api.kaggle_api_extended").KaggleApi()
            api.authenticate()
    except ExtraMissing:
        raise
    except (SystemExit, Exception) as exc:  # the client exits(1) on bad credentials
        if network_failure(exc) is not None:  # an access token is checked online
            raise _unreachable(name, exc) from None
        raise CredentialsError(f"Kaggle did not accept the credentials ({_short(exc)}); {CREDENTIALS_HELP}") from None
    return api


def _fetch_from_kaggle(
    name: str, source: DatasetSource, download_dir: Path, files_dir: Path, progress: ProgressFn
) -> dict[str, str]:
    api = _kaggle_api(name)
    download_dir.mkdir(parents=True, exist_ok=True)
    for n, item in enumerate(source.kaggle):
        progress(f"kaggle {item.ref}", n, len(source.kaggle))
        try:
            _fetch_item(api, item, download_dir)
        except (SystemExit, Exception) as exc:
            raise _explain_kaggle_failure(name, item.kind, item.ref, exc) from None
    progress("kaggle", len(source.kaggle), len(source.kaggle))
    checksums = {}
    for path in sorted(download_dir.iterdir()):
        checksums[path.name] = sha256_file(path)
        if is_archive(path):
            extract_archive(path, files_dir, progress)
        else:
            shutil.move(str(path), files_dir / path.name)
    shutil.rmtree(download_dir, ignore_errors=True)
    if not any(files_dir.iterdir()):
        raise DownloadError(f"Kaggle returned no files for {', '.join(i.ref for i in source.kaggle)}")
    return checksums


def _fetch_item(api: Any, item: Any, download_dir: Path) -> None:
    path = str(download_dir)
    if item.kind == "competition":
        if item.files:
            for name in item.files:
                api.competition_download_file(item.ref, name, path=path, quiet=True)
        else:
            api.competition_download_files(item.ref, path=path, quiet=True)
    elif item.files:
        for name in item.files:
            api.dataset_download_file(item.ref, name, path=path, quiet=True)
    else:
        api.dataset_download_files(item.ref, path=path, quiet=True, unzip=False)


def _explain_kaggle_failure(name: str, kind: str, ref: str, exc: BaseException) -> Exception:
    if network_failure(exc) is not None:
        return _unreachable(name, exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = _short(exc)
    if status == 401 or "401" in text or "unauthorized" in text.lower():
        return CredentialsError(f"Kaggle rejected the credentials (401); {CREDENTIALS_HELP}")
    if status == 403 or "403" in text:
        hint = (f"accept the competition's rules at https://www.kaggle.com/c/{ref}/rules"
                if kind == "competition" else "check that your account can access it")
        return DownloadError(f"Kaggle refused access to {ref} (403); {hint}")
    if status == 404 or "404" in text:
        return DownloadError(f"Kaggle has no {kind} '{ref}' (404); fix its ref in configs/download.yaml")
    return DownloadError(f"download of {ref} from Kaggle failed: {text}; retry, or download the archive "
                         f"elsewhere and use `aidentify download {name} --from PATH`")


def _unreachable(name: str, exc: BaseException) -> DownloadError:
    """Kaggle could not be reached at all: say why in a few words, and the offline way."""
    failure = network_failure(exc)
    assert failure is not None
    return DownloadError(
        f"could not reach Kaggle ({failure.host or 'api.kaggle.com'}): {failure.reason}; check the "
        f"connection, or download the archive elsewhere and use `aidentify download {name} --from PATH`"
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
