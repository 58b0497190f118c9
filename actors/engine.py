"""The worker's Docker engine client, made in one place: a local socket, or a remote engine over TLS."""

from __future__ import annotations

import os
import pathlib
import tempfile

import docker
import docker.constants
import docker.tls

from settings import Settings

PEM_START = "-----BEGIN"


class EngineSettingsError(ValueError):
    """A DOCKYARD_DOCKER_TLS_* value is neither PEM text nor a readable file."""


def engine_client(settings: Settings, *, timeout: float | None = None) -> docker.DockerClient:
    """A client of the engine at DOCKYARD_DOCKER_URL (`timeout`: seconds per call, docker-py's default if None)."""
    kwargs = {} if timeout is None else {"timeout": timeout}
    tls = tls_config(settings)
    if tls is not None:
        return _tls_client(settings.docker_url, tls, kwargs)
    client = docker.DockerClient(base_url=settings.docker_url, **kwargs)
    if client.api.base_url.startswith("http+docker://"):
        # NOTE: a local socket has no proxy and no netrc: left on, requests reads
        # the proxy variables and looks for ~/.netrc on every call, about a tenth
        # of the worker's CPU per run.
        client.api.trust_env = False
    return client


def tls_config(settings: Settings) -> docker.tls.TLSConfig | None:
    """The TLS settings as docker-py takes them (None: no TLS configured). PEM text given in a setting is
    written to a file of its own, readable by this user only, in a private directory."""
    if not (settings.docker_tls_ca or settings.docker_tls_cert):
        return None
    folder: list[pathlib.Path] = []

    def path_of(name: str, value: str) -> str:
        if value.lstrip().startswith(PEM_START):
            if not folder:
                folder.append(pathlib.Path(tempfile.mkdtemp(prefix="dockyard-tls-")))  # mode 0700
            path = folder[0] / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value)
            return str(path)
        if not os.access(value, os.R_OK):
            raise EngineSettingsError(f"DOCKYARD_DOCKER_TLS_{name.upper()}: {value!r} is neither PEM text nor a readable file")
        return value

    ca = path_of("ca", settings.docker_tls_ca) if settings.docker_tls_ca else None
    cert = (path_of("cert", settings.docker_tls_cert), path_of("key", settings.docker_tls_key)) if settings.docker_tls_cert else None
    # Without a CA of its own, the engine's certificate is checked against the system's CAs.
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=ca or True)


def _tls_client(url: str, tls: docker.tls.TLSConfig, kwargs: dict) -> docker.DockerClient:
    # NOTE: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the CA docker-py
    # gives it unless trust_env is off, and docker-py asks the engine for its API
    # version while the client is being made, before trust_env can be turned off.
    # So: ask the version on a client pinned to the oldest version, then make ours.
    probe = docker.APIClient(base_url=url, tls=tls, version=docker.constants.MINIMUM_DOCKER_API_VERSION, **kwargs)
    probe.trust_env = False
    try:
        version = probe.version(api_version=False)["ApiVersion"]
    finally:
        probe.close()
    client = docker.DockerClient(base_url=url, tls=tls, version=version, **kwargs)
    client.api.trust_env = False
    return client
