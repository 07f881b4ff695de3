"""CI's gate on the real engine: recipes vetted side by side, and the release held to the
configured minimum level."""

from __future__ import annotations

import dataclasses

import docker

from commonshelf.catalogue.catalog import Catalog
from commonshelf.ci.pipeline import Shelf, vet
from commonshelf.ci.reaper import LABEL_RUN, RUN_ID
from commonshelf.platform.settings import Settings
from commonshelf.recipes.scaffold import new_recipe


def test_recipes_are_vetted_side_by_side_and_release_needs_the_minimum_level(
    workspace: Settings, docker_client: docker.DockerClient
) -> None:
    new_recipe(workspace.root, "demo-app")
    # custom-html without its seed hook stops at the persistence check: level 2 of 7
    (workspace.recipes_dir / "custom-html" / "tests" / "hooks.py").unlink()
    lenient = Shelf(dataclasses.replace(workspace, min_level=2))
    recipes = lenient.recipes()
    assert [r.name for r in recipes] == ["custom-html", "demo-app"]

    assert vet(lenient, recipes, jobs=2)

    tests = {r.recipe: r for r in lenient.results if r.stage == "test"}
    first, second = sorted(tests.values(), key=lambda r: r.started)
    assert second.started < first.started + first.seconds, "the recipes were tested one by one"
    custom = lenient.evidence.load("custom-html", recipes[0].version, recipes[0].content_hash())
    demo = lenient.evidence.load("demo-app", recipes[1].version, recipes[1].content_hash())
    assert custom.gates["test"]["level"] == 2 and custom.passed
    assert {c["check"]: c["status"] for c in custom.gates["test"]["matrix"]}["persistence"] == (
        "skipped"
    )
    assert demo.gates["test"]["level"] == 7
    assert not docker_client.containers.list(
        all=True, sparse=True, filters={"label": f"{LABEL_RUN}={RUN_ID}"}
    )

    strict = Shelf(workspace)  # the default minimum: the top level
    outcome = strict.release(recipes)
    assert outcome.released == [("demo-app", recipes[1].version)]
    [(app, why)] = outcome.refused
    assert app == "custom-html" and "level 2 is under the minimum level 7" in why
    catalog = Catalog.load(workspace.catalog_path)
    assert catalog.versions("demo-app")[recipes[1].version]["level"] == 7
    assert not catalog.versions("custom-html")

    outcome = lenient.release(recipes)  # a shelf that accepts level 2 releases it, shown as such
    assert outcome.released == [("custom-html", recipes[0].version)]
    entry = Catalog.load(workspace.catalog_path).versions("custom-html")[recipes[0].version]
    assert entry["level"] == 2 and entry["checks"]["persistence"] == "skipped"
