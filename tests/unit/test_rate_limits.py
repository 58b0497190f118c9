"""Per-tenant submission rate limits: the token bucket with a controlled clock, the 429, the CLI."""

from __future__ import annotations

import datetime as dt

import falcon.testing
import pytest

from cli.main import main
from storage.api_keys import create_key
from storage.models import RateBucket
from storage.rate_limits import LEASE_SECONDS, _Held, batch_size, set_rate_limit, take_token
from tests.conftest import key_headers
from web.app import create_app

T0 = dt.datetime(2026, 1, 1, 12)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_a_bucket_allows_its_burst_then_its_rate(sqlite_db):
    create_key("acme", "admin", actor="test")
    assert [take_token("acme", 2.0, 3, now=at(0)) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert take_token("acme", 2.0, 3, now=at(0)) == pytest.approx(0.5)  # empty: one token every 0.5 s
    assert take_token("acme", 2.0, 3, now=at(0.25)) == pytest.approx(0.25)
    assert take_token("acme", 2.0, 3, now=at(0.5)) == 0.0
    # A long quiet spell refills it to the burst, no further.
    assert [take_token("acme", 2.0, 3, now=at(100)) for _ in range(4)][-1] == pytest.approx(0.5)
    # Tenants have buckets of their own.
    assert take_token("other", 2.0, 3, now=at(100)) == 0.0


def test_a_process_takes_tokens_in_batches_and_hands_them_out_itself(sqlite_db):
    create_key("acme", "admin", actor="test")
    assert batch_size(100.0, 50) == 5  # a twentieth of a second of the rate, at most a tenth of the burst
    assert (batch_size(100.0, 20), batch_size(2.0, 100), batch_size(1000.0, 5)) == (2, 1, 1)

    def level():
        return RateBucket.get_by_id("acme").tokens

    assert take_token("acme", 100.0, 50, now=at(0)) == 0.0
    assert level() == 45  # five taken from the shared bucket: one used, four held by this process
    assert [take_token("acme", 100.0, 50, now=at(0)) for _ in range(4)] == [0.0] * 4
    assert level() == 45  # handed out without the database
    assert take_token("acme", 100.0, 50, now=at(0)) == 0.0
    assert level() == 40
    # Near empty, a take asks for one token rather than a batch.
    RateBucket.update(tokens=2.5).execute()
    assert [take_token("acme", 100.0, 50, now=at(0)) for _ in range(4)] == [0.0] * 4  # the four held
    assert [take_token("acme", 100.0, 50, now=at(0)) for _ in range(2)] == [0.0, 0.0]  # one at a time
    assert level() == 0.5
    assert take_token("acme", 100.0, 50, now=at(0)) == pytest.approx(0.005)  # half a token short at 100/s


def test_held_tokens_lapse_and_are_kept_apart_by_limit():
    clock = [0.0]
    held = _Held(clock=lambda: clock[0])
    held.add(("acme", 100.0, 50), 2)
    assert not held.take(("acme", 10.0, 50))  # another limit: none held
    assert held.take(("acme", 100.0, 50))
    clock[0] = LEASE_SECONDS  # not used in time: dropped
    assert not held.take(("acme", 100.0, 50))
    held.add(("acme", 100.0, 50), 1)
    assert held.take(("acme", 100.0, 50)) and not held.take(("acme", 100.0, 50))


@pytest.fixture
def app(settings, sqlite_db, dispatcher):
    from tests.storage_cases import make_processor

    make_processor("echo")
    return falcon.testing.TestClient(
        create_app(settings.replace(rate_limit_per_second=0.5, rate_limit_burst=2), db=sqlite_db, dispatcher=dispatcher)
    )


def submit(app, headers):
    return app.simulate_post("/v1/runs", json={"processor": "echo"}, headers=headers)


def test_past_its_burst_a_tenant_gets_429_with_retry_after(app):
    acme, other = key_headers("acme"), key_headers("other")
    assert [submit(app, acme).status_code for _ in range(2)] == [201, 201]
    refused = submit(app, acme)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2" and "0.5 runs per second (bursts of 2)" in refused.json["detail"]
    assert submit(app, other).status_code == 201  # another tenant's bucket is full
    assert app.simulate_get("/v1/runs", headers=acme).status_code == 200  # reads are not limited


def test_a_tenants_own_limit_overrides_the_default(app):
    headers = key_headers("acme")
    set_rate_limit("acme", 0, None, actor="test")  # no limit
    assert all(submit(app, headers).status_code == 201 for _ in range(5))
    set_rate_limit("acme", 0.5, 1, actor="test")
    headers = key_headers("acme")  # a new key: the old one's tenant limits are cached for 5 s
    assert [submit(app, headers).status_code for _ in range(2)] == [201, 429]


def test_tenants_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    assert main(["migrate"]) == 0
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "runs:write", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["tenants", "set-limit", "acme", "--rate-per-second", "5", "--burst", "20"]) == 0
    assert capsys.readouterr().out.strip() == "acme: 5/s, burst 20 (its own)"
    assert main(["tenants", "list"]) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines()] == [
        ["acme", "5/s,", "burst", "20", "(its", "own)", "no", "quota"],
        ["default", "50/s,", "burst", "100", "no", "quota"],
    ]
    assert main(["tenants", "set-limit", "acme", "--default"]) == 0
    assert capsys.readouterr().out.strip() == "acme: 50/s, burst 100"
    assert main(["tenants", "set-limit", "acme"]) == 2
    assert main(["tenants", "set-limit", "acme", "--burst", "0"]) == 2
    assert "--burst: must be 1 or more" in capsys.readouterr().err
    assert main(["tenants", "set-limit", "nobody", "--burst", "5"]) == 3  # not found
    capsys.readouterr()


def test_tenants_set_quota(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("DOCKYARD_TENANT_MAX_RUNNING", "8")
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["tenants", "set-quota", "default", "--max-running", "2"]) == 0
    assert capsys.readouterr().out.startswith("default: at most 2 running (its own); workers apply it within 5 s")
    assert main(["tenants", "list"]) == 0
    assert capsys.readouterr().out.split()[-6:] == ["at", "most", "2", "running", "(its", "own)"]
    assert main(["tenants", "set-quota", "default", "--default"]) == 0
    assert capsys.readouterr().out.startswith("default: at most 8 running;")
    assert main(["tenants", "set-quota", "default", "--max-running", "-1"]) == 2
    assert "--max-running: must be 0 (no quota) or more" in capsys.readouterr().err
    assert main(["tenants", "set-quota", "nobody", "--max-running", "1"]) == 3  # not found
    assert "tenant" in capsys.readouterr().err
