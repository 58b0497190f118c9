"""`dockyard processors apply`: the manifest is the allowlist (added, changed, disabled, a diff, --dry-run)."""

from __future__ import annotations

import pytest

from cli.main import main
from settings import Settings
from storage.errors import NotFound
from storage.manifests import ManifestError, read_manifest
from storage.models import AuditEvent
from storage.processors import get_processor
from tests.storage_cases import PIN

OTHER_PIN = PIN.replace("a" * 64, "b" * 64)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    assert main(["migrate"]) == 0
    return tmp_path


def apply(env, capsys, text: str, *flags: str) -> tuple[int, str, str]:
    path = env / "manifest.yaml"
    path.write_text(text)
    code = main(["processors", "apply", str(path), *flags])
    out, err = capsys.readouterr()
    return code, out, err


def manifest(*entries: str) -> str:
    return "processors:\n" + "".join(entries)


def entry(name: str, image: str = PIN, extra: str = "") -> str:
    return f"  - name: {name}\n    image: '{image}'\n{extra}"


def test_apply_without_pruning_adds_and_changes_but_disables_nothing(env, capsys):
    apply(env, capsys, manifest(entry("wc"), entry("echo")))  # wc: registered by a user, not in the samples
    code, out, _ = apply(env, capsys, manifest(entry("echo", OTHER_PIN), entry("sleep")), "--no-prune")
    assert code == 0 and out.splitlines()[-1] == "1 added, 1 changed, 0 disabled, 0 unchanged", out
    assert get_processor("wc").enabled and get_processor("echo").image == OTHER_PIN
    assert not [line for line in out.splitlines() if line.startswith("disable")]


