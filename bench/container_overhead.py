"""What Dockyard adds to running a container: per-run overhead, throughput, pickup.

Runs the sample `echo` processor N times through Dockyard (gunicorn + a
dramatiq worker, Postgres, RabbitMQ, Docker) and the same container
lifecycle N times directly with the docker SDK (create with the same
limits and hardening, attach, start, payload on stdin, read the output,
wait, remove), at the same parallelism.

    python -m bench.container_overhead [--runs 60] [--parallel 2]
    python -m bench.container_overhead --defaults [--runs 60] [--stream 500]

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
import os
import re
import socket
import statistics
import time

import docker
import requests
from docker.utils.socket import frames_iter

from actors.containers import ContainerSpec, container_options
from bench.stack import Stack, cpu_per_item_line, cpu_seconds_by_command, machine_line, percentile
from storage.models import Run
from storage.processors import get_processor
from storage.run_states import RunState

POLL_SECONDS = 0.01
# A backlog's rate comes from the runs' own timestamps, not from when the bench saw them end: it polls
# rarely so that its queries take no CPU from the worker it measures (the direct path has no poller).
BACKLOG_POLL_SECONDS = 0.25
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


def wait_finished(run_ids: list[str], deadline_seconds: float, poll_seconds: float = POLL_SECONDS) -> list[Run]:
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
        time.sleep(poll_seconds)


def seconds(a, b) -> float:
    return (b - a).total_seconds()


def direct_rate(client: docker.DockerClient, spec: ContainerSpec, runs: int, parallel: int) -> float:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda _: direct_lifecycle(client, spec), range(runs)))
    return runs / (time.perf_counter() - started)


def backlog(session: requests.Session, url: str, runs: int) -> list[Run]:
    return wait_finished([submit(session, url) for _ in range(runs)], 30 + runs * 5, BACKLOG_POLL_SECONDS)


def freed_thread_gaps(runs: list[Run], threads: int) -> list[float]:
    """For each run of a backlog that waited for a thread: from the last end recorded before it started to
    its start (the thread that ended a run acking it, taking the next message and claiming its run)."""
    ordered = sorted(runs, key=lambda r: r.started_at)
    ends = sorted(r.finished_at for r in runs)
    gaps = []
    for run in ordered[threads:]:
        before = [end for end in ends if end <= run.started_at]
        if before:
            gaps.append(seconds(before[-1], run.started_at))
    return gaps


def worker_threads_from_log(stack: Stack, deadline: float = 30) -> int:
    """The thread count the worker chose, from its start line."""
    path = os.path.join(stack.logs, "worker.log")
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        with open(path) as fh:
            if found := re.search(r"worker: (\d+) thread\(s\) \(([^)]*\)?)\)", fh.read()):
                print(f"worker: {found.group(1)} threads ({found.group(2)})")
                return int(found.group(1))
        time.sleep(0.2)
    raise SystemExit(f"bench: the worker did not log its thread count; see {path}")


def worker_rss_mib(parent: int) -> float:
    """Resident memory of the worker process (the child the dramatiq command forks)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                with open(f"/proc/{pid}/status") as fh:
                    return int(re.search(r"VmRSS:\s+(\d+)", fh.read()).group(1)) / 1024
        except (OSError, AttributeError):
            continue
    raise SystemExit("bench: the worker process is gone")


