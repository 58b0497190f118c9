"""Tenants and their API keys: made, checked, listed, revoked and rotated.

A key reads `dky_<id>_<secret>`. The id is public (it names the key in
lists and logs); the secret is 256 random bits, shown once when the key is
made, and kept only as its SHA-256, compared in constant time. A slow hash
buys nothing for secrets this long.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from storage import audit
from storage.database import database
from storage.errors import InvalidSpec, NotFound, StorageError
from storage.models import ApiKey, Tenant, utcnow

PREFIX = "dky"


class Scope(StrEnum):
    """What an API key lets its caller do; ADMIN is every scope, and reads the audit log."""

    RUNS_READ = "runs:read"
    RUNS_WRITE = "runs:write"
    SCHEDULES_WRITE = "schedules:write"
    PROCESSORS_WRITE = "processors:write"
    ADMIN = "admin"


TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY_RE = re.compile(rf"^{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")


class KeyRefused(StorageError):
    """A request's key does not let it in; `reason` says why (missing, malformed, unknown, expired, revoked)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Caller:
    """Who a valid key speaks for."""

    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    expires_at: dt.datetime | None = None
    # The tenant's submission rate limit overrides (None: the settings' default).
    rate_per_second: float | None = None
    rate_burst: int | None = None

    def allows(self, scope: str) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(value) -> list[str]:
    """Scopes from a list or a comma-separated string; InvalidSpec naming `scopes` if any is unknown."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise InvalidSpec([("scopes", "must be a list of scope names")])
    scopes = sorted({s.strip() for s in items if s.strip()})
    unknown = [s for s in scopes if s not in list(Scope)]
    if unknown or not scopes:
        what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "none given"
        raise InvalidSpec([("scopes", f"{what}; choose from {', '.join(Scope)}")])
    return scopes


def check_tenant(tenant_id) -> str:
    if not isinstance(tenant_id, str) or not TENANT_RE.match(tenant_id):
        raise InvalidSpec([("tenant", "must be 1-64 characters: lowercase letters, digits, '-', '_'")])
    return tenant_id


def _iso(when: dt.datetime | None) -> str | None:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}" if when else None


def create_key(
    tenant_id: str,
    scopes,
    *,
    actor: str,
    name: str | None = None,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """Make a key for a tenant (made too if new), audited as `actor`; return the row and the key itself, which is not kept."""
    with audit.change(actor, "key.create", "", tenant_id=tenant_id) as entry:
        row, key = _insert_key(tenant_id, scopes, name=name, expires_at=expires_at, now=now)
        entry.target = row.id
        entry.detail = {"scopes": row.scopes, "name": row.name, "expires_at": _iso(row.expires_at)}
    return row, key


def _insert_key(tenant_id: str, scopes, *, name: str | None, expires_at: dt.datetime | None, now: dt.datetime | None) -> tuple[ApiKey, str]:
    check_tenant(tenant_id)
    scopes = parse_scopes(scopes)
    now = now or utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidSpec([("expires_at", "must be in the future")])
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with database.atomic():
        Tenant.insert(id=tenant_id, created_at=now).on_conflict_ignore().execute()
        row = ApiKey.create(
            id=key_id, tenant=tenant_id, name=name, secret_sha256=_digest(secret), scopes=scopes, created_at=now, expires_at=expires_at
        )
    return row, f"{PREFIX}_{key_id}_{secret}"


def authenticate(token: str | None, now: dt.datetime | None = None) -> Caller:
    """The caller a key speaks for; KeyRefused if it is missing, malformed, unknown, expired or revoked."""
    if not token:
        raise KeyRefused("missing", "an API key is required: send 'Authorization: Bearer <key>'")
    match = KEY_RE.match(token)
    if match is None:
        raise KeyRefused("malformed", "this is not a Dockyard API key (dky_<id>_<secret>)")
    key_id, secret = match.groups()
    row = ApiKey.select(ApiKey, Tenant).join(Tenant).where(ApiKey.id == key_id).first()
    # NOTE: compare digests in constant time, and do it even for an unknown id.
    stored = row.secret_sha256 if row is not None else "0" * 64
    if not hmac.compare_digest(stored, _digest(secret)) or row is None:
        raise KeyRefused("unknown", "this API key is not known")
    return _caller(row, now or utcnow())


def caller_of_key(key_id: str, now: dt.datetime | None = None) -> Caller:
    """The caller a key already checked speaks for now (a console session's); KeyRefused if it is gone,
    expired or revoked since."""
    row = ApiKey.select(ApiKey, Tenant).join(Tenant).where(ApiKey.id == key_id).first()
    if row is None:
        raise KeyRefused("unknown", f"API key {key_id} is not known")
    return _caller(row, now or utcnow())


def _caller(row: ApiKey, now: dt.datetime) -> Caller:
    key_id = row.id
    if row.revoked_at is not None:
        raise KeyRefused("revoked", f"API key {key_id} was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise KeyRefused("expired", f"API key {key_id} expired at {row.expires_at:%Y-%m-%dT%H:%M:%SZ}")
    return Caller(
        key_id=key_id,
        tenant_id=row.tenant_id,
        scopes=frozenset(row.scopes or ()),
        expires_at=row.expires_at,
        rate_per_second=row.tenant.rate_per_second,
        rate_burst=row.tenant.rate_burst,
    )


def update_tenant(tenant_id: str, action: str, *, actor: str, names: dict[str, str] | None = None, **columns) -> Tenant:
    """Set some of a tenant's columns, audited as `actor` under `action` with {name: [old, new]} of each column that
    changed (`names` renames a column in the record); nothing is recorded if nothing changed. NotFound if no such tenant."""
    with audit.change(actor, action, tenant_id, tenant_id=tenant_id) as entry:
        before = Tenant.get_or_none(Tenant.id == tenant_id)
        if before is None:
            raise NotFound("tenant", tenant_id)
        Tenant.update(**columns).where(Tenant.id == tenant_id).execute()
        label = (names or {}).get
        entry.detail = audit.differences({label(k, k): getattr(before, k) for k in columns}, {label(k, k): v for k, v in columns.items()})
        entry.skip = not entry.detail
    return Tenant.get_by_id(tenant_id)


def list_keys(tenant_id: str | None = None) -> list[ApiKey]:
    query = ApiKey.select()
    if tenant_id is not None:
        query = query.where(ApiKey.tenant == tenant_id)
    return list(query.order_by(ApiKey.tenant, ApiKey.created_at))


def get_key(key_id: str) -> ApiKey:
    row = ApiKey.get_or_none(ApiKey.id == key_id)
    if row is None:
        raise NotFound("API key", key_id)
    return row


def revoke_key(key_id: str, *, actor: str, now: dt.datetime | None = None) -> ApiKey:
    """Revoke a key, audited as `actor` (again is harmless, and not recorded); NotFound if there is no such key."""
    with audit.change(actor, "key.revoke", key_id) as entry:
        entry.tenant_id = get_key(key_id).tenant_id
        entry.skip = not _revoke(key_id, now or utcnow())
    return get_key(key_id)


def _revoke(key_id: str, now: dt.datetime) -> bool:
    return ApiKey.update(revoked_at=now).where((ApiKey.id == key_id) & ApiKey.revoked_at.is_null()).execute() == 1


def rotate_key(key_id: str, *, actor: str, now: dt.datetime | None = None) -> tuple[ApiKey, str]:
    """Replace a key by a new one with the same tenant, scopes, name and expiry, audited as `actor`; the old one is revoked."""
    now = now or utcnow()
    with audit.change(actor, "key.rotate", key_id) as entry:
        old = get_key(key_id)
        entry.tenant_id = old.tenant_id
        if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
            raise InvalidSpec([("key", f"API key {key_id} is revoked or expired; create a new one")])
        new, secret = _insert_key(old.tenant_id, old.scopes, name=old.name, expires_at=old.expires_at, now=now)
        _revoke(key_id, now)
        entry.detail = {"replaced_by": new.id}
    return new, secret
