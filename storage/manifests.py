"""Processor manifests: the allowlist `dockyard processors apply` reads, checked line by line and
compared with what is registered.

The manifest lists every processor that may run. Applying it adds the new
ones, changes the ones that differ, and disables registered processors it
no longer lists (their runs and history stay; a disabled processor takes no
new runs and a worker refuses its queued ones). All of it in one
transaction, each change with its audit record, or nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml

from settings import Settings
from storage.database import database, is_postgres
from storage.errors import InvalidSpec
from storage.processors import disable_processor, list_processors, parse_processor_spec, put_processor, spec_differences

ADD, CHANGE, DISABLE, KEEP = "add", "change", "disable", "keep"
APPLY_LOCK_KEY = 0x646F636B6D616E69  # "dockmani": applies of manifests take turns on Postgres


class ManifestError(Exception):
    """The manifest cannot be applied; `problems` are (line or None, message), in file order."""

    def __init__(self, problems: list[tuple[int | None, str]]):
        self.problems = problems
        super().__init__("; ".join(f"line {line}: {msg}" if line else msg for line, msg in problems))


@dataclass
class Change:
    verb: str  # ADD, CHANGE, DISABLE or KEEP
    name: str
    image: str
    # field -> (stored, manifest), for CHANGE
    differences: dict[str, tuple] = field(default_factory=dict)
    spec: dict | None = None  # the manifest's fields (None for DISABLE)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _field(mapping: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes of `key` in a mapping node."""
    if isinstance(mapping, yaml.MappingNode):
        for k, v in mapping.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
    return None


def _line_of(entry: yaml.Node, path: str) -> int:
    """The line of a field such as `resources.cpus` in a manifest entry (as deep as it is written)."""
    node, line = entry, _line(entry)
    for part in path.split("."):
        found = _field(node, part)
        if found is None:
            break
        line, node = _line(found[0]), found[1]
    return line


def _duplicate_keys(node: yaml.Node) -> Iterator[tuple[int, str]]:
    """(line, problem) for each key written twice in one mapping, anywhere in the document."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name is not None and name in first:
                yield _line(key), f"{name}: written twice in one mapping (first on line {first[name]})"
            elif name is not None:
                first[name] = _line(key)
            yield from _duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item)


def read_manifest(text: str, settings: Settings) -> list[dict]:
    """The processor specs of a manifest (YAML or JSON), each checked; ManifestError names every problem's line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ManifestError([(mark.line + 1 if mark else None, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    duplicates = list(_duplicate_keys(root)) if root is not None else []
    if duplicates:
        # YAML keeps the last of a repeated key without a word: an allowlist must not guess.
        raise ManifestError(duplicates)
    entries = _field(root, "processors") if root is not None else None
    if not isinstance(data, dict) or not isinstance(data.get("processors"), list) or not isinstance(entries, tuple):
        raise ManifestError([(None, "expected a top-level 'processors:' list")])
    entries_node = entries[1]
    problems: list[tuple[int | None, str]] = [
        (_line_of(root, str(k)), f"{k}: unknown top-level field") for k in sorted(set(data) - {"processors"}, key=str)
    ]
    specs, seen = [], {}
    for index, (entry, node) in enumerate(zip(data["processors"], entries_node.value, strict=True)):
        where = f"processors[{index}]"
        if not isinstance(entry, dict):
            problems.append((_line(node), f"{where}: must be a mapping with a name and an image"))
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            problems.append((_line(node), f"{where}: name: required"))
            continue
        where = f"{where} ({name})"
        if name in seen:
            problems.append((_line(node), f"{where}: name: listed twice (first on line {seen[name]})"))
            continue
        seen[name] = _line(node)
        try:
            specs.append(parse_processor_spec(name, entry, settings))
        except InvalidSpec as exc:
            problems.extend((_line_of(node, path), f"{where}: {path}: {message}") for path, message in exc.errors)
    if problems:
        raise ManifestError(sorted(problems, key=lambda p: p[0] or 0))
    return specs


def plan(specs: list[dict], *, prune: bool = True) -> list[Change]:
    """What applying these specs would do to the registered processors, in manifest order, then (with `prune`,
    the allowlist) the disabling of every enabled processor the manifest does not list."""
    stored = {p.name: p for p in list_processors()}
    changes = []
    for spec in specs:
        current = stored.pop(spec["name"], None)
        if current is None:
            changes.append(Change(ADD, spec["name"], spec["image"], spec=spec))
            continue
        differences = spec_differences(current, spec)
        verb = CHANGE if differences else KEEP
        changes.append(Change(verb, spec["name"], spec["image"], differences, spec))
    if prune:
        changes.extend(Change(DISABLE, p.name, p.image, {"enabled": (True, False)}) for p in stored.values() if p.enabled)
    return changes


def apply(changes: list[Change], actor: str, *, prune: bool = True, progress=None) -> None:
    """Write a plan in one transaction, with an audit record of each add, change and disable.

    The plan is made again inside the transaction: if the registered
    processors changed since it was shown (another apply, a PUT), nothing
    is written and ManifestError says so.
    """
    with database.atomic():
        if is_postgres(database.obj):
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (APPLY_LOCK_KEY,))  # one apply at a time
        if _outline(plan([c.spec for c in changes if c.spec is not None], prune=prune)) != _outline(changes):
            raise ManifestError([(None, "the registered processors changed since this diff was made; nothing written, run apply again")])
        for change in changes:
            if change.verb == DISABLE:
                disable_processor(change.name, actor=actor)
            elif change.verb != KEEP:
                put_processor(change.spec, actor=actor)
            if progress is not None:
                progress(change)


def _outline(changes: list[Change]) -> list[tuple]:
    return [(c.verb, c.name, sorted(c.differences.items(), key=lambda item: item[0])) for c in changes]
