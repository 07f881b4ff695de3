"""The whole path on real parts: recipe → images → tests → trivy → signed catalogue → Swarm.

One test walks it as a new user would (the pipeline twice: the second run
skips everything unchanged), then attacks it: a catalogue changed after
signing must be refused with the running app untouched, and a scan that finds
a CRITICAL vulnerability must keep a new version out of the catalogue.
"""

from __future__ import annotations

import json
from pathlib import Path

import docker
import docker.errors
import pytest
import requests
from tuf.ngclient import Updater

from commonshelf.catalogue.catalog import Catalog
from commonshelf.ci.matrix import MAX_LEVEL
from commonshelf.ci.pipeline import DemoInstallation, Shelf, run_pipeline
from commonshelf.ci.trivydb import Advisory, write_trivy_db
from commonshelf.installation import swarm
from commonshelf.installation.agent import Agent
from commonshelf.platform.errors import TrustError
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import load_recipe

from ..conftest import REPO
from .conftest import APP, get_app, wait_for_page

VERSION = load_recipe(REPO / "recipes" / APP).version


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
    catalogue = json.loads(Path(updater.download_target(info)).read_bytes())
    assert catalogue == json.loads(workspace.catalog_path.read_bytes())

    # images pinned by digest, present in the registry
    entry = catalogue["apps"][APP]["versions"][VERSION]
    image = entry["services"]["app"]["image"]
    repository, digest = image.split("@")
    assert digest.startswith("sha256:") and repository.startswith(workspace.registry)
    manifest = requests.head(
        f"http://{workspace.registry}/v2/{repository.split('/', 1)[1]}/manifests/{digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    assert manifest.status_code == 200
    assert entry["level"] == MAX_LEVEL  # every check of the standard matrix passed
    assert entry["tests"]["tests_passed"] >= 5 and entry["scan"]["counts"].get("CRITICAL", 0) == 0
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

    # --- a catalogue changed after signing is refused; the running app is untouched
    agent = Agent(installation.home, docker_client)
    version_before = service.attrs["Version"]["Index"]
    [signed] = (workspace.public_dir / "targets").glob("*.catalog.json")
    tampered = signed.read_bytes().replace(VERSION.encode(), b"9.9.9+1.22.1")
    signed.write_bytes(tampered)
    with pytest.raises(TrustError, match=r"catalog\.json"):
        agent.install(APP, "9.9.9+1.22.1")
    service.reload()
    assert service.attrs["Version"]["Index"] == version_before
    assert get_app(installation.http_port, f"{APP}.localhost").status_code == 200
    assert json.loads((installation.home / "apps" / f"{APP}.json").read_text())["version"] == (
        VERSION
    )


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
    assert any(f["id"] == "CVE-2099-0001" for f in evidence.gates["scan"]["findings"])

    outcome = shelf.release([recipe])
    assert outcome.released == []
    assert outcome.refused and "scan: failed" in outcome.refused[0][1]
    assert APP not in Catalog.load(workspace.catalog_path).apps
