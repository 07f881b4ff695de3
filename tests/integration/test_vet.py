"""CI's gate on the real engine: recipes vetted side by side (each matrix in a rehearsal
installation of its own on Swarm), and the release held to the configured minimum level."""

from __future__ import annotations

import dataclasses

import docker

from commonshelf.catalogue.catalog import Catalog
from commonshelf.ci.pipeline import vet
from commonshelf.ci.promote import release
from commonshelf.ci.rehearsal import Rehearsal
from commonshelf.ci.stages import Shelf
from commonshelf.platform.settings import MAX_LEVEL, Settings
from commonshelf.recipes.scaffold import new_recipe

from .conftest import assert_rehearsals_gone


def _quiet(_: str) -> None:
    pass


def test_recipes_are_vetted_side_by_side_and_release_needs_the_minimum_level(
    workspace: Settings, docker_client: docker.DockerClient, rehearsals: list[Rehearsal]
) -> None:
    new_recipe(workspace.root, "demo-app")
    # custom-html without its seed hook stops at the persistence check: level 2 of 7
    (workspace.recipes_dir / "custom-html" / "tests" / "hooks.py").unlink()
    accepts_level_2 = dataclasses.replace(workspace, min_level=2)
    lenient = Shelf(accepts_level_2)
    recipes = lenient.recipes()
    assert [r.name for r in recipes] == ["custom-html", "demo-app"]

    assert vet(lenient, recipes, jobs=2)

    tests = {r.recipe: r for r in lenient.results if r.stage == "test"}
    first, second = sorted(tests.values(), key=lambda r: r.started)
    assert second.started < first.started + first.seconds, "the recipes were tested one by one"
    custom = lenient.evidence.load("custom-html", recipes[0].version, recipes[0].content_hash())
    demo = lenient.evidence.load("demo-app", recipes[1].version, recipes[1].content_hash())
    assert custom.gates.test is not None and demo.gates.test is not None
    assert custom.gates.test.level == 2 and custom.passed
    assert {c.check: c.status for c in custom.gates.test.matrix}["persistence"] == "skipped"
    assert demo.gates.test.level == MAX_LEVEL and demo.passed
    assert demo.gates.test.upgrade is None  # a first release: nothing to upgrade from
    # each matrix ran in its own rehearsal installation, and each is gone
    assert len({r.namespace for r in rehearsals}) == len(rehearsals) == 2
    assert len({r.config.http_port for r in rehearsals}) == 2
    assert_rehearsals_gone(docker_client, rehearsals)

    strict = Shelf(workspace)  # the default minimum: the top level
    outcome = release(workspace, strict.client, recipes, strict.base_tag, say=_quiet)
    assert outcome.released == [("demo-app", recipes[1].version)]
    [(app, why)] = outcome.refused
    assert app == "custom-html" and f"level 2 is under the minimum level {MAX_LEVEL}" in why
    catalog = Catalog.load(workspace.catalog_path)
    assert catalog.versions("demo-app")[recipes[1].version].vetting.level == MAX_LEVEL
    assert not catalog.versions("custom-html")

    # a shelf that accepts level 2 releases it, shown as such
    outcome = release(accepts_level_2, lenient.client, recipes, lenient.base_tag, say=_quiet)
    assert outcome.released == [("custom-html", recipes[0].version)]
    assert outcome.unchanged == [("demo-app", recipes[1].version)]
    entry = Catalog.load(workspace.catalog_path).versions("custom-html")[recipes[0].version]
    assert entry.vetting.level == 2
    assert entry.vetting.checks["persistence"].status == "skipped"
