"""docs/api.md's examples run as written (doctest), on the inputs the page names."""

from __future__ import annotations

import doctest
from pathlib import Path

from api_media import write_clip, write_photo

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_example_in_docs_api_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_photo(tmp_path / "astronaut.png")
    write_clip(tmp_path / "clip.mp4")
    result = doctest.testfile(str(DOCS), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 15
    assert result.failed == 0
