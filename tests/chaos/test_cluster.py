"""Dockyard on a cluster on this one machine (infra/dev/cluster.sh): three RabbitMQ nodes with quorum queues, and
two worker hosts, each a worker process bound to a Docker engine of its own. Break a part under load and count:
nothing accepted is lost, ends twice, or stays unfinished. Each test prints its ledger (`-s` shows it)."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

import docker
import pytest
import requests
import yaml

from tests.chaos.conftest import TERMINAL, Cluster, assert_nothing_lost
from tests.conftest import unique, wait_until
from tests.engines import engine_script, start_engine
from tests.integration.conftest import delete_queues, fresh_postgres_database
from tests.integration.test_priorities import assert_runs_start_highest_priority_first

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "infra" / "dev" / "cluster.sh"
# The worker hosts: a worker process each, on its engine (engine name, its bridge's subnet).
HOSTS = {"host1": ("dyw1", "10.231.1.0/24"), "host2": ("dyw2", "10.231.2.0/24")}
# A publisher whose node died must be publishing again within this.
FAILOVER_SECONDS = 5


def cluster_sh(*args: str) -> str:
    done = subprocess.run([str(CLUSTER_SH), *args], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"infra/dev/cluster.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def harness():
    """The three nodes and two engines, started once for this module and removed after it."""
    cluster_sh("up")
    env = dict(line.removeprefix("export ").split("=", 1) for line in cluster_sh("env").splitlines())
    env = {k: v.strip("'") for k, v in env.items()}
    try:
        yield env
    finally:
        cluster_sh("down")


@pytest.fixture
def spread(harness, tmp_path):
    """Web (one process: one publisher), a scheduler and a worker on each host, on quorum queues of the cluster."""
    queue = unique("spread")
    broker_url = harness["CLUSTER_BROKER_URL"]
    extra = {
        "DOCKYARD_BROKER_URL": broker_url,
        "DOCKYARD_QUEUE_TYPE": "quorum",
        "WEB_CONCURRENCY": "1",
        "DOCKYARD_WORKER_HEARTBEAT_SECONDS": "1",
    }
    for engine, subnet in HOSTS.values():
        start_engine(engine, subnet)  # back up if a test before this one left it killed
    with fresh_postgres_database() as url:
        cluster = Cluster(tmp_path, url, queue, extra_env=extra)
        try:
            yield cluster
        finally:
            cluster.close()
            for engine, _ in HOSTS.values():
                client = docker.DockerClient(base_url=engine_script("url", engine), timeout=30)
                try:
                    for container in cluster.leftover_containers(client):
                        container.remove(force=True)
                except Exception:  # a killed engine: nothing to remove now; the next start cleans it
                    pass
            first = broker_url.split(";")[0]
            delete_queues(first, queue)
            delete_queues(first, f"{queue}.housekeeping")


def start_spread(cluster: Cluster, threads: int = 2) -> None:
    cluster.start("web")
    for name, (engine, _) in HOSTS.items():
        start_host_worker(cluster, name, engine, threads)
    cluster.start("scheduler")
    cluster.wait_ready()
    wait_until(lambda: len(live_workers(cluster)) == len(HOSTS), timeout=60, what="both worker hosts to report in")


def start_host_worker(cluster: Cluster, name: str, engine: str, threads: int = 2) -> None:
    cluster.start("worker", name, env={"DOCKYARD_DOCKER_URL": engine_script("url", engine), "DOCKYARD_WORKER_THREADS": str(threads)})


def live_workers(cluster: Cluster) -> dict[str, dict]:
    items = cluster.http.get(f"{cluster.base}/v1/workers", timeout=10).json()["items"]
    return {w["name"]: w for w in items if w["state"] == "live"}


def node_port(cluster: Cluster) -> int:
    """The AMQP port of the node the API's connection is on (its /readyz says)."""
    ready = requests.get(f"{cluster.base}/readyz", timeout=10).json()
    return int(ready["broker_node"].rsplit(":", 1)[1])


