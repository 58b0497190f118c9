"""The worker's Docker engine client, made in one place."""

from __future__ import annotations

import docker

from settings import Settings


def engine_client(settings: Settings, *, timeout: float | None = None) -> docker.DockerClient:
    """A client of the engine at DOCKYARD_DOCKER_URL (`timeout`: seconds per call, docker-py's default if None)."""
    client = docker.DockerClient(base_url=settings.docker_url, **({} if timeout is None else {"timeout": timeout}))
    if client.api.base_url.startswith("http+docker://"):
        # NOTE: a local socket has no proxy and no netrc: left on, requests reads
        # the proxy variables and looks for ~/.netrc on every call, about a tenth
        # of the worker's CPU per run.
        client.api.trust_env = False
    return client