def test_apply_adds_changes_and_disables_with_a_diff_and_an_audit_record_each(env, capsys):
    capsys.readouterr()
    code, out, _ = apply(env, capsys, manifest(entry("echo", extra="    timeout_seconds: 20\n"), entry("sleep"), entry("old")))
    assert code == 0
    assert out.splitlines()[-1] == "3 added, 0 changed, 0 disabled, 0 unchanged"
    assert "add      echo" in out and PIN in out

    text = manifest(entry("echo", OTHER_PIN, "    timeout_seconds: 25\n    resources: {memory_mb: 64}\n"), entry("sleep"))
    code, out, _ = apply(env, capsys, text, "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "change   echo                 " + OTHER_PIN
    assert f'           image: "{PIN}" -> "{OTHER_PIN}"' in lines
    assert "           timeout_seconds: 20 -> 25" in lines and "           resources.memory_mb: 256 -> 64" in lines
    assert "keep     sleep" in lines and f"disable  old                  {PIN}" in lines
    assert lines[-1] == "0 added, 1 changed, 1 disabled, 1 unchanged (dry run: nothing written)"
    assert get_processor("echo").image == PIN and get_processor("old").enabled  # nothing written

    code, out, _ = apply(env, capsys, text)
    assert code == 0 and out.splitlines()[-1] == "0 added, 1 changed, 1 disabled, 1 unchanged"
    echo = get_processor("echo")
    assert (echo.image, echo.timeout_seconds, echo.memory_mb) == (OTHER_PIN, 25, 64)
    assert get_processor("old").enabled is False  # disabled, not deleted: its runs keep their processor

    records = list(AuditEvent.select().order_by(AuditEvent.id))
    assert [(r.action, r.target) for r in records] == [
        ("processor.add", "echo"),
        ("processor.add", "sleep"),
        ("processor.add", "old"),
        ("processor.change", "echo"),
        ("processor.disable", "old"),
    ]
    assert all(r.actor.startswith("cli:") and r.tenant_id is None for r in records)
    assert records[3].detail["timeout_seconds"] == [20, 25] and records[4].detail == {"enabled": [True, False]}

    # listed again: enabled again (a change), and applying the same file twice changes nothing
    relisted = text + entry("old")
    assert apply(env, capsys, relisted)[1].splitlines()[-1] == "0 added, 1 changed, 0 disabled, 2 unchanged"
    assert get_processor("old").enabled is True
    assert apply(env, capsys, relisted)[1].splitlines()[-1] == "0 added, 0 changed, 0 disabled, 3 unchanged"


def test_an_unpinned_image_is_rejected_naming_its_line_and_nothing_is_applied(env, capsys):
    code, _, err = apply(env, capsys, manifest(entry("ok"), "  - name: bad\n    image: busybox:latest\n"))
    assert code == 2
    assert err.startswith(f"dockyard: {env}/manifest.yaml:5: processors[1] (bad): image: 'busybox:latest' is not pinned by digest")
    with pytest.raises(NotFound):
        get_processor("ok")


def test_every_problem_is_named_with_its_line():
    text = (
        "processors:\n"  # 1
        f"  - name: echo\n    image: '{PIN}'\n"  # 2-3
        f"  - name: big\n    image: '{PIN}'\n    resources:\n      pids: 16\n      cpus: 100\n"  # 4-8
        f"  - name: echo\n    image: '{PIN}'\n"  # 9-10
        "  - just a string\n"  # 11
        f"  - image: '{PIN}'\n"  # 12
        f"  - name: slow\n    image: '{PIN}'\n    retry: {{max_attempts: 0}}\n"  # 13-15
        "extra: true\n"  # 16
    )
    with pytest.raises(ManifestError) as caught:
        read_manifest(text, Settings())
    assert caught.value.problems == [
        (8, "processors[1] (big): resources.cpus: must be a number from 0.01 to 64"),
        (9, "processors[2] (echo): name: listed twice (first on line 2)"),
        (11, "processors[3]: must be a mapping with a name and an image"),
        (12, "processors[4]: name: required"),
        (15, "processors[5] (slow): retry.max_attempts: must be an integer from 1 to 100"),
        (16, "extra: unknown top-level field"),
    ]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("processors:\n  - name: [\n", (3, "not valid YAML: expected the node content, but found '<stream end>'")),
        ("items: []\n", (None, "expected a top-level 'processors:' list")),
        ("processors: []\nprocessors: []\n", (2, "processors: written twice in one mapping (first on line 1)")),
        (
            f"processors:\n  - name: a\n    image: '{PIN}'\n    image: '{OTHER_PIN}'\n",
            (4, "image: written twice in one mapping (first on line 3)"),
        ),
        ("processors: []\n1: x\n", (2, "1: unknown top-level field")),
        ("", (None, "expected a top-level 'processors:' list")),
    ],
)
def test_a_manifest_that_is_not_a_processor_list_is_refused(text, problem):
    with pytest.raises(ManifestError) as caught:
        read_manifest(text, Settings())
    assert caught.value.problems == [problem]


def test_an_unreadable_file_is_named(env, capsys):
    assert main(["processors", "apply", str(env / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_apply_refuses_a_diff_the_database_moved_away_from(env, capsys):
    """Found in review: a PUT between the diff and the write was overwritten with a stale record."""
    from settings import Settings
    from storage import manifests
    from storage.processors import parse_processor_spec, put_processor

    apply(env, capsys, manifest(entry("echo")))
    changes = manifests.plan(manifests.read_manifest(manifest(entry("echo", extra="    timeout_seconds: 9\n")), Settings()))
    put_processor(parse_processor_spec("echo", {"image": PIN, "timeout_seconds": 7}, Settings()), actor="test")  # meanwhile
    with pytest.raises(ManifestError, match="changed since this diff was made"):
        manifests.apply(changes, "cli:test")
    assert get_processor("echo").timeout_seconds == 7
    assert AuditEvent.select().where(AuditEvent.actor == "cli:test").count() == 0  # the PUT meanwhile is the only change


def test_env_values_are_never_copied_into_the_audit_log(env, capsys):
    apply(env, capsys, manifest(entry("echo", extra="    env: {TOKEN: old-secret}\n")))
    apply(env, capsys, manifest(entry("echo", extra="    env: {TOKEN: new-secret}\n")))
    [record] = AuditEvent.select().where(AuditEvent.action == "processor.change")
    assert record.detail == {"env": "(changed)"}
