"""What `commonshelf status` reports: each installed app's version, health and last event,
then the installation's own news. Read-only, and it works while the repository is
unreachable (that failure becomes the installation's row)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from commonshelf.catalogue.catalog import Catalog
from commonshelf.installation import journal, swarm
from commonshelf.platform.errors import CommonshelfError

if TYPE_CHECKING:
    from commonshelf.installation.agent import Agent


@dataclass(frozen=True)
class AppStatus:
    """One row of `status`. The installation's own row (app "") carries what happened last
    to the installation itself (a poll the repository failed, an import), when that is newer
    than every app's last event, or the repository's failure as `status` itself met it."""

    app: str
    version: str
    latest: str | None
    url: str
    services: list[swarm.ServiceState]
    last: str  # what happened last to the app, in one sentence
    at: str = ""  # when `last` happened (UTC)
    outcome: str = ""  # of `last`: done, failed, rolled-back, held, refused

    @property
    def healthy(self) -> bool:
        return bool(self.services) and all(s.healthy for s in self.services)


def statuses(agent: Agent) -> list[AppStatus]:
    """Each installed app, then the installation's own row when it has news (AppStatus)."""
    config = agent.config()  # says how to start when this is not an installation yet
    catalog: Catalog | None = None
    unverified: CommonshelfError | None = None
    try:
        catalog = agent.catalog()
    except CommonshelfError as exc:  # status must work while the repository is unreachable
        unverified = exc
    out = []
    history = journal.events(agent.home)
    for app, record in sorted(agent.installed().items()):
        services = [
            swarm.service_state(s) for s in swarm.stack_services(agent.client, record.stack)
        ]
        event = next((e for e in reversed(history) if e.app == app), None)
        out.append(
            AppStatus(
                app,
                record.version,
                catalog.latest(app) if catalog else None,
                record.url,
                services,
                event.sentence if event else "",
                event.at if event else "",
                event.outcome if event else "",
            )
        )
    mine = history[-1] if history and history[-1].app == "" else None  # newer than apps'
    if unverified is not None and (mine is None or mine.sentence != str(unverified)):
        mine = journal.Event(app="", action="status", outcome="failed", sentence=str(unverified))
    if mine is not None:
        out.append(
            AppStatus("", "", None, config.repository, [], mine.sentence, mine.at, mine.outcome)
        )
    return out
