"""API keys: made, checked, cached, revoked, rotated; and `dockyard keys ...`."""

from __future__ import annotations

import datetime as dt

import pytest

from cli.main import main
from storage.api_keys import KeyRefused, authenticate, create_key, revoke_key, rotate_key
from storage.errors import InvalidSpec
from storage.models import ApiKey, Tenant, utcnow
from web.auth import KeyCache


def refusal(token) -> str:
    with pytest.raises(KeyRefused) as caught:
        authenticate(token)
    return caught.value.reason


def test_a_key_is_shown_once_and_stored_only_hashed(sqlite_db):
    row, key = create_key("acme", "runs:read,runs:write", name="ci", actor="test")
    assert key.startswith(f"dky_{row.id}_") and len(key) == 4 + 12 + 1 + 43
    stored = ApiKey.get_by_id(row.id)
    assert key.split("_", 2)[2] not in (stored.secret_sha256, stored.name) and len(stored.secret_sha256) == 64
    caller = authenticate(key)
    assert (caller.tenant_id, caller.scopes) == ("acme", frozenset({"runs:read", "runs:write"}))
    assert caller.allows("runs:write") and not caller.allows("processors:write")
    assert Tenant.get_by_id("acme")  # made by its first key


def test_refusals_say_why(sqlite_db):
    row, key = create_key("acme", "admin", actor="test")
    assert refusal(None) == "missing"
    assert refusal("Basic abc") == "malformed"
    assert refusal(key[:-1] + ("A" if key[-1] != "A" else "B")) == "unknown"  # right id, wrong secret
    assert refusal(f"dky_{'0' * 12}_{key.split('_', 2)[2]}") == "unknown"
    revoke_key(row.id, actor="test")
    assert refusal(key) == "revoked"
    _, old = create_key("acme", "admin", expires_at=utcnow() - dt.timedelta(seconds=1), now=utcnow() - dt.timedelta(days=1), actor="test")
    assert refusal(old) == "expired"


def test_admin_allows_every_scope(sqlite_db):
    _, key = create_key("acme", ["admin"], actor="test")
    caller = authenticate(key)
    assert all(caller.allows(s) for s in ("runs:read", "runs:write", "schedules:write", "processors:write"))


@pytest.mark.parametrize(
    ("tenant", "scopes", "field"),
    [("acme", "runs:delete", "scopes"), ("acme", "", "scopes"), ("Acme Corp", "admin", "tenant"), ("", "admin", "tenant")],
)
def test_bad_keys_are_refused_naming_the_field(sqlite_db, tenant, scopes, field):
    with pytest.raises(InvalidSpec) as caught:
        create_key(tenant, scopes, actor="test")
    assert caught.value.errors[0][0] == field


def test_rotation_replaces_the_key_and_revokes_the_old_one(sqlite_db):
    old_row, old = create_key("acme", "runs:read", name="ci", expires_at=utcnow() + dt.timedelta(days=30), actor="test")
    new_row, new = rotate_key(old_row.id, actor="test")
    assert refusal(old) == "revoked"
    assert authenticate(new).scopes == frozenset({"runs:read"})
    assert (new_row.tenant_id, new_row.name, new_row.expires_at) == ("acme", "ci", old_row.expires_at)
    with pytest.raises(InvalidSpec, match="revoked or expired"):
        rotate_key(old_row.id, actor="test")


def test_the_cache_keeps_a_checked_key_for_its_max_age_only(sqlite_db):
    now = [0.0]
    cache = KeyCache(max_age_seconds=5, clock=lambda: now[0])
    row, key = create_key("acme", "admin", actor="test")
    assert cache.caller(key).tenant_id == "acme"
    revoke_key(row.id, actor="test")
    now[0] = 4.9
    assert cache.caller(key).tenant_id == "acme"  # within the cache's age: still trusted
    now[0] = 5.1
    with pytest.raises(KeyRefused):
        cache.caller(key)


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    assert main(["migrate"]) == 0


def test_keys_commands(cli_db, capsys):
    capsys.readouterr()
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "runs:read,runs:write", "--name", "ci", "--quiet"]) == 0
    key = capsys.readouterr().out.strip()
    key_id = key.split("_")[1]
    assert authenticate(key).tenant_id == "acme"

    assert main(["keys", "create", "--tenant", "acme", "--scopes", "admin", "--expires-in-days", "30"]) == 0
    shown = capsys.readouterr().out
    assert "only time the key is shown" in shown and "tenant   acme" in shown

    assert main(["keys", "rotate", key_id]) == 0
    rotated = capsys.readouterr().out
    new_key = next(line for line in rotated.splitlines() if line.startswith("dky_"))
    assert authenticate(new_key).scopes == frozenset({"runs:read", "runs:write"})

    assert main(["keys", "list", "--tenant", "acme"]) == 0
    listing = capsys.readouterr().out
    assert f"{key_id} " in listing and "revoked" in listing and listing.count("active") == 2
    assert "dky_" not in listing  # never a secret

    assert main(["keys", "revoke", new_key.split("_")[1]]) == 0
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(KeyRefused):
        authenticate(new_key)


def test_keys_commands_name_what_is_wrong(cli_db, capsys):
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "runs:delete"]) == 2
    assert "scopes: unknown 'runs:delete'" in capsys.readouterr().err
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "admin", "--expires-in-days", "0"]) == 2
    assert "--expires-in-days" in capsys.readouterr().err
    assert main(["keys", "revoke", "nope"]) == 3  # not found
    assert "not found" in capsys.readouterr().err
