"""Reading request bodies with a size bound and clear errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import unquote_plus

import falcon

from web.errors import Problem, invalid

JSON_TYPES = ("application/json", "application/x-www-form-urlencoded")
# Room in a body for everything besides a payload of the largest size.
BODY_SLACK_BYTES = 65_536


def payload_body_limit(max_payload_bytes: int) -> int:
    """The largest body that carries a payload (a run, a schedule): twice the payload limit
    (JSON escaping may double it) and room for the other fields."""
    return max_payload_bytes * 2 + BODY_SLACK_BYTES


def read_json_body(req: falcon.Request, max_bytes: int):
    """Return the parsed JSON body; 413 if larger than `max_bytes`, 400 if missing or malformed, 415 if not JSON."""
    # NOTE: curl -d sends application/x-www-form-urlencoded; the body is still
    # JSON, so accept it rather than fail every copy-pasted example.
    content_type = (req.content_type or "application/json").split(";", 1)[0].strip().lower()
    if content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise Problem(falcon.HTTP_415, "Unsupported media type", f"send the body as application/json, not {content_type}")
    if req.content_length is not None and req.content_length > max_bytes:
        raise Problem(falcon.HTTP_413, "Request body too large", f"the body is {req.content_length} bytes; the limit is {max_bytes}")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Problem(falcon.HTTP_413, "Request body too large", f"the body is larger than the {max_bytes}-byte limit")
    if not raw.strip():
        raise Problem(falcon.HTTP_400, "Missing body", "the request needs a JSON body")
    try:
        # NOTE: decoded here, strictly: json.loads(bytes) would also take
        # UTF-16/32 and let UTF-8-encoded surrogates through.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(falcon.HTTP_400, "Malformed JSON", f"the body is not UTF-8: {exc}") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise Problem(falcon.HTTP_400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    # Escapes are the only way a JSON text carries NUL or a surrogate: look only when one is there.
    if ESCAPED_NUL_OR_SURROGATE.search(raw):
        problems = list(_bad_text(body, ""))
        if problems:
            raise invalid(problems[:10])
    return body


# \u0000, or \ud800-\udfff (a surrogate; paired ones are fine)
ESCAPED_NUL_OR_SURROGATE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _bad_text(value, path: str) -> Iterator[tuple[str, str]]:
    """(field, problem) for each string no database can store: an unpaired surrogate anywhere, and
    (Postgres refuses text holding it) NUL anywhere but in `payload`, which is stored as escaped JSON."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield path or "body", "is not valid Unicode (an unpaired surrogate)"
            return
        if "\x00" in value and not (path == "payload" or path.startswith(("payload.", "payload["))):
            yield path or "body", "must not contain NUL characters"
    elif isinstance(value, dict):
        for key, item in value.items():
            field = f"{path}.{key}" if path else key
            yield from _bad_text(key, field)
            yield from _bad_text(item, field)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _bad_text(item, f"{path}[{index}]")


class RefuseNul:
    """Falcon middleware: a NUL character in the path or the query string is 400, before any lookup.

    Postgres refuses text holding NUL; without this an id or a filter with
    %00 in it would fail deep in a query (500) rather than as bad input.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if "\x00" in req.path:
            raise Problem(falcon.HTTP_400, "Bad request", "the path must not contain NUL characters (%00)")
        if "\x00" in unquote_plus(req.query_string or ""):
            raise Problem(falcon.HTTP_400, "Bad request", "the query string must not contain NUL characters (%00)")
