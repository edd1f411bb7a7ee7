"""`--model default` and `init_weights=default` name the shipped model."""

from pathlib import Path

import pytest

from aidentify.errors import DataError
from aidentify.inference.modelfile import default_model_path, resolve_model_path


def test_default_is_the_shipped_model_unless_something_of_that_name_is_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path(Path("default")) == resolve_model_path(None) == default_model_path()
    (tmp_path / "default").mkdir()  # a folder the user named "default" is what they mean
    with pytest.raises(DataError, match="default is a folder without weights/best.keras"):
        resolve_model_path(Path("default"))


def test_other_missing_names_are_not_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="model not found: defaults"):
        resolve_model_path(Path("defaults"))
