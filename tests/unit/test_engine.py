"""The worker's engine client: requests' per-call environment lookups off for a local socket; the TLS settings
as docker-py takes them (the engine itself over TLS: tests/integration/test_tls_engine.py)."""

import pathlib
import re
import stat

import pytest

from actors.engine import EngineSettingsError, engine_client, tls_config
from settings import Settings, SettingsError


def test_a_local_socket_skips_proxy_and_netrc_lookups():
    client = engine_client(Settings(docker_url="unix:///var/run/docker.sock"), timeout=3)
    assert client.api.trust_env is False
    assert client.api.timeout == 3


def test_tls_settings_take_pem_text_or_a_path(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n")
    pem = "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"
    tls = tls_config(Settings(docker_url="tcp://engine:2376", docker_tls_ca=str(ca), docker_tls_cert=pem, docker_tls_key=key))
    assert tls.ca_cert == str(ca) and tls.verify == str(ca)
    cert_path, key_path = map(pathlib.Path, tls.cert)
    assert cert_path.read_text() == pem and key_path.read_text() == key
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600 and stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    assert tls_config(Settings()) is None


def test_a_tls_setting_that_is_neither_pem_nor_a_file_is_named():
    with pytest.raises(
        EngineSettingsError, match=re.escape("DOCKYARD_DOCKER_TLS_CA: '/nope/ca.pem' is neither PEM text nor a readable file")
    ):
        tls_config(Settings(docker_url="tcp://engine:2376", docker_tls_ca="/nope/ca.pem"))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOCKYARD_DOCKER_TLS_CERT": "c"}, "DOCKYARD_DOCKER_TLS_CERT and DOCKYARD_DOCKER_TLS_KEY: give both or neither"),
        ({"DOCKYARD_DOCKER_TLS_CA": "ca.pem"}, "TLS needs a tcp:// DOCKYARD_DOCKER_URL"),
    ],
)
def test_tls_settings_that_cannot_work_are_refused(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
