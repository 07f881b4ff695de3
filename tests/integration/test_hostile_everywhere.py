"""The hostile corpus (tests/hostile/) is refused by every reader: the linter, the loader (unit
tests), and an installation reading it as a signed compose file or catalogue — each with one line
that names the file. Signatures are real (TUF), served over HTTP on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.installation.agent import Agent
from commonshelf.installation.subscription import Subscription
from commonshelf.platform.errors import CommonshelfError
from commonshelf.recipes.lint import lint_shelf

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"
REPO = Path(__file__).resolve().parents[2]
YAML_FILES = sorted(
    p for p in HOSTILE.iterdir() if p.name.endswith((".recipe.yml", ".compose.yml"))
)
CATALOGUES = sorted(HOSTILE.glob("*.catalog.json"))


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bytes]]:
    """Every hostile file published as a signed target of one repository."""
    work = tmp_path_factory.mktemp("hostile-repo")
    keys = load_or_create_keys(work / "keys", env={})[0]
    targets = {f"apps/hostile/{p.name}/compose.yml": p.read_bytes() for p in YAML_FILES}
    targets.update({f"catalogues/{p.name}": p.read_bytes() for p in CATALOGUES})
    Publisher(work / "public", keys).publish(targets)
    with serving(work / "public") as url:
        yield (
            url,
            (work / "public" / "metadata" / "1.root.json").read_bytes(),
        )


def _agent(tmp_path: Path, url: str, root: bytes) -> Agent:
    Subscription.create(tmp_path / "tuf", url, root)
    return Agent(tmp_path)


@pytest.mark.parametrize("hostile", YAML_FILES, ids=lambda p: p.name)
def test_an_installation_refuses_a_signed_hostile_compose_file(
    hostile: Path, signed: tuple[str, bytes], tmp_path: Path
) -> None:
    target = f"apps/hostile/{hostile.name}/compose.yml"
    with pytest.raises(CommonshelfError) as refused:
        _agent(tmp_path, *signed).compose(target)
    message = str(refused.value)
    assert target in message and "\n" not in message


@pytest.mark.parametrize("hostile", CATALOGUES, ids=lambda p: p.name)
def test_an_installation_refuses_a_signed_hostile_catalogue(
    hostile: Path, signed: tuple[str, bytes], tmp_path: Path
) -> None:
    from commonshelf.catalogue.catalog import Catalog

    agent = _agent(tmp_path, *signed)
    target = f"catalogues/{hostile.name}"
    with pytest.raises(CommonshelfError) as refused:
        Catalog.from_bytes(agent.subscription().fetch(target), target)
    message = str(refused.value)
    assert target in message and "\n" not in message


@pytest.mark.parametrize("hostile", YAML_FILES, ids=lambda p: p.name)
def test_lint_refuses_a_hostile_recipe_file(hostile: Path, tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    shutil.copytree(REPO / "shared", shelf / "shared")
    recipe = shelf / "recipes" / "custom-html"
    shutil.copytree(REPO / "recipes" / "custom-html", recipe)
    poses_as = "recipe.yml" if hostile.name.endswith(".recipe.yml") else "compose.yml"
    shutil.copyfile(hostile, recipe / poses_as)
    findings = lint_shelf(shelf, ["custom-html"], external=False)
    errors = [f for f in findings if f.severity == "error" and f.file.endswith(poses_as)]
    assert errors, f"lint accepted {hostile.name} as {poses_as}"
    assert all("\n" not in f.message for f in errors)
