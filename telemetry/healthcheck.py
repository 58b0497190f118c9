"""Is this container's Dockyard process alive? The image's HEALTHCHECK: `python -m telemetry.healthcheck`.

One image runs every process type. The container's command (PID 1's, or
what an init such as `docker run --init` starts) says which; the check asks
that process type's endpoint on loopback: web's /healthz on $PORT, the
worker's /metrics (DOCKYARD_WORKER_METRICS_PORT), the scheduler's /metrics
(DOCKYARD_SCHEDULER_METRICS_PORT). A command that names none of them has each
asked, and the first that answers 200 passes. These are the endpoints the
Kubernetes liveness probes use. Alive, not ready: a database or broker
outage is not a reason to replace the process (`/readyz` says whether web
can take runs). Exit 0 alive, 1 not, with one line saying what was asked.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


# What in the container's command says which process type it runs (the Procfile's commands).
COMMAND_WORDS = {"web": "gunicorn", "worker": "actors", "scheduler": "scheduling"}


def container_command(path: str = "/proc/1/cmdline") -> list[str]:
    try:
        with open(path, "rb") as cmdline:
            return [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]
    except OSError:
        return []


def endpoints(command: list[str]) -> list[tuple[str, str]]:
    """(what, URL) for the process type `command` runs, or for each when it names none; a port of 0 is off."""
    from settings import Settings

    settings = Settings.from_env()
    ports = [
        ("web", os.environ.get("PORT", "8000"), "/healthz"),
        ("worker", str(settings.worker_metrics_port), "/metrics"),
        ("scheduler", str(settings.scheduler_metrics_port), "/metrics"),
    ]
    words = " ".join(command).replace("/", " ").replace(".", " ").split()
    named = [what for what, word in COMMAND_WORDS.items() if word in words]
    if len(named) == 1:
        ports = [entry for entry in ports if entry[0] == named[0]]
    return [(what, f"http://127.0.0.1:{port}{path}") for what, port, path in ports if port not in ("", "0")]


def answers(url: str) -> str | None:
    """None when `url` answers 200, else why not."""
    try:
        # No proxy: the endpoints are on loopback, whatever HTTP_PROXY says.
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=TIMEOUT_SECONDS) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def main() -> int:
    from settings import SettingsError

    try:
        asked = endpoints(container_command())
    except SettingsError as exc:
        print(f"not alive: {exc}", file=sys.stderr)
        return 1
    failures = []
    for what, url in asked:
        why = answers(url)
        if why is None:
            print(f"alive: {what} answers {url}")
            return 0
        failures.append(f"{what} {url}: {why}")
    print("not alive: " + ("; ".join(failures) or "every port is off"), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
