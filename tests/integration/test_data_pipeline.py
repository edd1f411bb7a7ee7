"""download --from -> clean -> prepare -> augment -> evaluate through the CLI, as a user runs it."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from aidentify.cli import app
from aidentify.inference.modelfile import default_model_path, read_metadata

SHARED_FERPLUS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ferplus-trainvalid.zip"


def _run(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + result.stderr
    return result


def _assert_accounted(stage_dir: Path, input_ids: set[str]) -> set[str]:
    kept = pd.read_csv(stage_dir / "manifest.csv", dtype={"id": str})
    dropped = pd.read_csv(stage_dir / "dropped.csv", dtype={"id": str})
    assert set(kept["id"]) | set(dropped["id"]) == input_ids
    assert set(kept["id"]).isdisjoint(dropped["id"])
    assert (dropped["reason"].astype(str).str.len() > 0).all()
    return set(kept["id"])


def _check_chain(root: Path) -> None:
    raw_ids = set(pd.read_csv(root / "data/raw/ferplus/manifest.csv", dtype={"id": str})["id"])
    clean_ids = _assert_accounted(root / "data/clean", raw_ids)
    prepared_ids = _assert_accounted(root / "data/prepared", clean_ids)
    augmented = pd.read_csv(root / "data/augmented/manifest.csv", dtype={"id": str, "parent_id": str})
    originals = augmented[augmented["parent_id"].isna()]
    assert set(originals["id"]) == prepared_ids
    copies = augmented[augmented["parent_id"].notna()]
    assert set(copies["split"]) <= {"train"} and set(copies["parent_id"]) <= prepared_ids
    assert set(augmented["split"]) == {"train", "val", "test"}
    for stage in ("clean", "prepared", "augmented"):
        assert (root / "data" / stage / "config.yaml").is_file()
    for rel in augmented["path"].sample(min(50, len(augmented)), random_state=0):
        assert (root / "data/augmented" / rel).is_file()


def test_generated_ferplus_archive_through_augment(workdir, ferplus_archive):
    _run("download", "ferplus", "--from", str(ferplus_archive))
    out = _run("clean", "--set", "workers=1")
    assert "dropped images by reason" in out.output
    _run("prepare", "--workers", "2", "--image-size", "48")
    _run("augment")
    _check_chain(workdir)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_FERPLUS.is_file(), reason="../shared FER+ archive not present")
def test_real_ferplus_through_augment(workdir):
    _run("download", "ferplus", "--from", str(SHARED_FERPLUS))
    _run("clean")
    _run("prepare")
    _run("augment")
    _check_chain(workdir)
    raw = pd.read_csv(workdir / "data/raw/ferplus/manifest.csv")
    assert len(raw) == 28558 + 3579
    # the shipped model scores on FER+ Valid exactly what its provenance (and the README and docs/model-card.md) record
    out = _run("evaluate", "--data", "val", "--out", str(workdir / "eval"))
    recorded = read_metadata(default_model_path())["provenance"]["fer_plus_valid"]["int8"]
    measured = json.loads((workdir / "eval" / "metrics.json").read_text())
    assert measured["n"] == recorded["n"] == 3163
    assert measured["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-9), out.output
