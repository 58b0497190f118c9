"""Reading a pin: a tag beside the digest never decides which image runs."""

import pytest

from actors.images import split_pin

DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    "pin, repo",
    [
        (f"127.0.0.1:5000/team/report@{DIGEST}", "127.0.0.1:5000/team/report"),
        (f"127.0.0.1:5000/team/report:v1@{DIGEST}", "127.0.0.1:5000/team/report"),
        (f"report:1.2@{DIGEST}", "report"),
        (f"report@{DIGEST}", "report"),
    ],
)
def test_split_pin_drops_the_tag_keeps_registry_port(pin, repo):
    assert split_pin(pin) == (repo, DIGEST)
