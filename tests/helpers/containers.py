"""Looking at the engine's containers from tests."""

from __future__ import annotations

import docker


def exists(client: docker.DockerClient, container_id: str) -> bool:
    """Whether the engine still has the container, running or not."""
    return any(c.id == container_id for c in client.containers.list(all=True))
