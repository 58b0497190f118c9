"""A run goes from HTTP to its own container and back, on RabbitMQ, Postgres and Docker."""

from __future__ import annotations

import re

import prometheus_client

from tests.conftest import parse_ts, unique, wait_until


def test_echo_succeeds_with_result_logs_attempt_and_events(stack):
    run = stack.submit("echo", {"hello": "world", "n": [1, 2]})
    done = stack.wait_state(run["id"])
    assert done["state"] == "succeeded", done
    assert done["result"] == {"hello": "world", "n": [1, 2]}
    assert done["exit_code"] == 0 and done["error"] is None and done["attempts"] == 1
    logs = stack.client.simulate_get(f"/v1/runs/{run['id']}/logs").text
    assert f"echo: attempt 1 of run {run['id']}" in logs
    [attempt] = stack.client.simulate_get(f"/v1/runs/{run['id']}/attempts").json["items"]
    assert attempt["outcome"] == "succeeded" and attempt["worker"] == "it-worker" and attempt["container_id"]
    events = stack.client.simulate_get(f"/v1/runs/{run['id']}/events").json["items"]
    assert [(e["from_state"], e["to_state"]) for e in events] == [(None, "queued"), ("queued", "running"), ("running", "succeeded")]
    assert stack.containers_of(run["id"]) == []


def test_nonzero_exit_fails_with_exit_code_and_error(stack):
    run = stack.wait_state(stack.submit("fail", {"exit_code": 3})["id"])
    assert run["state"] == "failed"
    assert run["exit_code"] == 3
    assert run["error"]["reason"] == "exit_code" and "3" in run["error"]["message"]
    assert "fail: exiting with code 3" in stack.client.simulate_get(f"/v1/runs/{run['id']}/logs").text


def test_run_past_its_timeout_is_killed_in_time_and_leaves_no_container(stack):
    run = stack.submit("sleep", {"seconds": 60}, timeout_seconds=2)
    done = stack.wait_state(run["id"], timeout=30)
    assert done["state"] == "timed_out", done
    assert done["error"]["reason"] == "timed_out"
    took = parse_ts(done["finished_at"]) - parse_ts(done["started_at"])
    assert took.total_seconds() <= 2 + 2, took
    assert stack.containers_of(run["id"]) == []
    [attempt] = stack.client.simulate_get(f"/v1/runs/{run['id']}/attempts").json["items"]
    assert attempt["outcome"] == "timed_out"


def test_memory_hog_is_oom_killed(stack):
    run = stack.wait_state(stack.submit("hog", {"megabytes": 512})["id"], timeout=60)
    assert run["state"] == "failed", run
    assert run["error"]["reason"] == "oom_killed"
    [attempt] = stack.client.simulate_get(f"/v1/runs/{run['id']}/attempts").json["items"]
    assert attempt["outcome"] == "oom_killed"


def test_each_attempt_records_what_its_container_used(stack, sample_processors):
    """The hog's peak memory is within 20% of what it allocated; a CPU-burning run's CPU seconds within
    20% of the time it burned; the run sums them, and the worker's histograms count them."""
    megabytes = 40
    hog = stack.wait_state(stack.submit("hog", {"megabytes": megabytes})["id"], timeout=60)
    assert hog["state"] == "succeeded", hog
    [attempt] = stack.client.simulate_get(f"/v1/runs/{hog['id']}/attempts").json["items"]
    allocated = megabytes * 2**20
    assert 0.8 * allocated <= attempt["peak_memory_bytes"] <= 1.2 * allocated, attempt
    assert hog["peak_memory_bytes"] == attempt["peak_memory_bytes"]

    burn_seconds = 2
    stack.register(
        "burner",
        {
            "image": sample_processors["echo"]["image"],
            "command": ["/bin/sh", "-c", f"timeout {burn_seconds} sh -c 'while :; do :; done'; echo DOCKYARD_RESULT null"],
            "timeout_seconds": 30,
            "resources": {"cpus": 1.0, "memory_mb": 16, "pids": 16},
        },
    )
    burner = stack.wait_state(stack.submit("burner")["id"], timeout=60)
    assert burner["state"] == "succeeded", burner
    [attempt] = stack.client.simulate_get(f"/v1/runs/{burner['id']}/attempts").json["items"]
    assert 0.8 * burn_seconds <= attempt["cpu_seconds"] <= 1.2 * burn_seconds, attempt
    assert burner["cpu_seconds"] == attempt["cpu_seconds"]
    exported = prometheus_client.generate_latest().decode()
    assert 'dockyard_attempt_cpu_seconds_count{processor="burner"} 1.0' in exported
    assert 'dockyard_attempt_peak_memory_bytes_count{processor="hog"}' in exported


