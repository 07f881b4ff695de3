"""Export and import: an installation moves to another machine with its apps and data.

`export` backs up every app now (hooks + volumes, checksummed) and writes one archive
with those backups, each app's version and settings, its generated secrets, the update
policies, the history and the trust metadata (`archive.py` says what goes in and how it
is read back defensively). `import` on a fresh home unpacks into a staging folder,
verifies the catalogue with the imported trust metadata, then brings each app back from
its backup: the version it ran, then its data. No lock-in to one server.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from commonshelf.installation import journal, recovery
from commonshelf.installation.archive import (
    EXPORT_FORMAT,
    ExportedApp,
    ExportManifest,
    read_export,
    write_export,
)
from commonshelf.installation.state import InstallationConfig, Installed, read_record, write_record
from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import DeployError

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent

MOVED = ("tuf", "secrets", "policy", "backups", "history.jsonl")


class Exported(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    size: int
    apps: dict[str, str]  # app -> version


def agent_version() -> str:
    try:
        return importlib.metadata.version("commonshelf")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def export_installation(agent: Agent, out: Path) -> Exported:
    with agent.holding("export"):
        apps = {}
        for app, record in sorted(agent.installed().items()):
            backup_id = recovery.take(agent, app, "export", record)
            folder = f"backups/{app}/{backup_id}" if backup_id else ""
            apps[app] = ExportedApp(version=record.version, backup=folder)
        manifest = ExportManifest(
            format=EXPORT_FORMAT, created=now_iso(), agent=agent_version(), apps=apps
        )
        size = write_export(out, agent.home, manifest)
        agent.note(
            journal.Event(
                app="",
                action="export",
                outcome="done",
                sentence=f"Exported {len(apps)} app(s) to {out} on {now_iso()}.",
            )
        )
        return Exported(path=str(out), size=size, apps={a: e.version for a, e in apps.items()})


def import_installation(
    agent: Agent,
    archive: Path,
    *,
    http_port: int | None = None,
    namespace: str | None = None,
    domain: str | None = None,
) -> list[journal.Event]:
    """Bring an exported installation back in `agent.home`, which must not be one yet."""
    with agent.holding("import"):
        if agent.config_path.exists():
            raise DeployError(
                f"{agent.home} is already an installation; nothing was imported.",
                "import into a fresh home (`commonshelf --home NEW import FILE`).",
            )
        agent.home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=agent.home, prefix=".import-") as work:
            staging = Path(work)
            manifest = read_export(archive, staging)
            config = read_record(staging / "config.json", InstallationConfig)
            config = msgspec.structs.replace(
                config,
                http_port=config.http_port if http_port is None else http_port,
                namespace=config.namespace if namespace is None else namespace,
                domain=config.domain if domain is None else domain,
                data_node=agent.local_node(),  # this machine's node, not the exported one
            )
            records = {
                app: read_record(staging / "apps" / f"{app}.json", Installed)
                for app in manifest.apps
                if (staging / "apps" / f"{app}.json").exists()
            }
            try:
                for name in MOVED:
                    if (staging / name).exists():
                        (staging / name).rename(agent.home / name)
                agent.follow(config.channel)  # the channel the exported installation followed
                agent.catalog()  # the imported trust metadata verifies the repository
            except BaseException:
                for name in MOVED:
                    path = agent.home / name
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                        missing_ok=True
                    )
                raise
        write_record(agent.config_path, config)
        agent.deploy_proxy(agent.catalog(), config)
        found = []
        for app, exported in sorted(manifest.apps.items()):
            if exported.backup:
                recovery.put_back(agent, app, agent.home / exported.backup)
            else:
                record = records.get(app)
                agent.install(app, exported.version, dict(record.settings) if record else {})
            found.append(
                agent.note(
                    journal.Event(
                        app=app,
                        action="import",
                        outcome="done",
                        sentence=f"Imported {app} {exported.version} from {archive.name} on "
                        f"{now_iso()}"
                        + (
                            f", with its data (backup {Path(exported.backup).name})."
                            if exported.backup
                            else "."
                        ),
                        to_version=exported.version,
                        backup=Path(exported.backup).name if exported.backup else "",
                    )
                )
            )
        return found
