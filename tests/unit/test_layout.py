"""The import direction of DESIGN.md: web, scheduling, cli -> actors.dispatch -> storage -> settings."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECT = {"actors", "web", "scheduling", "storage", "cli", "settings"}
# package -> project modules it may import (by prefix)
ALLOWED = {
    "settings": set(),
    "storage": {"storage", "settings"},
    "actors": {"actors", "storage", "settings"},
    "web": {"web", "actors.dispatch", "storage", "settings"},
    "scheduling": {"scheduling", "actors.dispatch", "storage", "settings"},
    "cli": {"cli", "actors.dispatch", "storage", "settings"},
}


def project_imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PROJECT:
                yield node.lineno, name


def sources():
    yield ROOT / "settings.py"
    for package in sorted(PROJECT - {"settings"}):
        yield from sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", list(sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layering(path):
    package = path.relative_to(ROOT).parts[0].removesuffix(".py")
    allowed = ALLOWED[package]
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in project_imports(path)
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    ]
    assert not bad, "; ".join(bad)
