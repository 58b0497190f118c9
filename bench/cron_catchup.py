"""What a schedule's fire times cost the scheduler: validation, and catching up a long gap.

No services needed: it times storage/cron.py and scheduling.firing's listing
of due fire times for a few expressions and zones.

    python -m bench.cron_catchup [--fires 10000]

Prints, for each expression: the time to validate it (the API's check of the
shortest interval, on every POST and PATCH), and the time to list `--fires`
fire times (what a leader does before catching up a gap that long), per
fire in microseconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from storage.cron import fires_between, shortest_interval

CASES = [
    ("* * * * *", "UTC"),
    ("*/5 * * * *", "Europe/Berlin"),
    ("* 9-17 * * 1-5", "Europe/Berlin"),
    ("* 0-23 * * *", "America/New_York"),
    ("30 2 * * *", "Europe/Berlin"),
    ("0 0 1 * 1", "America/Santiago"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fires", type=int, default=10_000, help="fire times to list per expression (default 10000)")
    args = parser.parse_args()
    start = dt.datetime(2026, 3, 20)
    print(f"{'expression':18} {'zone':18} {'validate ms':>11} {'fires':>7} {'list s':>7} {'us/fire':>8}")
    for expression, zone in CASES:
        began = time.perf_counter()
        shortest_interval(expression, zone, start)
        validate = time.perf_counter() - began
        began = time.perf_counter()
        fires = fires_between(expression, zone, start, start + dt.timedelta(days=3650), limit=args.fires)
        listing = time.perf_counter() - began
        per_fire = listing / len(fires) * 1e6 if fires else 0.0
        print(f"{expression:18} {zone:18} {validate * 1000:11.1f} {len(fires):7} {listing:7.2f} {per_fire:8.1f}")


if __name__ == "__main__":
    main()
