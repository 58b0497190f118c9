"""Only storage/run_states.py writes a run's state (docs/architecture.md, "Where each rule lives").

Read from the source, not run: every module of the project is parsed and
each way Peewee or SQL could set `runs.state` is looked for.
"""

from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("actors", "web", "scheduling", "storage", "cli", "bench")
THE_WRITER = ROOT / "storage" / "run_states.py"
# A benchmark that seeds a finished history with one INSERT ... SELECT per table (a million runs in
# minutes, not hours) writes rows, not state changes: nothing reads them as runs moving.
SEEDERS = {ROOT / "bench" / "history.py"}
WRITES = {"update", "create", "insert", "insert_many", "replace", "get_or_create"}
RAW_SQL = re.compile(r"(UPDATE\s+runs\b.*\bSET\b.*\bstate\b|INSERT\s+INTO\s+runs\b)", re.IGNORECASE | re.DOTALL)


def state_writes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
            target = node.func.value
            if isinstance(target, ast.Name) and target.id == "Run":
                if any(k.arg == "state" for k in node.keywords):
                    found.append((node.lineno, f"Run.{node.func.attr}(state=...)"))
                for arg in node.args:
                    if isinstance(arg, ast.Dict) and any(_names_state(k) for k in arg.keys if k is not None):
                        found.append((node.lineno, f"Run.{node.func.attr}({{state: ...}})"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Run":
            if any(k.arg == "state" for k in node.keywords):
                found.append((node.lineno, "Run(state=...)"))
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "state":
                    found.append((node.lineno, "<object>.state = ..."))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_SQL.search(node.value):
            found.append((node.lineno, "SQL writing the runs table"))
    return found


def _names_state(key: ast.expr) -> bool:
    return (isinstance(key, ast.Constant) and key.value == "state") or (isinstance(key, ast.Attribute) and key.attr == "state")


def test_no_module_but_run_states_writes_a_runs_state():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == THE_WRITER or path in SEEDERS:
                continue
            for line, what in state_writes(ast.parse(path.read_text(), filename=str(path))):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not offenders, "write a run's state through storage.run_states.transition:\n" + "\n".join(offenders)


def test_the_check_sees_each_way_of_writing_state():
    """The check above can fail: each of these is caught."""
    samples = [
        "Run.update(state='failed').where(Run.id == x).execute()",
        "Run.update({Run.state: 'failed'}).execute()",
        "Run.insert(id=x, state='queued').execute()",
        "run.state = 'failed'; run.save()",
        "Run(id=x, state='queued').save(force_insert=True)",
        "db.execute_sql('UPDATE runs SET state = %s WHERE id = %s', ('failed', x))",
    ]
    for sample in samples:
        assert state_writes(ast.parse(sample)), sample
    assert state_writes(ast.parse(THE_WRITER.read_text()))  # the one writer is seen writing
    assert not state_writes(ast.parse("Run.update(published_at=now).execute()"))
