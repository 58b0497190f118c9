"""What the user commands (runs, schedules) share: the API's address and key, and how an answer is printed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from cli.parsing import FAILED, NOT_FOUND, OK, UNREACHABLE, USAGE
from settings import Settings

if TYPE_CHECKING:
    import requests


def add_api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", help="API base URL (default: DOCKYARD_API_URL, else http://127.0.0.1:8000)")
    parser.add_argument("--api-key", help="API key (default: DOCKYARD_API_KEY; prefer the variable: arguments show in ps)")


def api_base(args: argparse.Namespace, settings: Settings) -> str:
    return (args.api_url or settings.api_url).rstrip("/")


def api_session(args: argparse.Namespace, settings: Settings) -> requests.Session:
    """A session that sends the API key, on a new connection per request.

    NOTE: a kept-alive connection the server closed while we slept (runs
    submit --wait) fails the next request outright.
    """
    import requests

    http = requests.Session()
    http.headers["Connection"] = "close"
    api_key = args.api_key or settings.api_key
    if api_key:
        http.headers["Authorization"] = f"Bearer {api_key}"
    return http


def exit_status(resp: requests.Response) -> int:
    """What an answer's HTTP status means as an exit status."""
    if resp.ok:
        return OK
    return NOT_FOUND if resp.status_code == 404 else USAGE if resp.status_code in (400, 422) else FAILED


def show(resp: requests.Response) -> int:
    """Print an answer's body (indented JSON when it is JSON); a refusal goes to stderr as its problem's detail too."""
    try:
        print(json.dumps(resp.json(), indent=2))
    except ValueError:
        print(resp.text)
    return exit_status(resp)


def refusal(resp: requests.Response) -> int:
    """Say on stderr why the API refused (its problem document's title, detail and fields); the exit status."""
    try:
        problem = resp.json()
        print(f"dockyard: {resp.status_code} {problem.get('title', '')}: {problem.get('detail', '')}", file=sys.stderr)
        for error in problem.get("errors") or []:
            print(f"dockyard:   {error.get('field')}: {error.get('message')}", file=sys.stderr)
    except ValueError:
        print(f"dockyard: {resp.status_code}: {resp.text[:500]}", file=sys.stderr)
    return exit_status(resp)


def call_api(args: argparse.Namespace, settings: Settings, request, present=show) -> int:
    """Send what `request(http, base)` sends and `present` the answer; UNREACHABLE if the API cannot be reached."""
    import requests

    base = api_base(args, settings)
    try:
        return present(request(api_session(args, settings), base))
    except requests.RequestException as exc:
        print(f"dockyard: cannot reach the API at {base}: {exc}", file=sys.stderr)
        return UNREACHABLE
