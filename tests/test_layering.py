"""shared ← worker ← web: check the imports, so the layering cannot rot silently."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "shared": (
        "flask",
        "flask_login",
        "flask_wtf",
        "celery",
        "kombu",
        "web",
        "worker",
        "simulator",
    ),
    "worker": ("flask", "flask_login", "flask_wtf", "web", "simulator"),
    "web": ("simulator",),
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package):
    offenders = []
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        for lineno, name in _imports(path):
            if name.split(".")[0] in FORBIDDEN[package]:
                offenders.append(f"{path.relative_to(ROOT)}:{lineno} imports {name}")
    assert offenders == []
