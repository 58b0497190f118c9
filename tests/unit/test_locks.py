"""requirements.lock and requirements-dev.lock pin, exactly, every dependency pyproject.toml names (make lock)."""

from __future__ import annotations

import pathlib
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
            assert match, f"{name}: {line!r} is not name==version"
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def test_every_dependency_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    for locked, wanted in ((runtime, project["dependencies"]), (dev, project["dependencies"] + project["optional-dependencies"]["dev"])):
        for text in wanted:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in locked, f"{requirement.name} is not in the lock: run make lock"
            assert requirement.specifier.contains(locked[name], prereleases=True), (
                f"{name}=={locked[name]} is outside {text!r}: run make lock"
            )
    # What the processes run with is what the tests ran with.
    assert {name: version for name, version in dev.items() if name in runtime} == runtime
    assert "honcho" not in runtime  # a dev tool: a PaaS runs the Procfile itself


def test_the_buildpack_installs_the_runtime_lock_and_dockyard():
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert lines == ["-r requirements.lock", "."]
    assert (ROOT / ".python-version").read_text().strip() == "3.11"
