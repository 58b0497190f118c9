"""The documentation names the settings the code has, and only those: operations.md's table lists every
DOCKYARD_* setting, and no page, manifest or config names one that does not exist."""

from __future__ import annotations

import dataclasses
import pathlib
import re

from settings import PREFIX, Settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
# What a processor's container sees and prints (docs/processors.md): the contract, not settings.
CONTRACT = {"DOCKYARD_RUN_ID", "DOCKYARD_ATTEMPT", "DOCKYARD_PROCESSOR", "DOCKYARD_RESULT"}
NAME = re.compile(r"\bDOCKYARD_[A-Z0-9_]*[A-Z0-9](?:_\*)?")


def setting_names() -> set[str]:
    return {PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}


def documented_files() -> list[pathlib.Path]:
    files = [ROOT / "README.md", ROOT / "Procfile", ROOT / "docker-compose.yml", ROOT / "infra/Dockerfile"]
    files += sorted((ROOT / "docs").rglob("*.md")) + sorted((ROOT / "infra/k8s").glob("*.yaml"))
    return files


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


def test_operations_lists_every_setting_in_its_configuration_table():
    table = section((ROOT / "docs/operations.md").read_text(), "## Configuration")
    rows = {name for line in table.splitlines() if line.startswith("| `DOCKYARD_") for name in NAME.findall(line.split("|")[1])}
    assert setting_names() - rows == set(), "settings missing from docs/operations.md's Configuration table"
    assert rows - setting_names() == set(), "rows of docs/operations.md's Configuration table that are no setting"


def test_no_page_manifest_or_config_names_a_setting_that_does_not_exist():
    known = setting_names() | CONTRACT
    unknown = {}
    for path in documented_files():
        for name in set(NAME.findall(path.read_text())):
            if name.endswith("_*"):
                matched = any(k.startswith(name[:-1]) for k in known)
            else:
                matched = name in known
            if not matched:
                unknown.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert unknown == {}, "named in the docs but not a setting (a settings.py field) nor the processor contract"


def test_the_processor_contract_is_documented():
    text = (ROOT / "docs/processors.md").read_text()
    assert {name for name in CONTRACT if name not in text} == set()


def test_the_paas_walkthrough_sets_what_a_procfile_deploy_cannot_do_without():
    walkthrough = section((ROOT / "docs/deploy.md").read_text(), "## On a PaaS, from the Procfile")
    # The config vars to set: rows of the walkthrough's table.
    table = "\n".join(line for line in walkthrough.splitlines() if line.startswith("| `"))
    set_in_table = {
        "DOCKYARD_DATABASE_URL",  # a dyno's disk is thrown away: no SQLite
        "DOCKYARD_BROKER_URL",
        "DOCKYARD_BROKER_CONSUMER_TIMEOUT_SECONDS",  # a managed broker's consumer_timeout
        "DOCKYARD_DOCKER_URL",  # a dyno has no engine
        "DOCKYARD_DOCKER_TLS_CA",
        "DOCKYARD_DOCKER_TLS_CERT",
        "DOCKYARD_DOCKER_TLS_KEY",
        "DOCKYARD_WORKER_THREADS",
        "PORT",
        "WEB_CONCURRENCY",
    }
    assert {name for name in set_in_table if f"`{name}`" not in table} == set()
    # What the PaaS changes: its SIGTERM window against the worker's grace, and the retries a restart uses.
    for name in ("DOCKYARD_WORKER_SHUTDOWN_GRACE_SECONDS", "DOCKYARD_INFRASTRUCTURE_RETRIES"):
        assert f"`{name}`" in section(walkthrough, "### What the PaaS changes")
    # The process types it describes are the Procfile's.
    procfile = {line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line}
    assert {name for name in procfile if f"| `{name}` |" not in walkthrough} == set()


def test_the_paas_walkthrough_makes_certificates_a_tls_engine_and_its_workers_accept(tmp_path):
    """The walkthrough's openssl commands, run as written: a CA, a server certificate for the host's name
    (serverAuth) and a client certificate (clientAuth), both signed by the CA."""
    import subprocess

    walkthrough = section((ROOT / "docs/deploy.md").read_text(), "## On a PaaS, from the Procfile")
    block = next(b for b in re.findall(r"```sh\n(.*?)```", walkthrough, re.S) if "openssl req -x509" in b)
    subprocess.run(["bash", "-euc", block], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.pem", "server.pem", "client.pem"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert verified.stdout.split() == ["server.pem:", "OK", "client.pem:", "OK"], verified.stderr

    def extensions(name: str) -> str:
        return subprocess.run(
            ["openssl", "x509", "-in", name, "-noout", "-ext", "subjectAltName,extendedKeyUsage"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    assert "TLS Web Server Authentication" in extensions("server.pem") and "DNS:docker-host.example.com" in extensions("server.pem")
    assert "TLS Web Client Authentication" in extensions("client.pem")

    # A TLS handshake with them, as dockerd --tlsverify and a worker make it: each side checks the other.
    import socket
    import ssl
    import threading

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tmp_path / "ca.pem")
    server_context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server-key.pem")
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.create_default_context(cafile=tmp_path / "ca.pem")
    client_context.load_cert_chain(tmp_path / "client.pem", tmp_path / "client-key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    seen = {}

    def serve():
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            seen["client"] = dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with socket.create_connection(listener.getsockname(), timeout=10) as raw:
        with client_context.wrap_socket(raw, server_hostname="docker-host.example.com") as tls:
            assert tls.recv(2) == b"ok"
    thread.join(timeout=10)
    listener.close()
    assert seen == {"client": "dockyard worker"}
