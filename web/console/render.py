"""Console pages from Jinja2 templates (web/console/templates), every value escaped unless a template says not."""

from __future__ import annotations

import datetime as dt
import json

import falcon
import jinja2
from cron_descriptor import Options, get_description

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("web.console", "templates"),
    autoescape=True,  # logs, payloads and results are the processors' own text: never markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "—"


def _duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


# Control characters a processor printed (ANSI colour codes, bells, NULs) shown as their Unicode pictures
# (ESC as ␛): visible, and never acted on by the terminal a page is copied into. Newlines and tabs stay.
_CONTROL_PICTURES = {code: 0x2400 + code for code in range(0x20) if chr(code) not in "\n\t"} | {0x7F: 0x2421}


def _visible(text: str | None) -> str:
    return (text or "").translate(_CONTROL_PICTURES)


def _as_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _bytes(value: int | None) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


_CRON_OPTIONS = Options()
_CRON_OPTIONS.use_24hour_time_format = True
# crontab(5)'s shorthands, which the words library does not read.
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _cron_words(expression: str) -> str:
    """A cron expression in words (cron-descriptor), or the expression itself if it has none."""
    try:
        return get_description(_MACROS.get(expression.strip().lower(), expression), _CRON_OPTIONS)
    except Exception:  # words are a courtesy: the expression is shown beside them
        return expression


FIRE_WORDS = {
    "fired": "fired",
    "triggered": "triggered by hand",
    "skipped_overlap": "skipped: overlap",
    "replaced": "replaced: cancelled by a later fire",
    "missed": "missed",
    "not_fired": "not fired",
}


_env.filters.update(
    when=_when,
    as_json=_as_json,
    size=_bytes,
    visible=_visible,
    cron_words=_cron_words,
    fire_words=lambda kind: FIRE_WORDS.get(str(kind), str(kind)),
)
_env.globals.update(duration=_duration)


def page(resp: falcon.Response, template: str, status: str = falcon.HTTP_200, **context) -> None:
    """Answer with a rendered page."""
    resp.status = status
    resp.content_type = falcon.MEDIA_HTML
    resp.text = _env.get_template(template).render(**context)