class HttpStack:
    """What assert_runs_start_highest_priority_first drives, over the API of a running cluster."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def submit(self, processor: str, payload=None, **fields) -> dict:
        resp = self.cluster.http.post(f"{self.cluster.base}/v1/runs", json={"processor": processor, "payload": payload or {}, **fields})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def wait_state(self, run_id: str, states=TERMINAL, timeout: float = 60) -> dict:
        def reached():
            run = self.cluster.http.get(f"{self.cluster.base}/v1/runs/{run_id}", timeout=10).json()
            return run if run["state"] in states else None

        return wait_until(reached, timeout=timeout, what=f"run {run_id} to reach {sorted(states)}")


def test_runs_start_highest_priority_first_on_the_cluster(spread, harness):
    # The ordering test of tests/integration/test_priorities.py, on the cluster's quorum queues: one worker of one
    # thread. (With several workers, each starts the highest level it holds; a message one worker holds waits for
    # that worker: docs/operations.md, "Queues on a cluster".)
    spread.start("web")
    start_host_worker(spread, "host1", HOSTS["host1"][0], threads=1)
    spread.wait_ready()
    wait_until(lambda: "host1" in live_workers(spread), timeout=60, what="host1 to report in")
    assert_runs_start_highest_priority_first(HttpStack(spread))
    (worker,) = live_workers(spread).values()
    assert worker["broker_node"] in {f"127.0.0.1:{port}" for port in harness["CLUSTER_AMQP_PORTS"].split()}, worker
    print(f"\nthe worker consumes from {worker['broker_node']}")


@dataclass
class Stream:
    """Submissions one after another, each with its own Idempotency-Key (the same one again after a 503 or a
    timeout), recording when each answer came and what it was."""

    base: str
    http: requests.Session
    answers: list[tuple[float, int, bool]] = field(default_factory=list)  # (time, status or 0 for no answer, Retry-After)
    accepted: dict[str, str] = field(default_factory=dict)
    refusals: int = 0
    gave_up: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> threading.Thread:
        def loop():
            while not self.stop.is_set():
                key = uuid.uuid4().hex
                while not self.stop.is_set():
                    try:
                        resp = self.http.post(
                            f"{self.base}/v1/runs",
                            json={"processor": "echo", "payload": {"key": key}},
                            headers={"Idempotency-Key": key},
                            timeout=10,
                        )
                        self.answers.append((time.monotonic(), resp.status_code, "retry-after" in resp.headers))
                        if resp.status_code in (200, 201):
                            self.accepted[key] = resp.json()["id"]
                            break
                    except requests.RequestException:
                        self.answers.append((time.monotonic(), 0, False))
                    self.refusals += 1
                    time.sleep(0.2)
                else:
                    if key not in self.accepted:
                        self.gave_up.append(key)  # stopped while refused: never accepted, nothing to count
                time.sleep(0.05)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread


def test_sigkill_the_rabbitmq_node_the_publisher_is_on(spread, harness):
    start_spread(spread)
    stream = Stream(spread.base, spread.http)
    thread = stream.run()
    wait_until(lambda: len(stream.accepted) >= 20, timeout=60, what="submissions before the kill")
    port = node_port(spread)
    node = harness["CLUSTER_AMQP_PORTS"].split().index(str(port)) + 1
    killed_at = time.monotonic()
    cluster_sh("kill-node", str(node))
    try:
        wait_until(
            lambda: any(t > killed_at and status == 201 for t, status, _ in stream.answers),
            timeout=30,
            what="a submission accepted after the kill",
        )
        time.sleep(10)  # a stream on the surviving nodes
        assert node_port(spread) != port
    finally:
        stream.stop.set()
        thread.join(30)
        cluster_sh("start-node", str(node))
    after = [(t - killed_at, status, retry_after) for t, status, retry_after in stream.answers if t > killed_at]
    first_accepted = min(t for t, status, _ in after if status == 201)
    bad = [(round(t, 2), status) for t, status, retry_after in after if status == 0 or (status >= 500 and not retry_after)]
    stream.gave_up = [key for key in stream.gave_up if key not in stream.accepted]
    ledger = spread.settle(stream)
    refused = sum(1 for _, status, _ in after if status != 201)
    print(f"failover: node {node} killed; first accepted {first_accepted:.2f}s after; {len(after)} answers after it, {refused} refused")
    assert first_accepted <= FAILOVER_SECONDS, after[:20]
    assert bad == [], f"answers that were neither accepted nor 503 + Retry-After: {bad}"
    assert ledger["lost"] == 0 and ledger["ended_twice"] == 0 and ledger["stuck"] == 0, ledger
    assert ledger["states"] == {"succeeded": ledger["accepted"]}, ledger


def test_sigkill_a_worker_host_with_runs_in_flight(spread):
    start_spread(spread)
    ids = [HttpStack(spread).submit("sleep", {"seconds": 6})["id"] for _ in range(6)]
    host1_engine = docker.DockerClient(base_url=engine_script("url", HOSTS["host1"][0]), timeout=30)

    def in_flight() -> list[str]:
        # Runs on host1 whose containers exist: a run is claimed (running) a moment before its container is made.
        made = {c.attrs["Labels"]["dockyard.run_id"] for c in spread.leftover_containers(host1_engine)}
        return [run_id for run_id in spread.running_on("host1") if run_id in made]

    victims = wait_until(in_flight, timeout=60, interval=0.1, what="runs in flight on host1, their containers made")
    # The host dies: its worker and its Docker engine at once.
    spread.signal("host1", signal.SIGKILL)
    spread.procs["host1"].wait(timeout=10)
    engine_script("kill", HOSTS["host1"][0])
    wait_until(lambda: "host1" not in live_workers(spread), timeout=30, what="host1 to show as lost")
    states = {w["name"]: w["state"] for w in spread.http.get(f"{spread.base}/v1/workers", timeout=10).json()["items"]}
    assert states == {"host1": "lost", "host2": "live"}, states

    class Accepted:
        accepted = {run_id: run_id for run_id in ids}
        refusals = 0
        gave_up: list = []

    ledger = spread.settle(Accepted)
    assert_nothing_lost(ledger)
    assert ledger["states"] == {"succeeded": len(ids)}, ledger
    for run_id in victims:
        attempts = spread.query("SELECT worker, outcome FROM run_attempts WHERE run_id = %s ORDER BY number", (run_id,))
        assert attempts[0] == ("host1", "worker_lost") and attempts[-1] == ("host2", "succeeded"), attempts

    # The host comes back: its engine still holds the containers of the lost attempts, and its worker removes them.
    engine, subnet = HOSTS["host1"]
    returned = start_engine(engine, subnet).client()
    leftovers = spread.leftover_containers(returned)
    assert {c.attrs["Labels"]["dockyard.run_id"] for c in leftovers} >= set(victims), leftovers
    start_host_worker(spread, "host1", engine)
    wait_until(lambda: spread.leftover_containers(returned) == [], timeout=60, what="host1's worker to remove its leftovers")
    print(f"host1 came back and removed {len(leftovers)} leftover container(s)")


@pytest.fixture
def unreachable_registry(tmp_path, sample_processors):
    """The echo image in a registry of its own, pulled into host1's engine and then made unreachable:
    host1 has the image, host2 cannot pull it. Yields the pinned reference."""
    port = free_registry_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        yaml.safe_dump(
            {"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}}, "http": {"addr": f"127.0.0.1:{port}"}}
        )
    )
    registry = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: registry_answers(port), timeout=30, what="the second registry")
        local = docker.from_env()
        image = local.images.get(sample_processors["echo"]["image"])
        repository = f"127.0.0.1:{port}/dockyard/echo-elsewhere"
        image.tag(repository, "v1")
        for line in local.images.push(repository, "v1", stream=True, decode=True):
            assert "error" not in line, line
        digest = next(d for d in local.images.get(f"{repository}:v1").attrs["RepoDigests"] if d.startswith(repository))
        engine = docker.DockerClient(base_url=engine_script("url", HOSTS["host1"][0]), timeout=60)
        engine.images.pull(repository, tag=digest.split("@", 1)[1])
    finally:
        registry.terminate()
        registry.wait(10)
    yield digest


def free_registry_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_a_host_that_cannot_pull_the_image_leaves_no_run_stuck(spread, sample_processors, unreachable_registry):
    start_spread(spread)
    spec = {k: v for k, v in sample_processors["echo"].items() if k != "name"}
    spec.update(image=unreachable_registry, retry={"backoff_min_seconds": 1, "backoff_max_seconds": 2})
    resp = spread.http.put(f"{spread.base}/v1/processors/echo-elsewhere", json=spec, timeout=10)
    assert resp.status_code in (200, 201), resp.text
    ids = [HttpStack(spread).submit("echo-elsewhere", {"i": i})["id"] for i in range(8)]

    class Accepted:
        accepted = {run_id: run_id for run_id in ids}
        refusals = 0
        gave_up: list = []

    ledger = spread.settle(Accepted)
    assert ledger["lost"] == 0 and ledger["ended_twice"] == 0 and ledger["stuck"] == 0, ledger
    attempts = spread.query("SELECT worker, outcome, log_tail FROM run_attempts WHERE run_id = ANY(%s)", (ids,))
    failed_pulls = [a for a in attempts if a[0] == "host2" and a[1] == "infrastructure_error"]
    print(f"\nattempts: {len(attempts)}; failed pulls on host2: {len(failed_pulls)}; states: {ledger['states']}")
    assert all(a[0] == "host1" for a in attempts if a[1] == "succeeded"), attempts
    # Each run either ran where the image is, or ended saying why it could not be pulled.
    for run_id in ids:
        state, reason, message = spread.query("SELECT state, error_reason, error_message FROM runs WHERE id = %s", (run_id,))[0]
        assert state == "succeeded" or (state == "dead_letter" and reason == "infrastructure_error"), (run_id, state, reason, message)
    assert failed_pulls, "host2 should have tried, and failed, to pull the image"
