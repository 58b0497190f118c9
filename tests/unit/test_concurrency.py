"""The worker's thread count and Dramatiq options when the command line does not give them (actors/concurrency.py)."""

import pytest

import actors.__main__ as entry
from actors.concurrency import MAX_THREADS, choose_threads, dramatiq_arguments


def test_threads_are_two_per_engine_cpu_unless_configured():
    assert choose_threads(0, lambda: 2) == (4, "2 per CPU of the Docker engine's 2")
    assert choose_threads(0, lambda: 1)[0] == 2
    assert choose_threads(0, lambda: 64)[0] == MAX_THREADS
    assert choose_threads(3, lambda: 1 / 0) == (3, "DOCKYARD_WORKER_THREADS")  # the engine is not even asked


def test_an_engine_that_does_not_answer_falls_back_to_this_hosts_cpus(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 3)

    def down():
        raise ConnectionError("connection refused")

    threads, why = choose_threads(0, down)
    assert threads == 6 and "this host's 3" in why and "connection refused" in why


def test_dockyard_fills_in_only_what_the_command_line_leaves_out():
    assert dramatiq_arguments(["actors.worker"], 4, 25) == [
        "actors.worker",
        *("--processes", "1", "--threads", "4", "--worker-shutdown-timeout", "55000"),
    ]
    given = ["actors.worker", "-p", "2", "--threads=3", "--worker-shutdown-timeout", "90000"]
    assert dramatiq_arguments(given, 4, 25) == given


@pytest.fixture
def started(monkeypatch):
    """Run the entry point up to Dramatiq's own main, and return the arguments it would start with."""
    seen = {}
    monkeypatch.setattr(entry.cli, "main", lambda args: seen.update(args=args) or 0)
    monkeypatch.setattr(entry, "engine_cpus", lambda settings: 2)
    for name in ("DOCKYARD_WORKER_THREADS", "dramatiq_queue_prefetch"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(entry.os, "environ", dict(entry.os.environ))

    def start(*argv, **env):
        entry.os.environ.update(env)
        assert entry.main(["actors.worker", *argv]) == 0
        return seen["args"]

    return start


def test_the_worker_runs_two_threads_per_engine_cpu_with_a_prefetch_to_match(started):
    args = started()
    assert (args.processes, args.threads, args.worker_shutdown_timeout) == (1, 4, 55000)
    assert entry.os.environ["DOCKYARD_WORKER_THREADS"] == "4" and entry.os.environ["dramatiq_queue_prefetch"] == "8"


def test_the_setting_or_the_option_decides_the_threads(started):
    assert started(DOCKYARD_WORKER_THREADS="3").threads == 3
    assert started("--threads", "5").threads == 5
    assert entry.os.environ["DOCKYARD_WORKER_THREADS"] == "5"
