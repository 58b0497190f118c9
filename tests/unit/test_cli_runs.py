"""`dockyard runs ...` and the exit statuses, against the API served on loopback (SQLite, dramatiq's StubBroker);
runs are moved along by hand, as a worker would."""

from __future__ import annotations

import json
import threading
import time

import pytest

from cli.main import main
from storage import run_states
from storage.models import RunLogChunk
from storage.run_states import RunState
from tests.unit.test_cli_schedules import api  # noqa: F401 (the fixture: the API on loopback)


@pytest.fixture(autouse=True)
def api_key(sqlite_db, monkeypatch):
    from storage.api_keys import create_key

    _, key = create_key("default", "runs:read,runs:write", name="cli", actor="test")
    monkeypatch.setenv("DOCKYARD_API_KEY", key)
    return key


def cli(api, capsys, *args) -> tuple[int, str, str]:  # noqa: F811
    code = main(["runs", "--api-url", api, *args])
    out, err = capsys.readouterr()
    return code, out, err


def submitted(api, capsys, *args) -> dict:  # noqa: F811
    code, out, _ = cli(api, capsys, "submit", "echo", "--json", *args)
    assert code == 0, out
    return json.loads(out)


def finish(run_id: str, state: RunState, delay: float = 0.0, output: str | None = None) -> threading.Thread:
    """Move a run to running, then (after `delay`) to `state`, as a worker does."""

    def move():
        run_states.transition(run_id, RunState.RUNNING, attempts=1)
        if output:
            RunLogChunk.create(run=run_id, attempt=1, data=output)
        time.sleep(delay)
        run_states.transition(run_id, state, **({"exit_code": 0} if state == RunState.SUCCEEDED else {"exit_code": 3}))

    thread = threading.Thread(target=move)
    thread.start()
    return thread


def test_list_prints_a_table_filters_and_pages(api, capsys):  # noqa: F811
    ids = [submitted(api, capsys, "--payload", json.dumps({"i": i}))["id"] for i in range(3)]
    finish(ids[0], RunState.SUCCEEDED).join()
    code, out, _ = cli(api, capsys, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["ID", "STATE", "PRIORITY", "PROCESSOR"]
    assert [r.split()[0] for r in rows] == ids[::-1]  # newest first
    code, out, _ = cli(api, capsys, "list", "--state", "succeeded", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)["items"]] == [ids[0]]
    code, out, _ = cli(api, capsys, "list", "--limit", "2")
    assert out.splitlines()[-1].startswith("more: --cursor ")
    cursor = out.splitlines()[-1].split()[-1]
    code, out, _ = cli(api, capsys, "list", "--limit", "2", "--cursor", cursor)
    assert [r.split()[0] for r in out.splitlines()[1:]] == [ids[0]]
    code, out, _ = cli(api, capsys, "list", "--all", "--json")
    assert len(json.loads(out)["items"]) == 3 and json.loads(out)["next_cursor"] is None


