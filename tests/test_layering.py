"""Imports go one way: ingest never imports Django or skills; skills never import Django, Celery or the bot's settings (conf)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "ingest": ("django", "webapp", "skills"),
    "skills": ("django", "webapp", "celery", "kombu", "workers", "ingest", "conf"),
    "conf": ("django", "webapp", "celery", "workers", "skills", "ingest"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_on_their_side(package):
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        bad = _imports(path) & set(FORBIDDEN[package])
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)
    assert list((ROOT / package).rglob("*.py")), f"{package} has no modules"
