"""The app image (infra/Dockerfile), built by infra/dev/image.sh and run: release, web, worker and scheduler
containers of the one image, on the local Postgres, RabbitMQ and Docker engine, take a run to succeeded and
each reports healthy through the image's own HEALTHCHECK.

No base image can be pulled here: make test builds one from Debian's packages (infra/dev/base-image.sh).
Where no base image is on the engine, these tests are skipped with the reason; nothing else is."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid

import docker
import pytest

from tests.conftest import api_session, cli_key, required_env, unique, wait_ready, wait_until
from tests.e2e.test_procfile import ROOT, free_port, isolated_settings, procfile, remove_containers_of
from tests.integration.conftest import delete_queues, fresh_postgres_database

pytestmark = pytest.mark.e2e

BASES = ("python:3.11-slim-bookworm", "dockyard/python-base:3.11-bookworm")
HEALTHCHECK = ["CMD", "python", "-m", "telemetry.healthcheck"]


def local_base(client: docker.DockerClient) -> str | None:
    """$BASE_IMAGE, or the first of BASES the engine has."""
    for name in [os.environ["BASE_IMAGE"]] if os.environ.get("BASE_IMAGE") else BASES:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.get(name)
            return name
    return None


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    client = docker.from_env()
    base = local_base(client)
    if base is None:
        pytest.skip(
            f"no base image for infra/Dockerfile on this Docker engine (looked for {', '.join(BASES)}): Docker Hub is out of "
            "reach and infra/dev/base-image.sh did not build one (make test runs it; its output says why)"
        )
    tag = f"dockyard:test-{uuid.uuid4().hex[:8]}"
    # A certificate for the build stage to trust, as behind a TLS-inspecting proxy: it must not reach the image.
    marker = tmp_path_factory.mktemp("ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=dockyard build-only CA",
         "-keyout", "key.pem", "-out", "ca.pem"],
        cwd=marker, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    extra_ca = (marker / "ca.pem").read_text()
    built = subprocess.run(
        [ROOT / "infra/dev/image.sh", tag],
        env={**os.environ, "BASE_IMAGE": base, "EXTRA_CA_CERTS": extra_ca},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    print(built.stderr.strip().splitlines()[-1])  # "[image] built ... in N s: M MB": the size, in the log of a run with -s
    try:
        yield {"tag": tag, "base": base, "client": client, "extra_ca": extra_ca}
    finally:
        client.images.remove(tag, force=True)


def test_the_image_runs_as_an_unprivileged_user_with_a_healthcheck_and_no_build_tools(image):
    client, tag = image["client"], image["tag"]
    config = client.images.get(tag).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Healthcheck"]["Test"] == HEALTHCHECK
    assert "8000/tcp" in config["ExposedPorts"]
    # The default command is the Procfile's web, exec'd so that gunicorn gets SIGTERM itself.
    assert config["Cmd"] == ["sh", "-c", "exec " + procfile()["web"]]
    body_line = image["extra_ca"].splitlines()[5]  # a line of the certificate's base64 body, unlike any other certificate's
    probe = (
        "id -u; dockyard --version; echo --; ls /opt/dockyard/bin; echo --; command -v cc gcc make git; echo --; ls -A /app; echo --; "
        f"grep -rlF '{body_line}' /etc/ssl /opt/dockyard /usr/local/share/ca-certificates /tmp 2>/dev/null; echo --"
    )
    head, venv_bin, tools, app, certificates, _ = (
        part.strip() for part in client.containers.run(tag, ["sh", "-c", probe], remove=True).decode().split("--\n")
    )
    user, version = head.splitlines()
    assert (user, version) == ("10001", "dockyard 0.1.0")
    assert {"dockyard", "gunicorn", "python"} <= set(venv_bin.split()) and not {"pip", "pip3"} & set(venv_bin.split())
    assert tools == ""  # no compiler or build tools
    assert app == ".dockyard"  # no source tree: Dockyard is in the virtual environment
    # The certificate the build stage trusted is not in the image, nor in its history.
    assert certificates == ""
    history = " ".join(layer["CreatedBy"] for layer in client.api.history(tag))
    assert "CERTIFICATE" not in history and "EXTRA_CA_CERTS" not in history
    # What the image adds to its base (the virtual environment: Dockyard and requirements.lock) stays small.
    added = client.images.get(tag).attrs["Size"] - client.images.get(image["base"]).attrs["Size"]
    assert added < 120e6, f"infra/Dockerfile adds {added / 1e6:.0f} MB to {image['base']}"


def health_of(client: docker.DockerClient, name: str) -> str:
    return client.containers.get(name).attrs["State"].get("Health", {}).get("Status", "none")


def test_release_web_worker_and_scheduler_containers_run_a_run_and_report_healthy(image, tmp_path):
    client, tag = image["client"], image["tag"]
    broker_url = required_env("DOCKYARD_BROKER_URL")
    queue = unique("image_runs")
    port = free_port()
    socket_gid = os.stat("/var/run/docker.sock").st_gid
    with fresh_postgres_database() as database_url:
        env = {**isolated_settings(database_url, broker_url, queue), "PORT": str(port)}
        # Host networking: the services listen on this host's loopback, as the test's own processes do.
        common = {"network_mode": "host", "environment": env}
        client.containers.run(tag, ["dockyard", "migrate"], remove=True, **common)
        manifest = required_env("TEST_PROCESSORS_MANIFEST")
        client.containers.run(
            tag,
            ["dockyard", "processors", "apply", "/manifest.yaml"],
            remove=True,
            volumes={manifest: {"bind": "/manifest.yaml", "mode": "ro"}},
            **common,
        )
        names = {role: unique(f"dockyard_image_{role}") for role in ("web", "worker", "scheduler")}
        # The image's HEALTHCHECK as it is, checked every second instead of every 30 s.
        health = {"healthcheck": {"test": HEALTHCHECK, "interval": 1_000_000_000, "timeout": 5_000_000_000, "retries": 3}}
        try:
            client.containers.run(tag, name=names["web"], detach=True, **health, **common)
            client.containers.run(
                tag,
                ["python", "-m", "actors", "actors.worker"],
                name=names["worker"],
                detach=True,
                volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}},
                group_add=[str(socket_gid)],
                **health,
                **common,
            )
            client.containers.run(tag, ["python", "-m", "scheduling"], name=names["scheduler"], detach=True, **health, **common)
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, timeout=90)
            http = api_session(cli_key({**os.environ, **env}))
            run = http.post(f"{base}/v1/runs", json={"processor": "echo", "payload": {"from": "the image"}}, timeout=10).json()

            def ended():
                state = http.get(f"{base}/v1/runs/{run['id']}", timeout=10).json()
                return state if state["state"] in ("succeeded", "failed", "dead_letter", "timed_out") else None

            final = wait_until(ended, timeout=90, interval=0.5, what="the run")
            assert (final["state"], final["result"]) == ("succeeded", {"from": "the image"}), final
            for role, name in names.items():
                wait_until(lambda name=name: health_of(client, name) == "healthy", timeout=60, what=f"{role} healthy")
            # The probe names what answered.
            probe = client.containers.get(names["worker"]).attrs["State"]["Health"]["Log"][-1]["Output"]
            assert f"worker answers http://127.0.0.1:{env['DOCKYARD_WORKER_METRICS_PORT']}/metrics" in probe
            # SIGTERM reaches each process (web's gunicorn is exec'd, not behind a shell): each exits 0 in time.
            for role, name in names.items():
                container = client.containers.get(name)
                container.stop(timeout=60)
                assert container.wait(timeout=10)["StatusCode"] == 0, f"{role}: {container.logs(tail=30).decode()}"
        except Exception:
            for role, name in names.items():
                with contextlib.suppress(docker.errors.NotFound):
                    print(f"--- {role} ---\n{client.containers.get(name).logs(tail=60).decode(errors='replace')}")
            raise
        finally:
            for name in names.values():
                with contextlib.suppress(docker.errors.NotFound):
                    client.containers.get(name).remove(force=True)
            remove_containers_of(database_url)
            delete_queues(broker_url, queue)
            delete_queues(broker_url, f"{queue}.housekeeping")
