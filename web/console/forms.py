"""Reading what a console page is sent: a POSTed form, and the date-and-time filters."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import falcon

from storage.times import naive_utc
from web.errors import Problem, invalid

# A console form is a few short fields (the longest, an API key); anything larger is refused unread.
FORM_BYTES_LIMIT = 16 * 1024


def form_of(req: falcon.Request) -> dict[str, str]:
    """A POSTed form's fields, one string each (the last of a repeated field); parsed once, then kept.

    Only a URL-encoded body with its Content-Length is read, and only up to FORM_BYTES_LIMIT (413 past it,
    before a byte is read): the sign-in form is open to anyone. A field holding NUL is 400, as in a path."""
    cached = getattr(req.context, "console_form", None)
    if cached is not None:
        return cached
    form: dict[str, str] = {}
    if req.content_type is not None and req.content_type.startswith(falcon.MEDIA_URLENCODED) and req.content_length:
        if req.content_length > FORM_BYTES_LIMIT:
            raise Problem(falcon.HTTP_413, "Form too large", f"a console form is at most {FORM_BYTES_LIMIT} bytes")
        parsed = req.get_media(default_when_empty={})
        for name, value in (parsed if isinstance(parsed, dict) else {}).items():
            form[name] = value[-1] if isinstance(value, list) else value
        if any("\x00" in name or "\x00" in value for name, value in form.items()):
            raise Problem(falcon.HTTP_400, "Bad request", "form fields must not contain NUL characters")
    req.context.console_form = form
    return form


def utc_time(field: str, value: str) -> dt.datetime | None:
    """A filter's date and time (ISO 8601; UTC unless it says otherwise), naive UTC as stored; 422 naming the field."""
    if not value:
        return None
    try:
        return naive_utc(value)
    except ValueError:  # not a date, or out of range once moved to UTC
        raise invalid([(field, "must be a date and time, e.g. 2026-12-01T08:00")]) from None


def filtered_link(path: str, filters: dict[str, str], **more: str) -> str:
    """A link to a list page with the filters that are set (and `more` parameters)."""
    given = {name: value for name, value in {**filters, **more}.items() if value}
    return f"{path}?{urlencode(given)}" if given else path


def page_link(path: str, filters: dict[str, str], cursor: str | None) -> str | None:
    """The link to the next page of a list: its filters as given, and the cursor (None on the last page)."""
    return filtered_link(path, filters, cursor=cursor) if cursor is not None else None
