"""Reading what a console page is sent: a POSTed form, and the date-and-time filters."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import falcon

from web.errors import invalid


def form_of(req: falcon.Request) -> dict:
    """A POSTed form's fields (parsed once; falcon keeps it for the responder)."""
    if req.content_type is None or not req.content_type.startswith(falcon.MEDIA_URLENCODED):
        return {}
    form = req.get_media(default_when_empty={})
    return form if isinstance(form, dict) else {}


def utc_time(field: str, value: str) -> dt.datetime | None:
    """A filter's date and time (ISO 8601; UTC unless it says otherwise), naive UTC as stored; 422 naming the field."""
    if not value:
        return None
    try:
        found = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid([(field, "must be a date and time, e.g. 2026-12-01T08:00")]) from None
    return found.astimezone(dt.UTC).replace(tzinfo=None) if found.tzinfo is not None else found


def page_link(path: str, filters: dict[str, str], cursor: str | None) -> str | None:
    """The link to the next page of a list: its filters as given, and the cursor (None on the last page)."""
    if cursor is None:
        return None
    return f"{path}?" + urlencode({**{name: value for name, value in filters.items() if value}, "cursor": cursor})
