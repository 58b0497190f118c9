"""Check that the image about to run is exactly the one a processor pinned."""

from __future__ import annotations

import time

import docker
import docker.errors
from docker.models.images import Image


class ImageRefused(Exception):
    """The pinned image cannot be had, or what is local does not match the pin."""


def split_pin(pin: str) -> tuple[str, str]:
    """`repo[:tag]@sha256:...` -> (repo, digest). A tag beside a digest only informs: the digest decides."""
    name, digest = pin.split("@", 1)
    head, _, last = name.rpartition("/")
    if ":" in last:  # a tag (a registry's port is before the last '/')
        last = last.split(":", 1)[0]
    return (f"{head}/{last}" if head else last), digest


def resolve_pinned_image(client: docker.DockerClient, pin: str) -> Image:
    """Return the local image matching `pin` (pulling it by digest if absent), or raise ImageRefused.

    Nothing is ever looked up by name or tag: a tag moved to another image
    (locally or in the registry) cannot change what runs.
    """
    if "@" not in pin:
        # A local image id: content-addressed, so the id itself is the check.
        try:
            image = client.images.get(pin)
        except docker.errors.ImageNotFound:
            raise ImageRefused(f"image {pin} is not present on this worker") from None
        if image.id != pin:
            raise ImageRefused(f"local image {image.id} does not match the pinned id {pin}")
        return image
    repo, digest = split_pin(pin)
    reference = f"{repo}@{digest}"
    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        try:
            image = client.images.pull(repo, tag=digest)
        except docker.errors.NotFound:
            raise ImageRefused(f"the registry has no image {reference} (digest not found in {repo})") from None
    if reference not in (image.attrs.get("RepoDigests") or []):
        raise ImageRefused(f"local image {image.id} for {pin} carries digests {image.attrs.get('RepoDigests')}, not the pin")
    return image


class PinnedImages:
    """`resolve_pinned_image` for one engine, remembered for `max_age_seconds` per pin.

    A pin names content (a digest or an image id), so what was checked stays
    right while the image is on the engine; an image removed meanwhile makes
    the create fail, and `forget(pin)` (after any infrastructure failure)
    has the next attempt check, and pull, again. This saves an inspect round
    trip to a busy engine on every run of a processor.
    """

    def __init__(self, client: docker.DockerClient, max_age_seconds: float = 60.0, clock=time.monotonic):
        self.client = client
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._checked: dict[str, tuple[str, float]] = {}

    def image_id(self, pin: str) -> str:
        """The local image id matching `pin`; raise ImageRefused as `resolve_pinned_image` does."""
        found = self._checked.get(pin)
        if found is not None and self.clock() - found[1] < self.max_age_seconds:
            return found[0]
        image_id = resolve_pinned_image(self.client, pin).id
        self._checked[pin] = (image_id, self.clock())
        return image_id

    def forget(self, pin: str) -> None:
        self._checked.pop(pin, None)
