"""The whole path on real parts: recipe → images → tests → trivy → signed catalogue → Swarm.

One test walks it as a new user would (the pipeline twice: the second run
skips everything unchanged), then attacks it: a catalogue changed after
signing must be refused with the running app untouched, and a scan that finds
a CRITICAL vulnerability must keep a new version out of the catalogue. Another
installs, with the `commonshelf` command, an app whose contract declares a
secret: the installation generates it and it is written nowhere but its home's
secrets/ and Swarm.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
import yaml
from tuf.ngclient import Updater

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import SecretSpec
from commonshelf.catalogue.server import ensure_catalogue_server
from commonshelf.ci import vulndb
from commonshelf.ci.levels import MAX_LEVEL
from commonshelf.ci.pipeline import DemoInstallation, run_pipeline, smoke_installation
from commonshelf.ci.promote import release
from commonshelf.ci.rehearsal import Rehearsal
from commonshelf.ci.rescan import rescan
from commonshelf.ci.stages import Shelf
from commonshelf.ci.trivydb import Advisory, write_trivy_db
from commonshelf.installation import swarm
from commonshelf.installation.agent import Agent
from commonshelf.installation.deployer import SECRET_LABEL
from commonshelf.platform.errors import TrustError
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import load_recipe

from ..conftest import REPO
from .conftest import APP, assert_rehearsals_gone, edit_yaml, get_app, wait_for_page

VERSION = load_recipe(REPO / "recipes" / APP).version


def _quiet(_: str) -> None:
    pass


def test_recipe_to_signed_catalogue_to_running_app(
    workspace: Settings,
    installation: DemoInstallation,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    # --- first run: everything is built, tested, scanned, released and installed
    report = run_pipeline(workspace, install=installation)
    failed = [(s.recipe, s.stage, s.summary) for s in report.stages if not s.passed]
    assert not failed, failed
    assert report.release.released == [(APP, VERSION)]
    assert report.app_urls == [f"http://{APP}.localhost:{installation.http_port}/"]
    # what an operator tries next: the app through its own protocol (`invoke smoke`)
    [smoked] = smoke_installation(workspace, home=installation.home)
    assert (smoked.app, smoked.passed) == (APP, True), smoked
    assert smoked.detail.startswith("seeded and read back")

    # the signed repository has the TUF layout, targets under targets/
    metadata = workspace.public_dir / "metadata"
    names = {p.name for p in metadata.iterdir()}
    assert {"1.root.json", "timestamp.json"} <= names
    assert any(n.endswith(".targets.json") and n[0].isdigit() for n in names)
    assert any(n.endswith(".snapshot.json") and n[0].isdigit() for n in names)
    assert list((workspace.public_dir / "targets").glob("*.catalog.json"))

    # the stock TUF client, given only 1.root.json, fetches the catalogue from a static server
    client_dir = tmp_path / "stock-client"
    client_dir.mkdir()
    updater = Updater(
        metadata_dir=str(client_dir),
        metadata_base_url=f"{workspace.catalogue_url}/metadata/",
        target_base_url=f"{workspace.catalogue_url}/targets/",
        target_dir=str(client_dir),
        bootstrap=(metadata / "1.root.json").read_bytes(),
    )
    updater.refresh()
    info = updater.get_targetinfo("catalog.json")
    assert info is not None
    downloaded = Path(updater.download_target(info)).read_bytes()
    assert json.loads(downloaded) == json.loads(workspace.catalog_path.read_bytes())
    catalogue = Catalog.from_bytes(downloaded)

    # images pinned by digest, present in the registry
    entry = catalogue.versions(APP)[VERSION]
    # the scan ran against the DB pulled from the registry; its SBOM is a TUF target
    scanned = entry.vetting.scan
    remote = vulndb.remote_layer(workspace.vulndb_repository)
    assert remote is not None and scanned.db_digest == remote[0] and scanned.db_built
    assert scanned.trivy_version and not scanned.blocking
    sbom_ref = scanned.sboms["app"]
    sbom_info = updater.get_targetinfo(sbom_ref.path)
    assert sbom_info is not None and sbom_info.length == sbom_ref.length
    sbom = Path(updater.download_target(sbom_info)).read_bytes()
    assert hashlib.sha256(sbom).hexdigest() == sbom_ref.sha256
    assert json.loads(sbom)["bomFormat"] == "CycloneDX" and b'"nginx-light"' in sbom
    image = entry.runtime.services["app"].image
    assert entry.runtime.services["app"].digest == image.split("@")[1]
    repository, digest = image.split("@")
    assert digest.startswith("sha256:") and repository.startswith(workspace.registry)
    manifest = requests.head(
        f"http://{workspace.registry}/v2/{repository.split('/', 1)[1]}/manifests/{digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    assert manifest.status_code == 200
    assert entry.vetting.level == MAX_LEVEL  # every check of the standard matrix passed
    assert entry.vetting.tests.passed >= 5 and entry.vetting.scan.counts.get("CRITICAL", 0) == 0
    assert entry.vetting.checks["upgrade"].status == "n/a" and entry.vetting.upgrade is None
    # the contract names its pinned compose file, a signed target
    assert entry.runtime.main.health == "/healthz"
    folder, _, name = entry.runtime.compose.rpartition("/")
    [pinned] = (workspace.public_dir / "targets" / folder).glob(f"*.{name}")
    assert yaml.safe_load(pinned.read_text())["services"]["app"]["image"] == image
    assert VERSION in workspace.releases_path.read_text()

    # the app runs on Swarm, pinned by digest, and answers through the proxy
    service = docker_client.services.get(f"{installation.namespace}{APP}_app")
    assert swarm.service_image(service) == image
    page = wait_for_page(installation.http_port, f"{APP}.localhost", "Your site is live")
    assert "Custom HTML" in page.text
    assert get_app(installation.http_port, "unknown.localhost").status_code == 404

    # --- second run: base image, build, tests, scan and release are all skipped
    again = run_pipeline(workspace, install=installation)
    assert again.passed
    assert all(s.skipped for s in again.stages), [
        (s.recipe, s.stage) for s in again.stages if not s.skipped
    ]
    assert again.release.released == [] and again.release.unchanged == [(APP, VERSION)]
    assert again.rescan is not None and not again.rescan.published  # nothing new to say

    # --- an advisory added to the DB after release reaches the installation, nothing rebuilt
    assert installation.home is not None
    advised = _with_advisory(workspace, tmp_path)
    found = rescan(advised, say=_quiet)
    assert found.published and (APP, VERSION) in found.checked
    [advisory] = Catalog.load(workspace.catalog_path).apps[APP].advisories
    assert (advisory.id, advisory.severity, advisory.affected) == (CVE, "CRITICAL", (VERSION,))
    assert "nginx-light" in advisory.package and advisory.package_fixed == "99.0.0-1"
    assert advisory.fixed_in == ""  # no released version fixes it yet
    assert CVE in workspace.releases_path.read_text()
    status = _commonshelf(installation.home, "status", "--json")
    assert status.returncode == 0, status.stderr
    [row] = [r for r in json.loads(status.stdout) if r["app"] == APP]
    assert [a["id"] for a in row["advisories"]] == [CVE] and row["worst"] == "CRITICAL"
    shown = _commonshelf(installation.home, "info", APP)
    assert CVE in shown.stdout and sbom_ref.path in shown.stdout, shown.stdout

    # --- a catalogue changed after signing is refused; the running app is untouched
    assert installation.home is not None
    agent = Agent(installation.home, docker_client)
    version_before = service.attrs["Version"]["Index"]
    # (it follows the testing channel: its catalogue is channels/testing/catalog.json)
    held = installation.home / "tuf" / "targets" / "channels" / "testing" / "catalog.json"
    current = hashlib.sha256(held.read_bytes()).hexdigest()
    folder = workspace.public_dir / "targets" / "channels" / "testing"
    [signed] = folder.glob(f"{current}.catalog.json")
    tampered = signed.read_bytes().replace(VERSION.encode(), b"9.9.9+1.22.1")
    signed.write_bytes(tampered)
    # (an installation that holds the verified copy keeps using it: make it download)
    held.unlink()
    with pytest.raises(TrustError, match=r"catalog\.json"):
        agent.install(APP, "9.9.9+1.22.1")
    service.reload()
    assert service.attrs["Version"]["Index"] == version_before
    assert get_app(installation.http_port, f"{APP}.localhost").status_code == 200
    assert json.loads((installation.home / "apps" / f"{APP}.json").read_text())["version"] == (
        VERSION
    )


CVE = "CVE-2099-0001"


def _with_advisory(workspace: Settings, tmp_path: Path) -> Settings:
    """The workspace scanning against a DB, pushed to the registry, that knows one more
    advisory: a critical one in the nginx the released image carries."""
    repository = f"{workspace.registry}/commonshelf/tests/trivy-db-rescan"
    bundled, built = vulndb.load_advisories(REPO / "shared" / "advisories")
    added = Advisory("nginx", CVE, "99.0.0-1", "CRITICAL", "fixture: found after release")
    artifact = vulndb.build_artifact([*bundled, added], built, tmp_path / "advised-db")
    vulndb.push(artifact, repository)
    return dataclasses.replace(workspace, trivy_db_repository=repository)


def test_critical_vulnerability_keeps_a_version_out_of_the_catalogue(
    workspace: Settings,
    tmp_path: Path,
) -> None:
    """The scan gate with a fixture DB in which the image's nginx has a CRITICAL advisory."""
    cache = tmp_path / "trivy"
    write_trivy_db(
        cache,
        [
            Advisory(
                "nginx",
                "CVE-2099-0001",
                "99.0.0-1",
                "CRITICAL",
                "fixture: remote code execution in nginx",
            )
        ],
    )
    shelf = Shelf(workspace)
    [recipe] = shelf.recipes([APP])
    assert shelf.build(recipe).passed
    assert shelf.test(recipe).passed
    result = shelf.scan(recipe, trivy_cache=cache)
    assert not result.passed
    assert "critical" in result.summary
    evidence = shelf.evidence.load(recipe.name, recipe.version, recipe.content_hash())
    assert evidence.gates.scan is not None
    assert any(f["id"] == "CVE-2099-0001" for f in evidence.gates.scan.findings)

    outcome = release(workspace, shelf.client, [recipe], shelf.base_tag, say=_quiet)
    assert outcome.released == []
    assert outcome.refused and "scan: failed" in outcome.refused[0][1]
    assert APP not in Catalog.load(workspace.catalog_path).apps


