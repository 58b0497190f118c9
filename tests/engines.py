"""Extra Docker engines on this machine for the tests, through infra/dev/engine.sh: a dockerd with its own data,
exec root, socket and bridge (and, asked for, a TLS listener with certificates made here by openssl)."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import docker

ENGINE_SH = pathlib.Path(__file__).resolve().parents[1] / "infra" / "dev" / "engine.sh"


@dataclass(frozen=True)
class Certificates:
    ca: pathlib.Path
    server_cert: pathlib.Path
    server_key: pathlib.Path
    client_cert: pathlib.Path
    client_key: pathlib.Path


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: pathlib.Path) -> Certificates:
    """A CA, a server certificate for 127.0.0.1 (serverAuth) and a client certificate (clientAuth), signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dockyard test CA",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=directory)  # fmt: skip
    for who, usage, extra in (("server", "serverAuth", "subjectAltName=IP:127.0.0.1\n"), ("client", "clientAuth", "")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=dockyard test {who}",
                 "-keyout", f"{who}-key.pem", "-out", f"{who}.csr", cwd=directory)  # fmt: skip
        (directory / f"{who}.ext").write_text(f"extendedKeyUsage={usage}\n{extra}")
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
                 "-extfile", f"{who}.ext", "-out", f"{who}.pem", cwd=directory)  # fmt: skip
    return Certificates(
        directory / "ca.pem", directory / "server.pem", directory / "server-key.pem", directory / "client.pem", directory / "client-key.pem"
    )


@dataclass
class Engine:
    name: str
    socket_url: str  # unix:// socket, no TLS: what the test itself drives the engine with
    tcp_url: str | None  # tcp://127.0.0.1:port with --tlsverify, when asked for

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.socket_url, timeout=30)

    def kill(self) -> None:
        """SIGKILL its dockerd and containerd, as when its host dies (containers are left as they were)."""
        engine_script("kill", self.name)


def engine_script(*args: str) -> str:
    done = subprocess.run([str(ENGINE_SH), *args], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"infra/dev/engine.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def start_engine(name: str, subnet: str, *, tls: Certificates | None = None, tcp_port: int | None = None) -> Engine:
    """Start (or start again, with its data) engine `name` through infra/dev/engine.sh; it answers when this returns."""
    extra = [str(tls.ca.parent), str(tcp_port)] if tls is not None else []
    engine_script("up", name, subnet, *extra)
    return Engine(name, engine_script("url", name), f"tcp://127.0.0.1:{tcp_port}" if tls is not None else None)


@contextlib.contextmanager
def extra_engine(name: str, subnet: str, *, tls: Certificates | None = None, tcp_port: int | None = None) -> Iterator[Engine]:
    """An engine of its own (infra/dev/engine.sh): its containers on a bridge of its own in `subnet`, on its own unix
    socket, and with `tls` on tcp://127.0.0.1:`tcp_port` (--tlsverify: only clients with a certificate of the same CA
    get in). Stopped and removed, with its containers and data, on exit."""
    engine_script("down", name)  # what an interrupted run may have left
    try:
        yield start_engine(name, subnet, tls=tls, tcp_port=tcp_port)
    finally:
        engine_script("down", name)
