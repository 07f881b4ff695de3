"""Labels on everything a test run creates, and the removal of what dead runs left behind.

Ryuk (testcontainers' reaper) cannot be pulled here, so every container, network
and volume a run creates carries its run id, process id and host; a run removes
its own at the end and, at its start, whatever a run whose process is gone left.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Mapping

import docker
import docker.errors

LABEL_RUN = "dev.commonshelf.test-run"
LABEL_PID = "dev.commonshelf.test-pid"
LABEL_HOST = "dev.commonshelf.test-host"
LABEL_SCOPE = "dev.commonshelf.test-scope"  # one matrix or fixture, when runs share a process
RUN_ID = uuid.uuid4().hex[:12]


def run_labels(scope: str = "") -> dict[str, str]:
    """Labels of everything this test run creates; `scope` narrows them to one stack's owner."""
    labels = {LABEL_RUN: RUN_ID, LABEL_PID: str(os.getpid()), LABEL_HOST: socket.gethostname()}
    if scope:
        labels[LABEL_SCOPE] = scope
    return labels


def new_scope(name: str) -> str:
    """A label value that tells one recipe's test resources from others running alongside."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def remove_leftovers(client: docker.DockerClient, run_id: str | None = None) -> int:
    """Remove test containers, volumes and networks of `run_id`, or of runs whose process died."""
    host = socket.gethostname()

    def dead(labels: Mapping[str, str]) -> bool:
        if run_id is not None:
            return labels.get(LABEL_RUN) == run_id
        if labels.get(LABEL_HOST) != host:
            return False
        try:
            os.kill(int(labels.get(LABEL_PID, "0")), 0)
        except (ProcessLookupError, ValueError):
            return True
        except PermissionError:
            return False
        return False

    removed = 0
    for container in client.containers.list(all=True, sparse=True, filters={"label": LABEL_RUN}):
        if dead(container.attrs.get("Labels") or {}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
            removed += 1
    for volume in client.volumes.list(filters={"label": LABEL_RUN}):
        if dead(volume.attrs.get("Labels") or {}):
            volume.remove(force=True)
            removed += 1
    for network in client.networks.list(filters={"label": LABEL_RUN}):
        if dead(network.attrs.get("Labels") or {}):
            network.remove()
            removed += 1
    return removed
