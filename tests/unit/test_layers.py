"""Data flows one way: data and faces below, inference above them, train / live, then serve / analyze, cli last.

Read from the source with ``ast`` (imports inside functions count too), so a lazy
import cannot hide a dependency that points the wrong way.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "aidentify"
# What each package may import from the others; config (settings) and the top-level modules are shared.
SHARED = {"config"}
ALLOWED = {
    "config": set(),
    "data": {"faces"},
    "faces": set(),
    "inference": {"faces"},
    "train": {"data", "faces", "inference"},
    "live": {"faces", "inference"},
    "serve": {"faces", "inference", "live"},
    "analyze": {"faces", "inference", "live"},
}


def imported_packages(package: str) -> dict[str, set[str]]:
    """``{module path: aidentify sub-packages it imports}`` for every module of ``package``."""
    found = {}
    for path in (PACKAGE / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            for module in modules:
                parts = module.split(".")
                if parts[0] == "aidentify" and len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
                    names.add(parts[1])
        found[str(path.relative_to(PACKAGE))] = names - {package} - SHARED
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_one_above_it(package):
    if not (PACKAGE / package).is_dir():
        pytest.skip(f"no {package}/ package yet")
    wrong = {module: sorted(names - ALLOWED[package]) for module, names in imported_packages(package).items()
             if names - ALLOWED[package]}
    assert wrong == {}
