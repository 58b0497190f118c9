"""The storage package's error tree; web/ maps it to HTTP once."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error storage/ raises on purpose."""


class NotFound(StorageError):
    def __init__(self, kind: str, key: str):
        super().__init__(f"{kind} {key!r} not found")
        self.kind = kind
        self.key = key


class InvalidSpec(StorageError):
    """Input that breaks a rule; `errors` lists (field, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


class Conflict(StorageError):
    """The request contradicts what is stored (a name taken, a run already ended); `errors` may name the field."""

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.errors = errors
