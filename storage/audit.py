"""The audit log: who changed a key, a processor, a schedule or a tenant's limits, what, and when.

A change and its record are written in one transaction (`change`): there is
no change without its record, and no record of a change that did not happen.
Records of processors (global) have no tenant; the rest belong to one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from storage.database import database
from storage.errors import InvalidSpec
from storage.models import AuditEvent, utcnow

MAX_PAGE = 500


def cli_actor() -> str:
    """Who runs an admin command: the OS user and host (admin commands use no API key)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def key_actor(key_id: str) -> str:
    return f"key:{key_id}"


@dataclass
class Entry:
    """One record being made; `change` writes it when its block ends without an error."""

    actor: str
    action: str
    target: str
    tenant_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    skip: bool = False  # set by a block that found nothing to change


@contextlib.contextmanager
def change(actor: str, action: str, target: str, *, tenant_id: str | None = None, detail: dict | None = None) -> Iterator[Entry]:
    """Make a change inside this block; its record is written in the same transaction.

    The block may refine the entry (the action once it knows it created
    rather than replaced, the detail once it knows what differed).
    """
    entry = Entry(actor, action, target, tenant_id, dict(detail or {}))
    with database.atomic():
        yield entry
        if not entry.skip:
            record(entry)


def record(entry: Entry, at: dt.datetime | None = None) -> AuditEvent:
    return AuditEvent.create(
        at=at or utcnow(),
        actor=entry.actor[:128],
        tenant_id=entry.tenant_id,
        action=entry.action,
        target=entry.target[:128],
        detail=entry.detail,
    )


def list_events(
    tenant_id: str | None,
    *,
    action: str | None = None,
    target: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """Newest first: the tenant's records and the global ones (all of them for tenant None); and the next cursor.

    `action` matches a whole action (`processor.change`) or a family (`processor`).
    """
    query = AuditEvent.select()
    if tenant_id is not None:
        query = query.where((AuditEvent.tenant_id == tenant_id) | AuditEvent.tenant_id.is_null())
    if action:
        query = query.where((AuditEvent.action == action) | AuditEvent.action.startswith(f"{action}."))
    if target:
        query = query.where(AuditEvent.target == target)
    if cursor:
        if not re.fullmatch(r"[0-9]{1,18}", cursor):
            raise InvalidSpec([("cursor", "is not a cursor this API returned")])
        query = query.where(AuditEvent.id < int(cursor))
    rows = list(query.order_by(AuditEvent.id.desc()).limit(limit + 1))
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


# Fields whose values the log never copies (they may hold secrets): only that they changed.
REDACTED = ("env", "payload")


def redacted(detail: dict, mark: str = "(changed)") -> dict:
    """`detail` with the value of each field that may hold secrets replaced by `mark`."""
    return {k: mark if k in REDACTED and v is not None else v for k, v in detail.items()}


def differences(before: dict, after: dict) -> dict[str, list]:
    """{field: [old, new]} for each top-level field that differs (nested objects compared whole)."""
    return {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}
