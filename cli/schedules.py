"""`dockyard schedules`: list, create, pause, resume and trigger cron schedules over the HTTP API."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cli.api import add_api_options, call_api, show
from cli.parsing import NOT_FOUND, OVERLAPS, PRIORITIES, command_group, json_value

if TYPE_CHECKING:
    import requests

TIMEOUT_SECONDS = 30


def register(sub) -> None:
    ssub = command_group(
        sub, "schedules", "list, create, pause, resume and trigger cron schedules over the HTTP API", options=add_api_options
    )
    ssub.add_parser("list", help="list schedules with their next and last fire times (UTC)").set_defaults(handler=list_schedules)
    create = ssub.add_parser("create", help="create a schedule")
    create.add_argument("name", help="unique name: lowercase letters, digits, '.', '-', '_'")
    create.add_argument("--cron", required=True, help="five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'")
    create.add_argument("--processor", required=True, help="the registered processor each fire runs")
    create.add_argument("--timezone", default="UTC", help="IANA time zone the cron is read in (default UTC)")
    create.add_argument("--payload", type=json_value, default={}, help="each run's payload as JSON (default {})")
    create.add_argument("--priority", default="normal", choices=PRIORITIES)
    create.add_argument(
        "--overlap",
        default="allow",
        choices=OVERLAPS,
        help="while a run of this schedule has not ended: fire anyway, skip the fire, or cancel it and fire (default allow)",
    )
    create.add_argument(
        "--catchup-window-seconds",
        type=int,
        default=300,
        help="fires missed while no scheduler led are run once if this recent (default 300)",
    )
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.set_defaults(handler=create_schedule)
    for action, text in (
        ("pause", "stop firing a schedule"),
        ("resume", "fire a paused schedule again from now"),
        ("trigger", "start a run of a schedule now"),
    ):
        command = ssub.add_parser(action, help=text)
        command.add_argument("schedule", help="schedule id or name")
        command.set_defaults(handler=post_to_schedule)


def list_schedules(args: argparse.Namespace, context) -> int:
    def present(resp: requests.Response) -> int:
        if not resp.ok:
            return show(resp)
        print(f"{'NAME':24} {'CRON':16} {'TIMEZONE':16} {'OVERLAP':8} {'STATE':7} {'NEXT FIRE':21} {'LAST FIRE':21} ID")
        for s in resp.json()["items"]:
            state = "paused" if s["paused"] else "active"
            print(
                f"{s['name']:24} {s['cron']:16} {s['timezone']:16} {s['overlap']:8} {state:7} "
                f"{_short(s['next_fire_at']):21} {_short(s['last_fired_at']):21} {s['id']}"
            )
        return 0

    return call_api(args, context.settings, lambda http, base: http.get(f"{base}/v1/schedules", timeout=TIMEOUT_SECONDS), present)


def create_schedule(args: argparse.Namespace, context) -> int:
    body = {
        "name": args.name,
        "cron": args.cron,
        "processor": args.processor,
        "timezone": args.timezone,
        "payload": args.payload,
        "priority": args.priority,
        "overlap": args.overlap,
        "catchup_window_seconds": args.catchup_window_seconds,
        "paused": args.paused,
    }
    return call_api(args, context.settings, lambda http, base: http.post(f"{base}/v1/schedules", json=body, timeout=TIMEOUT_SECONDS))


def post_to_schedule(args: argparse.Namespace, context) -> int:
    """pause, resume or trigger a schedule named by id or name."""

    def post(http: requests.Session, base: str) -> requests.Response | None:
        schedule_id = _schedule_id(http, f"{base}/v1/schedules", args.schedule)
        if schedule_id is None:
            return None
        return http.post(f"{base}/v1/schedules/{schedule_id}/{args.action}", timeout=TIMEOUT_SECONDS)

    def present(resp: requests.Response | None) -> int:
        if resp is None:
            print(f"dockyard: no schedule with id or name {args.schedule!r}", file=sys.stderr)
            return NOT_FOUND
        return show(resp)

    return call_api(args, context.settings, post, present)


def _schedule_id(http: requests.Session, url: str, ref: str) -> str | None:
    """A schedule's id from its id or its name."""
    resp = http.get(url, timeout=TIMEOUT_SECONDS)
    resp.raise_for_status()
    for s in resp.json()["items"]:
        if ref in (s["id"], s["name"]):
            return s["id"]
    return None


def _short(timestamp: str | None) -> str:
    return "-" if timestamp is None else timestamp[:19].replace("T", " ") + "Z"
