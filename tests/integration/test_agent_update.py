"""Installations apply vetted updates themselves: data is kept, and a failing update is rolled
back by Swarm while the previous version keeps serving."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tarfile
import time
from pathlib import Path

import docker
import docker.errors

from commonshelf.catalogue.catalog import Catalog
from commonshelf.ci import channels
from commonshelf.ci.levels import MAX_LEVEL
from commonshelf.ci.pipeline import DemoInstallation, run_pipeline
from commonshelf.ci.promote import release
from commonshelf.ci.republish import republish
from commonshelf.ci.stages import Shelf
from commonshelf.installation import image_cleanup, journal, recovery, swarm, updates
from commonshelf.installation.agent import Agent
from commonshelf.installation.policy import load_policy
from commonshelf.platform.settings import Settings
from commonshelf.recipes.scaffold import bump_recipe

from .conftest import APP, edit_yaml, get_app, record_as_vetted, wait_for_page


def _quiet(_: str) -> None:
    pass


def _exec_in_app(client: docker.DockerClient, service: str, command: str) -> None:
    [container] = swarm.task_containers(client, service)
    code, output = container.exec_run(["sh", "-c", command])
    assert code == 0, output


def test_update_keeps_data_and_a_failing_update_rolls_back(
    workspace: Settings,
    installation: DemoInstallation,
    docker_client: docker.DockerClient,
) -> None:
    first = run_pipeline(workspace, install=installation)
    assert first.passed, [(r.stage, r.summary) for r in first.stages if not r.passed]
    service = f"{installation.namespace}{APP}_app"
    _exec_in_app(docker_client, service, "echo 'written by the user' > /srv/www/mine.html")
    _exec_in_app(docker_client, service, "head -c 200000 /dev/urandom > /srv/www/blob.bin")
    [task] = swarm.task_containers(docker_client, service)
    blob_sha = task.exec_run(["sha256sum", "/srv/www/blob.bin"]).output.split()[0].decode()
    assert installation.home is not None
    home = installation.home
    agent = Agent(home, docker_client)

    # --- a good new version: released by CI, applied by the installation, data kept
    folder = workspace.recipes_dir / APP
    index = folder / "image" / "site" / "index.html"
    index.write_text(index.read_text().replace("</body>", "<!-- v1.1 -->\n</body>"))
    old, new = bump_recipe(folder, "minor")
    report = run_pipeline(workspace, install=None)
    assert report.release.released == [(APP, new)], [
        (r.stage, r.summary) for r in report.stages if not r.passed
    ] or report.release.refused
    # CI tested the upgrade from the released version on seeded data, on Swarm behind the
    # proxy, before releasing the new one; evidence and catalogue record the probes
    released = Catalog.load(workspace.catalog_path).versions(APP)[new]
    assert released.vetting.level == MAX_LEVEL
    shelf_ = Shelf(workspace)
    [candidate] = shelf_.recipes([APP])
    gate = shelf_.evidence.load(APP, candidate.version, candidate.content_hash()).gates.test
    assert gate is not None
    [upgrade] = [c for c in gate.matrix if c.check == "upgrade"]
    assert upgrade.status == "passed", upgrade
    assert upgrade.detail.startswith(f"{old} → {new} on Swarm")
    assert gate.upgrade is not None and gate.upgrade.from_version == old
    assert gate.upgrade.probes > 50 and gate.upgrade.failed == 0, gate.upgrade
    assert released.vetting.upgrade == gate.upgrade
    assert released.vetting.checks["upgrade"].status == "passed"
    [event] = updates.update(Agent(home, docker_client), None)
    assert (event.outcome, event.from_version, event.to_version) == ("done", old, new), event
    [snapshot] = (home / "backups" / APP).iterdir()  # taken before the update
    assert snapshot.name.endswith(f"-{old}") and snapshot.name == event.backup
    manifest = json.loads((snapshot / "backup.json").read_text())
    assert manifest["version"] == old and manifest["volumes"] == {"content": "content.tar"}
    with tarfile.open(snapshot / "content.tar") as archive:
        files = {m.name: archive.extractfile(m) for m in archive.getmembers() if m.isfile()}
        assert set(files) == {"./index.html", "./mine.html", "./blob.bin"}
        mine, blob = files["./mine.html"], files["./blob.bin"]
        assert mine is not None and mine.read() == b"written by the user\n"
        assert blob is not None and hashlib.sha256(blob.read()).hexdigest() == blob_sha
    good_image = swarm.service_image(docker_client.services.get(service))
    assert agent.installed()[APP].version == new
    assert (
        get_app(installation.http_port, f"{APP}.localhost", "/mine.html").text
        == "written by the user\n"
    )
    assert updates.update(Agent(home, docker_client), None) == []  # nothing newer

    # --- a version that fails its health check on the installation: Swarm rolls it back
    compose = folder / "compose.yml"
    compose.write_text(re.sub(r'"/healthz"\]', '"/missing"]', compose.read_text()))
    broken = bump_recipe(folder, "patch")[1]
    shelf = Shelf(workspace)
    [recipe] = shelf.recipes([APP])
    assert shelf.build(recipe).passed
    # Stand-in for a failure CI could not see (e.g. a difference of the installation):
    # this version's evidence is recorded as passed so that the release publishes it.
    record_as_vetted(shelf, recipe)
    outcome = release(workspace, shelf.client, [recipe], shelf.base_tag, say=_quiet)
    assert outcome.released == [(APP, broken)]

    started = time.monotonic()
    [failed] = updates.update(Agent(home, docker_client), None)
    assert failed.outcome == "rolled-back", failed
    assert "rolled it back to the previous version" in failed.sentence
    assert "the data was not changed" in failed.sentence, failed.sentence
    assert time.monotonic() - started < 240
    assert swarm.service_image(docker_client.services.get(service)) == good_image
    assert agent.installed()[APP].version == new
    assert (
        get_app(installation.http_port, f"{APP}.localhost", "/mine.html").text
        == "written by the user\n"
    )
    # the site lives in the data volume, so the user's copy of the page is still what is served
    wait_for_page(installation.http_port, f"{APP}.localhost", "Your site is live")
    assert Path(home / "apps" / f"{APP}.json").is_file()

    # --- a failing version that changed the data before it failed: the agent puts the
    # backup back, and keeps what the failed version wrote in a backup of its own
    def migrates_then_fails(c: dict) -> None:  # type: ignore[type-arg]
        c["services"]["app"]["command"] = [
            "sh",
            "-c",
            "echo 'rewritten by a broken migration' > /srv/www/mine.html; "
            "exec nginx -e stderr -g 'daemon off;'",
        ]

    edit_yaml(compose, migrates_then_fails)
    harmful = bump_recipe(folder, "patch")[1]
    shelf = Shelf(workspace)
    [recipe] = shelf.recipes([APP])
    assert shelf.build(recipe).passed
    record_as_vetted(shelf, recipe)
    assert release(workspace, shelf.client, [recipe], shelf.base_tag, say=_quiet).released == [
        (APP, harmful)
    ]
    [failed] = updates.update(Agent(home, docker_client), None)
    assert failed.outcome == "rolled-back", failed
    assert f"so backup {failed.backup} was restored" in failed.sentence, failed.sentence
    assert Agent(home, docker_client).record(APP).version == new
    wait_for_page(installation.http_port, f"{APP}.localhost", "Your site is live")
    assert (
        get_app(installation.http_port, f"{APP}.localhost", "/mine.html").text
        == "written by the user\n"
    )
    # what the failed version wrote is not lost either: it is in the safety backup
    [safety] = [
        b
        for b in (home / "backups" / APP).iterdir()
        if json.loads((b / "backup.json").read_text())["reason"] == "safety"
    ]
    with tarfile.open(safety / "content.tar") as archive:
        page = archive.extractfile("./mine.html")
        assert page is not None and page.read() == b"rewritten by a broken migration\n"
    assert {harmful, broken} <= set(load_policy(home, APP).bad)

    # --- the publisher revokes the running version: no newer version may run here (the two
    # newer ones failed here), so the next run goes back to the version it replaced, with the
    # data it had then, and what was written since stays in a safety backup
    _exec_in_app(docker_client, service, "echo 'written after the update' > /srv/www/late.html")
    done = republish(workspace, channels.revoke(APP, new, "serves stale pages"))
    assert done.published
    [withdrawn] = updates.update(Agent(home, docker_client), None, automatic=True)
    assert (withdrawn.action, withdrawn.from_version, withdrawn.to_version) == (
        "rollback",
        new,
        old,
    ), withdrawn
    assert "revoked it (serves stale pages)" in withdrawn.sentence, withdrawn.sentence
    assert Agent(home, docker_client).record(APP).version == old
    wait_for_page(installation.http_port, f"{APP}.localhost", "Your site is live")
    assert (
        get_app(installation.http_port, f"{APP}.localhost", "/mine.html").text
        == "written by the user\n"
    )
    safety_backups = [
        b
        for b in (home / "backups" / APP).iterdir()
        if json.loads((b / "backup.json").read_text())["reason"] == "safety"
    ]
    late = []
    for folder_ in safety_backups:
        with tarfile.open(folder_ / "content.tar") as archive:
            late += [m.name for m in archive.getmembers() if m.name == "./late.html"]
    assert late, "what was written after the update is kept in a safety backup"
    # and it stays there: the revoked version is never applied again
    [held] = updates.update(Agent(home, docker_client), None, automatic=True)
    assert (held.outcome, held.from_version) == ("held", old), held

    # --- after the updates, no image of a version nothing here needs is left on the engine,
    # unless a container (a stopped Swarm task) still uses it
    agent = Agent(home, docker_client)
    kept = {APP: {b.version for _, b in recovery.list_backups(home, APP)}}
    unused = image_cleanup.unused_images(agent.catalog(), agent.installed(), kept)
    assert unused, "the failed versions' images are candidates"
    used = {c.attrs["ImageID"] for c in docker_client.containers.list(all=True, sparse=True)}
    for ref in unused:
        with contextlib.suppress(docker.errors.ImageNotFound):
            assert docker_client.images.get(ref).id in used, f"{ref} was left behind"

    # --- the app stopped behind the agent's back (scaled to nothing): installing the same
    # version again deploys it again, and the record says why rather than "changed settings"
    docker_client.services.get(service).scale(0)
    record, changed = Agent(home, docker_client).install(APP, old)
    assert changed and record.version == old
    said = journal.last(home, APP)
    assert said is not None and said.sentence.startswith(f"Redeployed {APP} {old} on "), said
    assert said.sentence.endswith("it was not running as recorded.")
    wait_for_page(installation.http_port, f"{APP}.localhost", "Your site is live")
    assert Agent(home, docker_client).install(APP, old) == (record, False)  # nothing to do now