def defaults(args, client: docker.DockerClient, spec: ContainerSpec, stack: Stack, session: requests.Session, url: str) -> None:
    """The worker as `make run` starts it against the direct path at its best parallelism."""
    threads = worker_threads_from_log(stack)
    levels = (1, 2, 4, 8)
    direct = {level: [] for level in levels}
    dockyard, gaps = [], []
    per_round = max(1, args.runs // args.rounds)
    labels = stack.cpu_labels()
    cpu = {"direct": {}, "dockyard": {}}
    for _ in range(args.rounds):
        for level in levels:
            before = cpu_seconds_by_command(labels)
            direct[level].append(direct_rate(client, spec, per_round, level))
            add_cpu(cpu["direct"], before, cpu_seconds_by_command(labels))
        before = cpu_seconds_by_command(labels)
        runs = backlog(session, url, per_round)
        add_cpu(cpu["dockyard"], before, cpu_seconds_by_command(labels))
        dockyard.append(per_round / seconds(min(r.created_at for r in runs), max(r.finished_at for r in runs)))
        gaps += freed_thread_gaps(runs, threads)
    print(f"backlog: {args.rounds} rounds of {per_round} runs, alternating (runs/s, median of rounds):")
    for level in levels:
        print(f"  direct, {level} at a time: {statistics.median(direct[level]):.2f}  ({', '.join(f'{r:.2f}' for r in direct[level])})")
    best = max(levels, key=lambda level: statistics.median(direct[level]))
    best_rate, rate = statistics.median(direct[best]), statistics.median(dockyard)
    print(f"  dockyard, {threads} threads:  {rate:.2f}  ({', '.join(f'{r:.2f}' for r in dockyard)})")
    print(f"  dockyard / direct at its best ({best} at a time): {rate / best_rate * 100:.0f}%")
    print("cpu per run, whole machine (ms; the bench's own polling is 'bench'):")
    print(f"  direct   {cpu_per_item_line({}, cpu['direct'], per_round * args.rounds * len(levels))}")
    print(f"  dockyard {cpu_per_item_line({}, cpu['dockyard'], per_round * args.rounds)}")
    if gaps:
        ms = [g * 1000 for g in gaps]
        print(f"freed thread -> next run claimed: p50 {percentile(ms, 50):.0f}  p95 {percentile(ms, 95):.0f}  max {max(ms):.0f} ms")
    if args.stream:
        stream(args.stream, stack, session, url)


def add_cpu(into: dict[str, float], before: dict[str, float], after: dict[str, float]) -> None:
    for name, used in after.items():
        into[name] = into.get(name, 0.0) + used - before.get(name, 0.0)


def stream(total: int, stack: Stack, session: requests.Session, url: str) -> None:
    """`total` runs, at most 200 waiting; the rate and the worker's RSS at each step."""
    step = min(1000, max(1, total // 5))
    worker = next(p for p in stack.processes if "actors.worker" in p.args)
    print(f"stream of {total} runs (at most 200 waiting): runs, runs/s over the step, worker RSS MiB")
    pending: list[str] = []
    done = 0
    began = mark = time.perf_counter()
    mark_done = 0
    rss = []
    while done < total:
        while len(pending) < min(200, total - done):
            pending.append(submit(session, url))
        finished = {r.id for r in Run.select(Run.id, Run.state).where(Run.id.in_(pending) & Run.finished_at.is_null(False))}
        if not finished:
            time.sleep(BACKLOG_POLL_SECONDS)
            continue
        failed = Run.select().where(Run.id.in_(list(finished)) & (Run.state != RunState.SUCCEEDED)).first()
        if failed is not None:
            raise SystemExit(f"bench: run {failed.id} ended {failed.state}: {failed.error_message}")
        before, done = done, done + len(finished)
        pending = [run_id for run_id in pending if run_id not in finished]
        if done // step > before // step:
            now = time.perf_counter()
            rss.append((done, worker_rss_mib(worker.pid)))
            print(f"  {done:6d}  {(done - mark_done) / (now - mark):6.2f}  {rss[-1][1]:7.1f}")
            mark, mark_done = now, done
    print(f"  all {done} in {time.perf_counter() - began:.0f} s: {done / (time.perf_counter() - began):.2f} runs/s")
    (first_runs, first), (last_runs, last) = rss[0], rss[-1]
    print(f"  worker RSS: {first:.1f} MiB after {first_runs} runs, {last:.1f} MiB after {last_runs} ({(last / first - 1) * 100:+.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="runs per path and phase (default 60)")
    parser.add_argument("--parallel", type=int, default=2, help="worker threads, and direct threads (default 2)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating backlog rounds per path (default 4)")
    parser.add_argument("--defaults", action="store_true", help="the worker as make run starts it, against the direct path's best")
    parser.add_argument("--stream", type=int, default=0, help="with --defaults: then N runs in a stream, with the worker's RSS")
    args = parser.parse_args()
    client = docker.from_env()

    with Stack() as stack:
        url = stack.start_web(workers=1, threads=4)
        if args.defaults:
            stack.start_worker(threads=None, DOCKYARD_LOG_LEVEL="INFO")
        else:
            stack.start_worker(threads=args.parallel)
        session = requests.Session()
        session.headers.update(stack.auth_header)
        spec = direct_spec(client, stack)
        print(f"machine: {machine_line()}")
        parallel = "as make run chooses" if args.defaults else args.parallel
        print(f"processor: echo ({spec.cpus} cpu, {spec.memory_mb} MB); {args.runs} runs per phase; parallel {parallel}")

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

        if args.defaults:
            defaults(args, client, spec, stack, session, url)
            return
        # A backlog at the same parallelism, in alternating rounds: throughput.
        direct_seconds = dockyard_seconds = 0.0
        per_round = max(1, args.runs // args.rounds)
        for _ in range(args.rounds):
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                list(pool.map(lambda _: direct_lifecycle(client, spec), range(per_round)))
            direct_seconds += time.perf_counter() - started
            runs = backlog(session, url, per_round)
            dockyard_seconds += seconds(min(r.created_at for r in runs), max(r.finished_at for r in runs))
        total = per_round * args.rounds
        direct_rate, dockyard_rate = total / direct_seconds, total / dockyard_seconds
        print(f"backlog: {args.rounds} rounds of {per_round}, {args.parallel} at a time (runs/s):")
        print(f"  direct {direct_rate:.2f}  dockyard {dockyard_rate:.2f}  ratio {dockyard_rate / direct_rate * 100:.0f}%")
        leftovers = client.containers.list(all=True, filters={"label": "dockyard.bench=direct"})
        print(f"check: {len(leftovers)} direct containers left behind")


if __name__ == "__main__":
    main()
