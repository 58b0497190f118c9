"""Reading request bodies with a size bound and clear errors."""

from __future__ import annotations

import json

import falcon

from web.errors import Problem

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
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(falcon.HTTP_400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
