"""The import direction of docs/architecture.md: web, scheduling, cli -> actors' doors -> storage -> settings;
telemetry (logs, traces, metrics serving) beside storage, importing only settings."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECT = {"actors", "web", "scheduling", "storage", "cli", "telemetry", "settings"}
# package -> project modules it may import (by prefix)
ALLOWED = {
    "settings": set(),
    "telemetry": {"telemetry", "settings"},
    "storage": {"storage", "settings"},
    "actors": {"actors", "storage", "telemetry", "settings"},
    "web": {"web", "actors.dispatch", "actors.admission", "actors.queues", "storage", "telemetry", "settings"},
    "scheduling": {"scheduling", "actors.dispatch", "actors.admission", "actors.periodic", "storage", "telemetry", "settings"},
    "cli": {"cli", "actors.dispatch", "actors.admission", "actors.queues", "storage", "telemetry", "settings"},
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


def test_the_api_does_not_import_the_housekeeping_schedule():
    """Queue administration and housekeeping sends are not the dispatcher's: the web process loads neither periodiq nor pendulum."""
    import subprocess
    import sys

    code = "import sys, web.app; print(sorted({m.split('.')[0] for m in sys.modules} & {'periodiq', 'pendulum'}))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout
    assert loaded.strip() == "[]", loaded
