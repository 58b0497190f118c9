"""Reading a pin: a tag beside the digest never decides which image runs."""

import types

import docker.errors
import pytest

from actors.images import ImageRefused, PinnedImages, split_pin

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


class FakeImages:
    """The part of docker-py's client that resolve_pinned_image uses: images.get, counted."""

    def __init__(self, images: dict):
        self.images, self.gets = images, 0

    def get(self, reference):
        self.gets += 1
        if reference not in self.images:
            raise docker.errors.ImageNotFound(reference)
        return self.images[reference]


def test_a_checked_pin_is_not_inspected_again_until_it_is_old_or_forgotten():
    pin = f"127.0.0.1:5000/team/report@{DIGEST}"
    image = types.SimpleNamespace(id="sha256:" + "e" * 64, attrs={"RepoDigests": [pin]})
    client = types.SimpleNamespace(images=FakeImages({pin: image}))
    now = [0.0]
    images = PinnedImages(client, max_age_seconds=60, clock=lambda: now[0])
    assert [images.image_id(pin) for _ in range(3)] == [image.id] * 3 and client.images.gets == 1
    now[0] = 61
    assert images.image_id(pin) == image.id and client.images.gets == 2
    images.forget(pin)
    images.image_id(pin)
    assert client.images.gets == 3


def test_a_refused_pin_is_not_remembered():
    local_id = "sha256:" + "f" * 64
    client = types.SimpleNamespace(images=FakeImages({}))
    images = PinnedImages(client)
    for _ in range(2):
        with pytest.raises(ImageRefused, match="not present"):
            images.image_id(local_id)
    assert client.images.gets == 2
