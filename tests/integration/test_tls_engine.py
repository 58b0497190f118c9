"""A worker on a remote Docker engine over TLS: a second dockerd on this machine, listening on TCP with
--tlsverify and certificates this test makes; the worker's client is made from the DOCKYARD_DOCKER_TLS_* settings."""

from __future__ import annotations

import socket

import docker.errors
import pytest
import requests.exceptions

from actors.engine import engine_client
from settings import Settings
from tests.engines import extra_engine, make_certificates
from tests.integration.conftest import running_stack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory, sample_processors):
    """The TLS engine, with the sample images pulled into it by digest from the local registry."""
    certificates = make_certificates(tmp_path_factory.mktemp("tls"))
    with extra_engine("dytls", "10.231.7.0/24", tls=certificates, tcp_port=free_port()) as engine:
        local = engine.client()
        for name in ("echo", "fail"):
            local.images.pull(sample_processors[name]["image"])
        local.close()
        yield engine, certificates


def tls_settings(engine, certificates, **changes) -> Settings:
    # The CA as a path, the client's certificate and key as PEM text (how a PaaS's config vars hold them).
    return Settings(
        docker_url=engine.tcp_url,
        docker_tls_ca=str(certificates.ca),
        docker_tls_cert=certificates.client_cert.read_text(),
        docker_tls_key=certificates.client_key.read_text(),
    ).replace(**changes)


def test_a_worker_runs_runs_on_a_remote_engine_over_tls(tls_engine, sample_processors):
    engine, certificates = tls_engine
    client = engine_client(tls_settings(engine, certificates))
    assert client.api.base_url.startswith("https://127.0.0.1:")
    assert client.info()["Name"] == engine.client().info()["Name"]
    with running_stack(sample_processors, client) as stack:
        # The payload reaches the process on stdin and the output comes back: over TLS, stdin has an
        # attach connection of its own (a TLS socket cannot be half-closed).
        echo = stack.wait_state(stack.submit("echo", {"over": "tls", "blob": "x" * 30_000})["id"], timeout=60)
        assert echo["state"] == "succeeded" and echo["result"] == {"over": "tls", "blob": "x" * 30_000}, echo
        fail = stack.wait_state(stack.submit("fail", {"exit_code": 3})["id"], timeout=60)
        assert (fail["state"], fail["exit_code"]) == ("failed", 3), fail
        logs = stack.client.simulate_get(f"/v1/runs/{fail['id']}/logs").text
        assert logs, "the failing run's output came back over TLS"
        # Every container ran on the TLS engine and was removed there.
        assert client.containers.list(all=True, sparse=True, filters={"label": "dockyard.run_id"}) == []


def test_a_worker_without_a_client_certificate_is_refused(tls_engine):
    engine, certificates = tls_engine
    with pytest.raises((docker.errors.DockerException, requests.exceptions.RequestException)) as refused:
        engine_client(Settings(docker_url=engine.tcp_url, docker_tls_ca=str(certificates.ca)), timeout=10).info()
    assert "certificate" in str(refused.value).lower() or "ssl" in str(refused.value).lower(), refused.value


def test_a_worker_that_does_not_trust_the_engine_refuses_it(tls_engine, tmp_path):
    engine, certificates = tls_engine
    stranger = make_certificates(tmp_path / "other")  # another CA: the engine's certificate is not one of its
    with pytest.raises((docker.errors.DockerException, requests.exceptions.RequestException)) as refused:
        engine_client(tls_settings(engine, certificates, docker_tls_ca=str(stranger.ca)), timeout=10).info()
    assert "certificate verify failed" in str(refused.value), refused.value
