"""Capacity on the cluster harness: trivial runs per second by worker hosts and threads.

Needs `infra/dev/cluster.sh up` (three RabbitMQ nodes, engines dyw1 and dyw2)
and `eval "$(infra/dev/cluster.sh env)"`, besides the services of the other
benchmarks. For each layout it starts the API and one worker per host (each
bound to its own engine, on the cluster's quorum queues), submits a backlog
of echo runs and times it from the first start to the last end:

    python -m bench.cluster_capacity [--runs 120] [--hosts 1,2] [--threads 1,2,4]

Prints runs/s per layout, per host and per thread, and which host ran what.
On one machine the engines share its CPUs: a second host adds threads and an
engine, not CPUs, so these figures bound what a host adds, not measure it.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time

import requests

from bench.container_overhead import BACKLOG_POLL_SECONDS, PAYLOAD, wait_finished
from bench.stack import ROOT, Stack, cpu_seconds_by_command, cpu_share_line, machine_line, need
from storage.models import RunAttempt

ENGINES = ("dyw1", "dyw2")


def engine_url(name: str) -> str:
    return subprocess.run(
        [os.path.join(ROOT, "infra", "dev", "engine.sh"), "url", name], capture_output=True, text=True, check=True
    ).stdout.strip()


def measure(stack: Stack, url: str, session: requests.Session, runs: int) -> tuple[float, dict[str, int], str]:
    ids = []
    cpu0, t0 = cpu_seconds_by_command(), time.monotonic()
    for _ in range(runs):
        resp = session.post(f"{url}/v1/runs", json={"processor": "echo", "payload": PAYLOAD}, timeout=10)
        resp.raise_for_status()
        ids.append(resp.json()["id"])
    done = wait_finished(ids, 60 + runs * 2, BACKLOG_POLL_SECONDS)
    cpu = cpu_share_line(cpu0, cpu_seconds_by_command(), time.monotonic() - t0)
    first = min(r.started_at for r in done)
    last = max(r.finished_at for r in done)
    by_worker = collections.Counter(a.worker for a in RunAttempt.select(RunAttempt.worker).where(RunAttempt.run.in_(ids)))
    return runs / (last - first).total_seconds(), dict(by_worker), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=120, help="runs in each backlog (default 120)")
    parser.add_argument("--hosts", default="1,2", help="worker host counts to measure (default 1,2)")
    parser.add_argument("--threads", default="1,2,4", help="threads per worker to measure (default 1,2,4)")
    args = parser.parse_args()
    cluster_url = need("CLUSTER_BROKER_URL")
    os.environ["DOCKYARD_BROKER_URL"] = cluster_url
    print(f"machine: {machine_line()}")
    print(f"RabbitMQ: {len(cluster_url.split(';'))} nodes, quorum queues; engines: {', '.join(ENGINES)} (on this machine's CPUs)")
    for hosts in map(int, args.hosts.split(",")):
        for threads in map(int, args.threads.split(",")):
            with Stack() as stack:
                url = stack.start_web(workers=1, threads=8, DOCKYARD_QUEUE_TYPE="quorum")
                for n in range(hosts):
                    stack.start_worker(
                        threads=threads,
                        DOCKYARD_QUEUE_TYPE="quorum",
                        DOCKYARD_DOCKER_URL=engine_url(ENGINES[n]),
                        DOCKYARD_WORKER_NAME=f"host{n + 1}",
                    )
                session = requests.Session()
                session.headers.update(stack.auth_header)
                measure(stack, url, session, 4 * hosts * threads)  # warm-up: each engine pulls the image by digest
                rate, by_worker, cpu = measure(stack, url, session, args.runs)
                per_host = ", ".join(f"{w} {n}" for w, n in sorted(by_worker.items()))
                print(
                    f"{hosts} host(s) x {threads} thread(s): {rate:.1f} runs/s = {rate / hosts:.1f} per host, "
                    f"{rate / (hosts * threads):.1f} per thread; ran: {per_host}"
                )
                print(f"  cpu (100% = one of {os.cpu_count()}): {cpu}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