SECRET = "admin_token"
SECRET_LENGTH = 40


def _declare_a_secret(folder: Path) -> None:
    """custom-html with a generated secret handed to its main service, as a packager writes it:
    declared in recipe.yml, an external Swarm secret in compose.yml."""
    edit_yaml(
        folder / "recipe.yml",
        lambda m: m.update(
            secrets={SECRET: {"description": "Token of the admin page", "length": SECRET_LENGTH}}
        ),
    )

    def use_it(compose: dict[str, Any]) -> None:
        compose["services"]["app"]["secrets"] = [SECRET]
        compose["secrets"] = {SECRET: {"external": True}}

    edit_yaml(folder / "compose.yml", use_it)


def _commonshelf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installation owner's command, as a separate process (its output is its log)."""
    command = Path(sys.executable).parent / "commonshelf"
    return subprocess.run(
        [str(command), "--home", str(home), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _files(root: Path, skip: Path | None = None) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and (skip is None or skip not in p.parents)
    ]


def test_an_apps_secret_is_generated_on_install_and_written_nowhere_else(
    workspace: Settings,
    installation: DemoInstallation,
    docker_client: docker.DockerClient,
    rehearsals: list[Rehearsal],
) -> None:
    _declare_a_secret(workspace.recipes_dir / APP)
    report = run_pipeline(workspace, install=None)
    assert report.passed, [(s.recipe, s.stage, s.summary) for s in report.stages]
    assert report.release.released == [(APP, VERSION)]
    # the contract carries what to generate, never a value; the matrix rehearsed with a
    # secret of its own and removed it with the rest of its installation
    entry = Catalog.load(workspace.catalog_path).versions(APP)[VERSION]
    assert entry.runtime.secrets == {
        SECRET: SecretSpec(description="Token of the admin page", length=SECRET_LENGTH)
    }
    assert_rehearsals_gone(docker_client, rehearsals)

    # `commonshelf init` and `commonshelf install`, reading the verified catalogue
    url = ensure_catalogue_server(workspace)
    home = installation.home
    assert home is not None
    root = workspace.public_dir / "metadata" / "1.root.json"
    init = _commonshelf(
        home,
        "init",
        "--repository",
        url,
        "--root",
        str(root),
        "--http-port",
        str(installation.http_port),
        "--namespace",
        installation.namespace,
        "--channel",
        "testing",
    )
    assert init.returncode == 0, init.stderr
    install = _commonshelf(home, "install", APP, "--json")
    assert install.returncode == 0, install.stderr
    record = json.loads(install.stdout)
    assert record["version"] == VERSION and record["changed"] is True
    stack = f"{installation.namespace}{APP}"
    assert record["stack"] == stack

    # generated once, 0600 in the home's secrets/ (its folder 0700), of the declared length
    path = home / "secrets" / APP / SECRET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    value = path.read_bytes()
    assert len(value) == SECRET_LENGTH
    # handed over as the Swarm secret <stack>_<name>, owned by the app's stack
    [secret] = docker_client.secrets.list(filters={"name": f"{stack}_{SECRET}"})
    assert secret.name == f"{stack}_{SECRET}"
    labels = secret.attrs["Spec"]["Labels"]
    assert labels[swarm.STACK_LABEL] == stack  # and which value it was made from (a digest)
    assert labels[SECRET_LABEL] == hashlib.sha256(value).hexdigest() != value.decode()
    # ... which the app's service reads where Swarm mounts it
    [task] = swarm.task_containers(docker_client, f"{stack}_app")
    code, mounted = task.exec_run(["cat", f"/run/secrets/{SECRET}"])
    assert code == 0 and mounted == value
    wait_for_page(installation.http_port, f"{APP}.localhost", "Your site is live")

    # the stack file names the Swarm secret; it holds no value
    stack_file = yaml.safe_load((home / "stacks" / f"{stack}.yml").read_text())
    assert stack_file["secrets"] == {SECRET: {"external": True, "name": f"{stack}_{SECRET}"}}

    # installing again changes nothing and keeps the secret
    again = _commonshelf(home, "install", APP, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changed"] is False
    assert path.read_bytes() == value

    # the value is nowhere else: not in the catalogue (committed or signed), the evidence, the
    # installation's stack file, records and TUF copies, the command's output, the catalogue
    # server's log, the service's spec or the app's and proxy's logs
    text = value.decode()
    written = [*_files(workspace.root), *_files(home, skip=home / "secrets")]
    written.append(workspace.logs_dir / f"catalogue-{workspace.catalogue_port}.log")
    holding = [str(p) for p in written if p.is_file() and value in p.read_bytes()]
    assert not holding, f"the secret was written into {holding}"
    for run in (init, install, again):
        assert text not in run.stdout and text not in run.stderr
    service = docker_client.services.get(f"{stack}_app")
    assert text not in json.dumps(service.attrs)
    for name in (f"{stack}_app", f"{installation.namespace}commonshelf_proxy"):
        for container in swarm.task_containers(docker_client, name):
            assert value not in container.logs()