def test_submit_wait_follows_the_run_and_exits_by_how_it_ended(api, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr("cli.runs.POLL_SECONDS", 0.05)
    original = main

    def submit_and_end(state: RunState, *flags: str) -> tuple[int, str]:
        def end_it():
            from storage.models import Run

            run = None
            while run is None:
                run = Run.select().where(Run.state == RunState.QUEUED).first()
                time.sleep(0.02)
            finish(run.id, state, delay=0.2).join()

        mover = threading.Thread(target=end_it)
        mover.start()
        code = original(["runs", "--api-url", api, "submit", "echo", "--wait", *flags])
        mover.join()
        return code, capsys.readouterr().out

    code, out = submit_and_end(RunState.SUCCEEDED)
    assert code == 0
    lines = out.splitlines()
    assert "queued (attempt 0)" in lines[0] and any("running (attempt 1)" in line for line in lines)
    assert "state:      succeeded" in out  # the ended run, described
    code, out = submit_and_end(RunState.FAILED, "--json")
    assert code == 1
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["state"] == "queued" and events[-1]["state"] == "failed" and len(events) >= 3


def test_logs_follow_streams_to_the_end_and_exits_by_how_it_ended(api, capsys):  # noqa: F811
    run = submitted(api, capsys)
    mover = finish(run["id"], RunState.FAILED, delay=0.5, output="hello from the run\n")
    code, out, err = cli(api, capsys, "logs", run["id"], "--follow")
    mover.join()
    assert "hello from the run" in out
    assert code == 1 and f"run {run['id']} failed" in err


def test_exit_statuses(api, capsys):  # noqa: F811
    code, _, err = cli(api, capsys, "get", "f" * 32)
    assert code == 3 and "404" in err
    code, _, err = cli(api, capsys, "submit", "nope")
    assert code == 3 and "nope" in err  # no such processor
    code, _, err = cli(api, capsys, "submit", "echo", "--timeout-seconds", "999999")
    assert code == 2 and "timeout_seconds" in err, err  # 422: the field named
    run = submitted(api, capsys)
    finish(run["id"], RunState.SUCCEEDED).join()
    code, _, err = cli(api, capsys, "cancel", run["id"])
    assert code == 1 and "409" in err  # ended: the API refuses
    code, out, _ = cli(api, capsys, "get", run["id"])
    assert code == 0 and "state:      succeeded" in out and "exit code:  0" in out
    with pytest.raises(SystemExit) as usage:
        cli(api, capsys, "list", "--state", "sleeping")
    assert usage.value.code == 2
    assert main(["runs", "--api-url", "http://127.0.0.1:9", "get", run["id"]]) == 4


def test_list_since_a_time(api, capsys):  # noqa: F811
    import datetime as dt

    from storage.models import Run

    old, new = submitted(api, capsys)["id"], submitted(api, capsys)["id"]
    Run.update(created_at=dt.datetime(2026, 1, 1, 12)).where(Run.id == old).execute()
    code, out, _ = cli(api, capsys, "list", "--since", "2026-06-01T00:00:00+02:00", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)["items"]] == [new]
    code, out, _ = cli(api, capsys, "list", "--since", "2026-01-01T12:00:00Z", "--json")
    assert [r["id"] for r in json.loads(out)["items"]] == [new, old]  # at or after


def test_since_takes_a_time_ago_or_an_iso_time_and_names_what_is_neither():
    import argparse
    import datetime as dt

    from cli.parsing import since_time

    now = dt.datetime(2026, 12, 2, 12, 0, 0)
    assert since_time("90s", now) == dt.datetime(2026, 12, 2, 11, 58, 30)
    assert since_time("15m", now) == dt.datetime(2026, 12, 2, 11, 45)
    assert since_time("1H", now) == dt.datetime(2026, 12, 2, 11, 0)
    assert since_time("7d", now) == dt.datetime(2026, 11, 25, 12, 0)
    assert since_time("2026-12-02T13:00:00+01:00") == dt.datetime(2026, 12, 2, 12, 0)
    with pytest.raises(argparse.ArgumentTypeError, match="too long ago: '99999999d'"):
        since_time("99999999d", now)
    for wrong in ("1w", "-5m", "m", "yesterday"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"nor an ISO 8601 time: '{wrong}'"):
            since_time(wrong)


def test_list_since_a_time_ago(api, capsys):  # noqa: F811
    import datetime as dt

    from storage.models import Run

    old, new = submitted(api, capsys)["id"], submitted(api, capsys)["id"]
    Run.update(created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=2)).where(Run.id == old).execute()
    code, out, _ = cli(api, capsys, "list", "--since", "1h", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)["items"]] == [new]
    code, out, _ = cli(api, capsys, "list", "--since", "3h", "--json")
    assert [r["id"] for r in json.loads(out)["items"]] == [new, old]


def test_list_quiet_prints_only_ids_for_scripts(api, capsys):  # noqa: F811
    first, second = submitted(api, capsys)["id"], submitted(api, capsys)["id"]
    code, out, _ = cli(api, capsys, "list", "-q")
    assert code == 0 and out.splitlines() == [second, first]
    code, out, _ = cli(api, capsys, "list", "--quiet", "--limit", "1")
    assert out == f"{second}\n"  # no header, no "more:" line
    code, out, _ = cli(api, capsys, "list", "-q", "--state", "failed")
    assert (code, out) == (0, "")