def test_image_not_matching_its_pin_is_refused_and_never_started(stack, sample_processors):
    echo_repo = sample_processors["echo"]["image"].split("@")[0]
    other_digest = sample_processors["sleep"]["image"].split("@")[1]
    pins = {
        "impostor": f"{echo_repo}@{other_digest}",  # a real digest, but not of this repository
        "ghost": "sha256:" + "0" * 64,  # a local image id nobody has
    }
    for name, pin in pins.items():
        stack.register(name, {"image": pin, "timeout_seconds": 10})
        run = stack.wait_state(stack.submit(name)["id"])
        assert run["state"] == "failed", run
        assert run["error"]["reason"] == "image_refused"
        assert pin.split("@")[-1] in run["error"]["message"] or "not present" in run["error"]["message"]
        [attempt] = stack.client.simulate_get(f"/v1/runs/{run['id']}/attempts").json["items"]
        assert attempt["container_id"] is None
        assert stack.containers_of(run["id"]) == []


def _marked_image(stack, base: str, mark: str, repository: str, tag: str):
    """An image made from `base` that differs only by MARK=`mark`, tagged `repository:tag` (same name, new digest)."""
    container = stack.docker.containers.create(base, command=["true"])
    try:
        return container.commit(repository=repository, tag=tag, changes=[f"ENV MARK={mark}"])
    finally:
        container.remove(force=True)


def _pushed_digest(stack, repository: str, tag: str) -> str:
    for line in stack.docker.images.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in line, line
    return stack.docker.images.get(f"{repository}:{tag}").attrs["RepoDigests"][0].split("@")[1]


def test_a_retagged_image_with_the_same_name_but_another_digest_never_runs(stack, sample_processors):
    """The pin decides, never the name: a registry pin whose tag moved to another image (in the
    registry and on the engine) still runs the pinned digest; a local image id pin whose image is gone
    is refused with an explicit error, though its name now names another image."""
    base = sample_processors["echo"]["image"]
    repository = f"{base.split('/')[0]}/dockyard/{unique('retag')}"
    show_mark = {"command": ["sh", "-c", "echo mark=$MARK"], "timeout_seconds": 30}

    # A registry pin: v1 is pushed, pinned, then moved to another image (in the registry and locally).
    approved = _marked_image(stack, base, "approved", repository, "v1")
    digest = _pushed_digest(stack, repository, "v1")
    impostor = _marked_image(stack, base, "impostor", repository, "v1")
    assert _pushed_digest(stack, repository, "v1") != digest
    stack.docker.images.remove(approved.id, force=True)  # only the impostor is left on the engine under that name
    stack.register("retagged", {"image": f"{repository}:v1@{digest}", **show_mark})
    run = stack.wait_state(stack.submit("retagged")["id"])
    assert run["state"] == "succeeded", run
    logs = stack.client.simulate_get(f"/v1/runs/{run['id']}/logs").text
    assert "mark=approved" in logs and "impostor" not in logs  # pulled by digest, whatever v1 now names

    # A local image id pin: the approved image is gone, the same name now names the impostor.
    local = _marked_image(stack, base, "local-approved", repository, "local")
    stack.register("swapped", {"image": local.id, **show_mark})
    assert stack.wait_state(stack.submit("swapped")["id"])["state"] == "succeeded"
    local_impostor = _marked_image(stack, base, "impostor", repository, "local")  # the tag moves to the impostor
    stack.docker.images.remove(local.id, force=True)
    run = stack.wait_state(stack.submit("swapped")["id"])
    assert (run["state"], run["error"]["reason"]) == ("failed", "image_refused"), run
    assert run["error"]["message"] == f"image {local.id} is not present on this worker"
    assert f"refused: image {local.id} is not present" in stack.client.simulate_get(f"/v1/runs/{run['id']}/logs").text
    assert stack.containers_of(run["id"]) == []  # nothing started
    for image in (impostor, local_impostor):
        stack.docker.images.remove(image.id, force=True)
    stack.docker.images.remove(f"{repository}@{digest}", force=True)  # what the worker pulled by the pin


