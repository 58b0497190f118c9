"""What Dockyard adds to running a container: per-run overhead, throughput, pickup.

Runs the sample `echo` processor N times through Dockyard (gunicorn + a
dramatiq worker, Postgres, RabbitMQ, Docker) and the same container
lifecycle N times directly with the docker SDK (create with the same
limits and hardening, attach, start, payload on stdin, read the output,
wait, remove), at the same parallelism.

    python -m bench.container_overhead [--runs 60] [--parallel 2]

Prints, for both paths:
  - one at a time, alternating the paths: the latency of each run (Dockyard: accepted -> finished,
    from the run's own timestamps; direct: create -> removed); the median
    difference is the per-run overhead. Also pickup (accepted -> running).
  - with backlogs (N runs split in alternating rounds) and `--parallel`
    worker threads / direct threads: runs per second, and Dockyard's share
    of the direct figure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import socket
import statistics
import time

import docker
import requests
from docker.utils.socket import frames_iter

from actors.containers import ContainerSpec, container_options
from bench.stack import Stack, machine_line, percentile
from storage.models import Run
from storage.processors import get_processor
from storage.run_states import RunState

POLL_SECONDS = 0.01
PAYLOAD = {"hello": "bench"}


def direct_lifecycle(client: docker.DockerClient, spec: ContainerSpec) -> float:
    """One container, start to removal, with the docker SDK alone; return its seconds."""
    started = time.perf_counter()
    create, host = container_options(spec)
    container_id = client.api.create_container(**create, host_config=client.api.create_host_config(**host))["Id"]
    try:
        sock = client.api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        client.api.start(container_id)
        raw = getattr(sock, "_sock", sock)
        raw.sendall(spec.payload)
        raw.shutdown(socket.SHUT_WR)
        output = b"".join(data for _, data in frames_iter(sock, tty=False))
        status = client.api.wait(container_id)["StatusCode"]
        sock.close()
        if status != 0 or b"DOCKYARD_RESULT" not in output:
            raise RuntimeError(f"direct run failed: exit {status}, output {output[:200]!r}")
    finally:
        client.api.remove_container(container_id, force=True, v=True)
    return time.perf_counter() - started


def direct_spec(client: docker.DockerClient, stack: Stack) -> ContainerSpec:
    processor = get_processor("echo")
    return ContainerSpec(
        image_id=client.images.get(processor.image).id,
        command=processor.command,
        env={"DOCKYARD_RUN_ID": "direct", "DOCKYARD_ATTEMPT": "1", "DOCKYARD_PROCESSOR": "echo"},
        labels={"dockyard.bench": "direct"},
        cpus=processor.cpus,
        memory_mb=processor.memory_mb,
        pids=processor.pids,
        network=processor.network,
        timeout_seconds=processor.timeout_seconds,
        payload=json.dumps(PAYLOAD).encode() + b"\n",
        user=stack.settings.container_user,
        tmpfs_mb=stack.settings.container_tmpfs_mb,
    )


def submit(session: requests.Session, url: str) -> str:
    resp = session.post(f"{url}/v1/runs", json={"processor": "echo", "payload": PAYLOAD}, timeout=10)
    resp.raise_for_status()
    return resp.json()["id"]


def wait_finished(run_ids: list[str], deadline_seconds: float) -> list[Run]:
    """Poll the database until every run has ended; fail loudly if one did not succeed."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        runs = list(Run.select().where(Run.id.in_(run_ids) & Run.finished_at.is_null(False)))
        if len(runs) == len(run_ids):
            failed = [r for r in runs if r.state != RunState.SUCCEEDED]
            if failed:
                raise SystemExit(f"bench: run {failed[0].id} ended {failed[0].state}: {failed[0].error_message}")
            return runs
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {len(run_ids) - len(runs)} runs not finished within {deadline_seconds:.0f}s")
        time.sleep(POLL_SECONDS)


def seconds(a, b) -> float:
    return (b - a).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="runs per path and phase (default 60)")
    parser.add_argument("--parallel", type=int, default=2, help="worker threads, and direct threads (default 2)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating backlog rounds per path (default 4)")
    args = parser.parse_args()
    client = docker.from_env()

    with Stack() as stack:
        url = stack.start_web(workers=1, threads=4)
        stack.start_worker(threads=args.parallel)
        session = requests.Session()
        session.headers.update(stack.auth_header)
        spec = direct_spec(client, stack)
        print(f"machine: {machine_line()}")
        print(f"processor: echo ({spec.cpus} cpu, {spec.memory_mb} MB); {args.runs} runs per phase; parallel {args.parallel}")

        # Warm both paths (image layers, worker connections, gunicorn).
        for _ in range(3):
            direct_lifecycle(client, spec)
        wait_finished([submit(session, url) for _ in range(3)], 60)

        # One at a time, alternating the two paths so drift in the machine's speed hits both alike.
        direct, dockyard, pickup = [], [], []
        for _ in range(args.runs):
            direct.append(direct_lifecycle(client, spec))
            [run] = wait_finished([submit(session, url)], 60)
            dockyard.append(seconds(run.created_at, run.finished_at))
            pickup.append(seconds(run.created_at, run.started_at))
        d_med, y_med = statistics.median(direct), statistics.median(dockyard)
        print("one at a time (ms):")
        print(f"  direct   p50 {d_med * 1000:.0f}  p95 {percentile(direct, 95) * 1000:.0f}")
        print(f"  dockyard p50 {y_med * 1000:.0f}  p95 {percentile(dockyard, 95) * 1000:.0f}  (accepted -> finished)")
        print(f"  overhead per run (median difference): {(y_med - d_med) * 1000:.0f} ms")
        print(
            f"  pickup (accepted -> running): p50 {percentile(pickup, 50) * 1000:.0f}  "
            f"p95 {percentile(pickup, 95) * 1000:.0f}  max {max(pickup) * 1000:.0f}"
        )

        # A backlog at the same parallelism, in alternating rounds: throughput.
        direct_seconds = dockyard_seconds = 0.0
        per_round = max(1, args.runs // args.rounds)
        for _ in range(args.rounds):
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                list(pool.map(lambda _: direct_lifecycle(client, spec), range(per_round)))
            direct_seconds += time.perf_counter() - started
            runs = wait_finished([submit(session, url) for _ in range(per_round)], 30 + per_round * 5)
            dockyard_seconds += seconds(min(r.created_at for r in runs), max(r.finished_at for r in runs))
        total = per_round * args.rounds
        direct_rate, dockyard_rate = total / direct_seconds, total / dockyard_seconds
        print(f"backlog: {args.rounds} rounds of {per_round}, {args.parallel} at a time (runs/s):")
        print(f"  direct {direct_rate:.2f}  dockyard {dockyard_rate:.2f}  ratio {dockyard_rate / direct_rate * 100:.0f}%")
        leftovers = client.containers.list(all=True, filters={"label": "dockyard.bench=direct"})
        print(f"check: {len(leftovers)} direct containers left behind")


if __name__ == "__main__":
    main()
