"""Old versions' images leave the engine, so an installation that updates for years does not
fill its disk with them (in time the backup before an update would be refused for space).

Kept: every image of a version an installed app runs, ran before its last update (what
`rollback` returns to), a kept backup was taken with (what `restore` deploys) or an update
left pending names, across all apps, since several apps pin the same shared database image.
Only images of the installed apps' catalogue versions are candidates: nothing else on the
engine is touched. Removal is never forced: an image a container still uses (Swarm keeps a
few stopped tasks per service) stays until a later run. A version needed again after all is
pulled again by digest (`recovery.ensure_images`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import docker
import docker.errors

from commonshelf.catalogue.catalog import Catalog
from commonshelf.installation import recovery
from commonshelf.installation.state import Installed

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent


def unused_images(
    catalog: Catalog, installed: Mapping[str, Installed], kept_versions: Mapping[str, set[str]]
) -> set[str]:
    """Pinned images of the installed apps' catalogue versions that nothing here needs: not
    of a running, previous or `kept_versions` version of any installed app."""
    needed: set[str] = set()
    candidates: set[str] = set()
    for app, record in installed.items():
        needed |= set(record.images.values())
        keep = {record.version, record.previous, *kept_versions.get(app, set())}
        for version, entry in catalog.versions(app).items():
            images = {service.image for service in entry.runtime.services.values()}
            (needed if version in keep else candidates).update(images)
    return candidates - needed


def remove_images(client: docker.DockerClient, refs: Iterable[str]) -> list[str]:
    """Remove each reference this engine holds, unforced; the ones removed. One in use by a
    container, or any the engine refuses, is left for a later run."""
    removed = []
    for ref in sorted(refs):
        try:
            client.images.remove(ref)
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError:  # in use (409) or otherwise refused: not this run
            continue
        removed.append(ref)
    return removed


def prune_images(agent: Agent, keep: Mapping[str, set[str]]) -> list[str]:
    """After updates: remove what `unused_images` finds, also keeping each app's versions in
    `keep` (an update left pending); the references removed."""
    installed = agent.installed()
    kept = {app: set(keep.get(app, set())) for app in installed}
    for app, versions in kept.items():
        versions.update(b.version for _, b in recovery.list_backups(agent.home, app))
    return remove_images(agent.client, unused_images(agent.catalog(), installed, kept))
