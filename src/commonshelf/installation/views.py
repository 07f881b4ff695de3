"""What an operator reads about an app: its catalogue entry beside what runs here (with the
advisories affecting it and where each version's SBOMs are), and logs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import docker.errors
import msgspec
import semver

from commonshelf.installation import journal, recovery, swarm
from commonshelf.installation.advisories import AdvisoryView, Exposure, exposure
from commonshelf.installation.policy import AppPolicy, blocked, load_policy
from commonshelf.installation.sbom import SbomView
from commonshelf.installation.sbom import views as sbom_views
from commonshelf.platform.errors import CommonshelfError

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent


class VersionView(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    level: int
    released: str
    migration: str  # "none" or "manual: note"
    allowed: str  # "" when it may be installed here, else why not
    advisories: list[str]  # ids of the advisories that name it as affected
    sboms: list[SbomView]  # one per service that has one (none before SBOMs were published)


class SettingView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    default: str
    value: str | None  # what this installation uses, when installed
    description: str


class AppInfo(msgspec.Struct, frozen=True, kw_only=True):
    app: str
    title: str
    description: str
    category: str
    versions: list[VersionView]
    installed: str | None
    url: str | None
    # the advisories affecting the installed version, most severe first, with what to do
    advisories: list[AdvisoryView]
    worst: str  # their worst severity ("" when none, or not installed)
    settings: list[SettingView]
    data: list[str]  # volume: description
    policy: AppPolicy
    backups: list[str]
    last: str  # the newest event's sentence


def info(agent: Agent, app: str) -> AppInfo:
    catalog = agent.catalog()
    _, entry = catalog.version(app)
    listing = catalog.apps[app]
    policy = load_policy(agent.home, app)
    level = agent.config().min_level
    record = agent.installed().get(app)
    versions = [
        VersionView(
            version=version,
            level=e.vetting.level,
            released=e.released,
            migration=e.runtime.migration.kind
            + (f": {e.runtime.migration.note}" if e.runtime.migration.note else ""),
            allowed=blocked(version, e, policy, level) or "",
            advisories=[a.id for a in listing.advisories_for(version)],
            sboms=sbom_views(app, version, e.vetting.scan.sboms),
        )
        for version, e in sorted(
            listing.versions.items(), key=lambda kv: semver.Version.parse(kv[0]), reverse=True
        )
    ]
    runtime = (
        catalog.version(app, record.version)[1].runtime
        if record and record.version in listing.versions
        else entry.runtime
    )
    settings = [
        SettingView(
            name=name,
            default=spec.text(),
            value=(record.settings.get(name, spec.text()) if record else None),
            description=spec.description,
        )
        for name, spec in sorted(runtime.settings.items())
    ]
    event = journal.last(agent.home, app)
    exposed = (
        exposure(app, record.version, listing, policy, min_level=level, now=datetime.now(UTC))
        if record
        else None
    )
    return AppInfo(
        app=app,
        title=listing.title,
        description=listing.description,
        category=listing.category,
        versions=versions,
        installed=record.version if record else None,
        url=record.url if record else None,
        advisories=exposed.advisories if exposed else [],
        worst=exposed.worst if exposed else "",
        settings=settings,
        data=[f"{d.volume}: {d.description or d.path}" for d in runtime.data],
        policy=policy,
        backups=[backup_id for backup_id, _ in recovery.list_backups(agent.home, app)],
        last=event.sentence if event else "",
    )


def exposures(agent: Agent) -> dict[str, Exposure] | None:
    """The advisories affecting each installed app's running version; None when the
    catalogue cannot be verified now (`status` still answers, without them)."""
    try:
        catalog = agent.catalog()
    except CommonshelfError:
        return None
    level = agent.config().min_level
    now = datetime.now(UTC)
    return {
        app: exposure(
            app,
            record.version,
            catalog.apps.get(app),
            load_policy(agent.home, app),
            min_level=level,
            now=now,
        )
        for app, record in sorted(agent.installed().items())
    }


def logs(agent: Agent, app: str, lines: int = 50) -> list[str]:
    """The last `lines` log lines of each of the app's services (oldest first, each with
    its time), prefixed by the service."""
    record = agent.record(app)
    out = []
    for service in swarm.stack_services(agent.client, record.stack):
        short = service.name.removeprefix(f"{record.stack}_")
        try:
            raw = b"".join(service.logs(stdout=True, stderr=True, tail=lines, timestamps=True))
        except docker.errors.APIError as exc:
            out.append(f"{short} | (no logs: {exc.explanation})")
            continue
        # the service's tasks, old and new, each stream in turn: put them in time order
        said = sorted(line for line in raw.decode(errors="replace").splitlines() if line)
        out.extend(f"{short} | {line}" for line in said[-lines:])
    return out
