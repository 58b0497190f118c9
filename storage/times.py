"""Times as Dockyard stores and compares them: naive datetimes in UTC."""

from __future__ import annotations

import datetime as dt


def naive_utc(text: str) -> dt.datetime:
    """An ISO 8601 time (`Z` or an offset; none means UTC) as naive UTC. ValueError if it is not one, or is out of range in UTC."""
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo is not None else parsed
    except OverflowError as exc:  # in range as given, out of range once moved to UTC
        raise ValueError(f"{text!r} is out of range in UTC: {exc}") from None
