"""The worker's engine client: requests' per-call environment lookups off for a local socket (a TCP engine,
which may sit behind a proxy, keeps them)."""

from actors.engine import engine_client
from settings import Settings


def test_a_local_socket_skips_proxy_and_netrc_lookups():
    client = engine_client(Settings(docker_url="unix:///var/run/docker.sock"), timeout=3)
    assert client.api.trust_env is False
    assert client.api.timeout == 3
