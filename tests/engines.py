"""Extra Docker engines on this machine for the tests: a dockerd with its own data, exec root, socket and
bridge (and, asked for, a TLS listener with certificates made here by openssl)."""

from __future__ import annotations

import contextlib
import ipaddress
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import docker

READY_SECONDS = 60


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
    log: pathlib.Path

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.socket_url, timeout=30)


def _bridge(name: str, subnet: ipaddress.IPv4Network) -> None:
    subprocess.run(["ip", "link", "del", name], capture_output=True)
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", f"{next(subnet.hosts())}/{subnet.prefixlen}", "dev", name], check=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True)


@contextlib.contextmanager
def extra_engine(name: str, subnet: str, *, tls: Certificates | None = None, tcp_port: int | None = None) -> Iterator[Engine]:
    """A dockerd named `name` (a few letters: it names its bridge and directories), its containers on a bridge of
    its own in `subnet`, listening on its own unix socket, and with `tls` on tcp://127.0.0.1:`tcp_port`
    (--tlsverify: only clients with a certificate of the same CA get in). Stopped and removed on exit."""
    # NOTE: never --bridge=none on a shared host: that dockerd deletes the host's docker0, and the
    # main engine then fails every bridged container. Each engine gets a bridge of its own.
    bridge = f"{name}br0"
    run_dir = pathlib.Path(f"/run/{name}")
    data_dir = pathlib.Path(f"/var/tmp/{name}-data")
    for stale in (run_dir, data_dir):
        shutil.rmtree(stale, ignore_errors=True)
    run_dir.mkdir(parents=True)
    data_dir.mkdir(parents=True)
    (run_dir / "daemon.json").write_text("{}")
    _bridge(bridge, ipaddress.ip_network(subnet))
    socket_url = f"unix://{run_dir}/docker.sock"
    command = [
        "dockerd", "--host", socket_url, "--data-root", str(data_dir), "--exec-root", str(run_dir / "exec"),
        "--pidfile", str(run_dir / "docker.pid"), "--config-file", str(run_dir / "daemon.json"),
        "--bridge", bridge, "--iptables=false", "--ip-masq=false",
    ]  # fmt: skip
    tcp_url = None
    if tls is not None:
        assert tcp_port, "a TLS engine needs a tcp_port"
        tcp_url = f"tcp://127.0.0.1:{tcp_port}"
        command += ["--host", tcp_url, "--tlsverify", "--tlscacert", str(tls.ca), "--tlscert", str(tls.server_cert),
                    "--tlskey", str(tls.server_key)]  # fmt: skip
    log = run_dir / "dockerd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    engine = Engine(name, socket_url, tcp_url, log)
    try:
        _wait_ready(engine, proc)
        yield engine
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait_ready(engine: Engine, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"dockerd {engine.name} exited {proc.returncode}:\n{engine.log.read_text()[-3000:]}")
        try:
            engine.client().ping()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd {engine.name} not ready after {READY_SECONDS}s:\n{engine.log.read_text()[-3000:]}") from None
            time.sleep(0.5)
