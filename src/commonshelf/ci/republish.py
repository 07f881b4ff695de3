"""Republish the signed catalogue after a change to its record, rebuilding nothing.

Promotion and revocation (`ci/channels.py`) change only what `catalog.json` says about
versions already released: their images, compose files and SBOMs stay the published targets
they are. This loads the record, applies the change, and publishes the catalogue targets
(`catalogue_targets`: the full record and each channel's view, in one signed snapshot) as
release does, then writes `catalog.json` and a RELEASES.md section, each atomically, after
the repository (so a failed publish leaves the record as it was).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from commonshelf.catalogue import html as catalogue_page
from commonshelf.catalogue import origin, reproducible, signing
from commonshelf.catalogue.catalog import FULL_TARGET, Catalog, channel_target
from commonshelf.catalogue.contract import CHANNELS
from commonshelf.catalogue.notes import append_releases, release_notes
from commonshelf.ci.channels import Change
from commonshelf.platform import vcs
from commonshelf.platform.errors import ReleaseError
from commonshelf.platform.fsutil import write_bytes_atomic
from commonshelf.platform.settings import Settings


def catalogue_targets(catalog: Catalog) -> dict[str, bytes]:
    """The catalogue as published: the full record at `catalog.json` (what installations
    initialised before channels read) and `channels/<channel>/catalog.json` for each channel.
    Release, rescan and republish all publish these, so the views never lag the record."""
    targets = {FULL_TARGET: reproducible.release_bytes(catalog)}
    for channel in CHANNELS:
        targets[channel_target(channel)] = reproducible.release_bytes(catalog.channel_view(channel))
    return targets


def signing_keys(settings: Settings) -> tuple[signing.SigningKeys, list[str]]:
    """The keys every publishing job signs with, and the roles whose development keys were
    made now (none when a published repository is configured: see `load_or_create_keys`)."""
    return signing.load_or_create_keys(settings.keys_dir, published=settings.published_source)


def publish_catalogue(
    settings: Settings, keys: signing.SigningKeys, catalog: Catalog, extra: dict[str, bytes]
) -> int:
    """Sign and publish the catalogue (and `extra` targets), then write catalog.json and the
    HTML page: what release, rescan, promote and revoke all end with. The targets version."""
    targets = {**extra, **catalogue_targets(catalog)}
    result = signing.Publisher(settings.public_dir, keys).publish(targets)
    write_bytes_atomic(settings.catalog_path, targets[FULL_TARGET])
    catalogue_page.write_page(settings.public_dir, Catalog.from_bytes(targets[FULL_TARGET]))
    return result.targets_version


def resign_unchanged(
    settings: Settings, keys: signing.SigningKeys, catalog: Catalog
) -> signing.PublishResult:
    """A release with nothing new: re-sign what is near expiry, and sign the catalogue as it
    is recorded where it differs from what is signed: a repository signed before channels
    gets its channel catalogues, and a catalog.json whose format moved on (a new field, a
    path made portable) reaches installations without waiting for the next new version.
    `catalog` is the base a release starts from (the published one, when configured)."""
    return signing.Publisher(settings.public_dir, keys).publish(catalogue_targets(catalog))


@dataclass
class Republished:
    published: bool = False
    targets_version: int = 0
    notes: tuple[str, ...] = ()
    unchanged: str = ""  # why nothing was published
    new_keys: list[str] = field(default_factory=list)


def republish(settings: Settings, change: Change) -> Republished:
    """Apply `change` to catalog.json and publish a newly signed catalogue when it changed."""
    public = settings.public_dir
    published = origin.sync(settings)  # a configured published repository is extended
    if not (public / "metadata" / "1.root.json").exists():
        raise ReleaseError(
            f"{public} holds no published repository, so there is no catalogue to change; "
            "nothing was published.",
            "release first (`invoke release`), or restore public/ from the publishing host.",
        )
    edited = change(origin.base_catalog(settings, published))
    if not edited.notes:
        return Republished(unchanged=edited.unchanged or "Nothing changed.")
    catalog = edited.catalog
    catalog.generated = reproducible.source_date(settings.root)
    catalog.commit = vcs.revision(settings.root)
    keys, created = signing_keys(settings)
    version = publish_catalogue(settings, keys, catalog, {})
    append_releases(settings, release_notes(catalog, list(edited.notes), version))
    return Republished(True, version, edited.notes, new_keys=created)
