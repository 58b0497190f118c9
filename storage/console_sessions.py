"""Web console sessions: opened by signing in with an API key, kept server-side, closed by signing out.

The browser holds only a random token (its cookie); the database keeps the
token's SHA-256, the key it speaks for and the session's CSRF token. Each
use checks the key again (`api_keys.caller_of_key`), so revoking a key ends
its sessions. A session lasts `SESSION_SECONDS`, never beyond its key's expiry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from storage.api_keys import Caller, KeyRefused, caller_of_key
from storage.models import ConsoleSession, utcnow

SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    """A signed-in console user: who they are, the token their forms carry, and when the session ends."""

    caller: Caller
    csrf_token: str
    expires_at: dt.datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(caller: Caller, *, now: dt.datetime | None = None) -> tuple[str, Session]:
    """A new session for a caller whose key was just checked: (the cookie's token, the session).
    Expired sessions are deleted on the way."""
    now = now or utcnow()
    expires_at = now + dt.timedelta(seconds=SESSION_SECONDS)
    if caller.expires_at is not None:
        expires_at = min(expires_at, caller.expires_at)
    token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    ConsoleSession.delete().where(ConsoleSession.expires_at <= now).execute()
    ConsoleSession.create(token_sha256=_digest(token), key_id=caller.key_id, csrf_token=csrf_token, created_at=now, expires_at=expires_at)
    return token, Session(caller, csrf_token, expires_at)


def session_of(token: str | None, *, now: dt.datetime | None = None) -> Session | None:
    """The session a cookie's token opens, or None: unknown, expired, or its key revoked or expired since."""
    if not token:
        return None
    now = now or utcnow()
    row = ConsoleSession.get_or_none(ConsoleSession.token_sha256 == _digest(token))
    if row is None or row.expires_at <= now:
        return None
    try:
        caller = caller_of_key(row.key_id, now)
    except KeyRefused:
        return None
    return Session(caller, row.csrf_token, row.expires_at)


def close_session(token: str | None) -> None:
    """End a session (signing out); nothing happens for an unknown token."""
    if token:
        ConsoleSession.delete().where(ConsoleSession.token_sha256 == _digest(token)).execute()
