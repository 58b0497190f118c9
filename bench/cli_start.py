"""How long the `dockyard` command takes to start: `dockyard --help` and `dockyard runs --help`, run N times each.

    python -m bench.cli_start [--times 20]

Prints p50 and max wall time in ms; the target is `dockyard --help` within 300 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.stack import machine_line, percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", type=int, default=20, help="runs of each command (default 20)")
    args = parser.parse_args()
    dockyard = os.path.join(os.path.dirname(sys.executable), "dockyard")
    print(f"machine: {machine_line()}")
    for command in (["--help"], ["runs", "--help"], ["--version"]):
        took = []
        for _ in range(args.times):
            started = time.perf_counter()
            subprocess.run([dockyard, *command], stdout=subprocess.DEVNULL, check=True)
            took.append((time.perf_counter() - started) * 1000)
        print(f"dockyard {' '.join(command)}: p50 {percentile(took, 50):.0f} ms, max {max(took):.0f} ms ({args.times} runs)")


if __name__ == "__main__":
    main()
