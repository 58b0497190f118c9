"""Check that the image about to run is exactly the one a processor pinned."""

from __future__ import annotations

import docker
import docker.errors
from docker.models.images import Image


class ImageRefused(Exception):
    """The pinned image cannot be had, or what is local does not match the pin."""


def resolve_pinned_image(client: docker.DockerClient, pin: str) -> Image:
    """Return the local image matching `pin` (pulling it by digest if absent), or raise ImageRefused."""
    if "@" not in pin:
        # A local image id: content-addressed, so the id itself is the check.
        try:
            image = client.images.get(pin)
        except docker.errors.ImageNotFound:
            raise ImageRefused(f"image {pin} is not present on this worker") from None
        if image.id != pin:
            raise ImageRefused(f"local image {image.id} does not match the pinned id {pin}")
        return image
    try:
        image = client.images.get(pin)
    except docker.errors.ImageNotFound:
        repo, digest = pin.split("@", 1)
        try:
            image = client.images.pull(repo, tag=digest)
        except docker.errors.NotFound:
            raise ImageRefused(f"the registry has no image {pin} (digest not found in {repo})") from None
    if pin not in (image.attrs.get("RepoDigests") or []):
        raise ImageRefused(f"local image {image.id} for {pin} carries digests {image.attrs.get('RepoDigests')}, not the pin")
    return image