def test_container_gets_the_contract_hardening_and_env(stack, sample_processors):
    probe = (
        "cat > /tmp/payload; id -u; touch /oops 2>/dev/null || echo ro-root; touch /tmp/ok && echo tmp-ok; "
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; ls /sys/class/net; env | grep -E '^(DOCKYARD_|TRACEPARENT|GREETING)' | sort; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null; "
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null; echo DOCKYARD_RESULT $(cat /tmp/payload)"
    )
    stack.register(
        "probe",
        {
            "image": sample_processors["echo"]["image"],
            "command": ["/bin/sh", "-c", probe],
            "timeout_seconds": 10,
            "resources": {"memory_mb": 32, "pids": 20, "cpus": 0.5},
            "env": {"GREETING": "hi"},
        },
    )
    run = stack.wait_state(stack.submit("probe", {"k": "v"})["id"])
    assert run["state"] == "succeeded", run
    assert run["result"] == {"k": "v"}
    lines = stack.client.simulate_get(f"/v1/runs/{run['id']}/logs").text.splitlines()
    assert lines[0] == "65534"
    assert "ro-root" in lines and "tmp-ok" in lines
    assert "CapEff:\t0000000000000000" in lines and "NoNewPrivs:\t1" in lines
    assert "lo" in lines and "eth0" not in lines
    assert f"DOCKYARD_RUN_ID={run['id']}" in lines and "DOCKYARD_ATTEMPT=1" in lines and "DOCKYARD_PROCESSOR=probe" in lines
    assert "GREETING=hi" in lines
    # The container span's context, in the run's trace.
    assert any(re.fullmatch(rf"TRACEPARENT=00-{run['trace_id']}-[0-9a-f]{{16}}-0[01]", line) for line in lines), lines
    assert lines.count(str(32 * 1024 * 1024)) == 2, "memory limit and memory+swap limit are both 32 MB"
    assert "20" in lines


def test_logs_are_readable_while_the_run_is_running(stack):
    run = stack.submit("sleep", {"seconds": 4})
    stack.wait_state(run["id"], {"running"})
    wait_until(
        lambda: "slept 1 of 4 seconds" in stack.client.simulate_get(f"/v1/runs/{run['id']}/logs").text,
        timeout=10,
        what="log lines while running",
    )
    assert stack.get(run["id"])["state"] == "running"
    assert stack.wait_state(run["id"])["state"] == "succeeded"


def test_follow_streams_logs_until_the_run_ends(stack):
    run = stack.submit("sleep", {"seconds": 2})
    stack.wait_state(run["id"], {"running"})
    resp = stack.client.simulate_get(f"/v1/runs/{run['id']}/logs", params={"follow": "true"})
    assert resp.status_code == 200
    assert "slept 0 of 2 seconds" in resp.text and "slept 1 of 2 seconds" in resp.text
    assert 'DOCKYARD_RESULT {"slept_seconds": 2}' in resp.text
    assert stack.get(run["id"])["state"] == "succeeded"
