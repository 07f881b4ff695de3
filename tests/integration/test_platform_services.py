"""The shared database services, built from `shared/services/` and run the way a recipe's own
tests run them (generated secrets mounted where Swarm puts them, settings' defaults filled):
a consistent dump and load through their own clients, a dump of another database refused,
and a missing password secret named in one line."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from commonshelf.ci import images
from commonshelf.ci.containers import RunningStack, start_stack
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, load_recipe

from ..conftest import REPO

ENGINES = {
    "postgres": {
        "image": "commonshelf/postgres",
        "environment": {
            "POSTGRES_DB": "${DB_NAME}",
            "POSTGRES_USER": "shelf",
            "POSTGRES_PASSWORD_FILE": "/run/secrets/db_password",
        },
        "volumes": ["db:/var/lib/postgresql"],
        "port": 5432,
        # (sql to run as the app's user over TCP, with the generated password)
        "client": "PGPASSWORD=$(cat /run/secrets/db_password) psql -h 127.0.0.1 -U shelf -d {db}"
        " -v ON_ERROR_STOP=1 -At -c",
    },
    "mariadb": {
        "image": "commonshelf/mariadb",
        "environment": {
            "MARIADB_DATABASE": "${DB_NAME}",
            "MARIADB_USER": "shelf",
            "MARIADB_PASSWORD_FILE": "/run/secrets/db_password",
        },
        "volumes": ["db:/var/lib/mysql"],
        "port": 3306,
        "client": "mariadb -h 127.0.0.1 -u shelf -p$(cat /run/secrets/db_password) {db} -N -e",
    },
}


def _db_recipe(root: Path, engine: str) -> Recipe:
    """A one-service recipe whose main service is the platform database."""
    shutil.copytree(REPO / "shared", root / "shared")
    folder = root / "recipes" / f"{engine}-fixture"
    shutil.copytree(REPO / "recipes" / "custom-html", folder)
    spec = ENGINES[engine]
    service = {
        "image": spec["image"],
        "environment": spec["environment"],
        "secrets": ["db_password"],
        "volumes": spec["volumes"],
        "healthcheck": {"test": ["CMD", "db-health"], "interval": "2s", "retries": 30},
    }
    compose = {
        "version": "3.8",
        "services": {"db": service},
        "volumes": {"db": None},
        "secrets": {"db_password": {"external": True}},
    }
    (folder / "compose.yml").write_text(yaml.safe_dump(compose))
    manifest = yaml.safe_load((folder / "recipe.yml").read_text())
    manifest.update(
        name=folder.name,
        main={"service": "db", "port": spec["port"], "health": "/", "timeout": 120},
        services={"db": {"platform": engine}},
        data=[{"volume": "db", "service": "db", "path": spec["volumes"][0].split(":")[1]}],
        env={"DB_NAME": {"default": "shelfdata", "description": "the database's name"}},
        secrets={"db_password": {"description": "the database password"}},
        backup={"service": "db", "pre": ["db-dump"], "restore": ["db-load"]},
    )
    (folder / "recipe.yml").write_text(yaml.safe_dump(manifest))
    return load_recipe(folder)


@pytest.fixture(params=sorted(ENGINES))
def database(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    base_image: str,
    settings: Settings,
) -> Iterator[tuple[str, RunningStack]]:
    engine = str(request.param)
    recipe = _db_recipe(tmp_path, engine)
    built = images.build_recipe(docker_client, recipe, base_image, revision="t", source="t")
    stack = start_stack(recipe, {"db": built["db"].ref}, docker_client, scope=f"pst-{engine}")
    try:
        yield engine, stack
    finally:
        stack.stop()


def _sql(stack: RunningStack, engine: str, statement: str, db: str = "shelfdata") -> str:
    client = str(ENGINES[engine]["client"]).format(db=db)
    return stack.exec(f'{client} "{statement}"', service="db").strip()


def test_dump_and_load_keep_exactly_the_dumped_data(database: tuple[str, RunningStack]) -> None:
    engine, stack = database
    password = stack.secret("db_password")
    assert len(password) == 32 and password.isalnum()
    # the setting's default named the database; the generated secret is the user's password
    _sql(stack, engine, "CREATE TABLE notes (body VARCHAR(100))")
    _sql(stack, engine, "INSERT INTO notes VALUES ('kept'), ('also kept')")
    assert "dumped shelfdata" in stack.exec("db-dump", service="db")
    _sql(stack, engine, "INSERT INTO notes VALUES ('after the dump')")
    assert "loaded" in stack.exec("db-load", service="db")
    assert _sql(stack, engine, "SELECT body FROM notes ORDER BY body").splitlines() == [
        "also kept",
        "kept",
    ]
    # a restart keeps the data, and the password is still the secret's
    stack.restart("db")
    assert _sql(stack, engine, "SELECT COUNT(*) FROM notes") == "2"


def test_a_dump_of_another_database_is_refused(database: tuple[str, RunningStack]) -> None:
    engine, stack = database
    stack.exec("db-dump", service="db")
    env = ENGINES[engine]["environment"]
    assert isinstance(env, dict)
    variable = next(k for k in env if k.endswith(("_DB", "_DATABASE")))
    backup = "/var/lib/postgresql/backup" if engine == "postgres" else "/var/lib/mysql/backup"
    suffix = "dump" if engine == "postgres" else "sql"
    stack.exec(f"cp {backup}/shelfdata.{suffix} {backup}/other.{suffix}", service="db")
    with pytest.raises(AssertionError, match=r"dump of database 'shelfdata', not 'other'"):
        stack.exec(f"{variable}=other db-load", service="db")


def test_a_missing_password_secret_is_named(database: tuple[str, RunningStack]) -> None:
    engine, stack = database
    variable = f"{'POSTGRES' if engine == 'postgres' else 'MARIADB'}_PASSWORD_FILE"
    with pytest.raises(AssertionError, match=r"the password secret /run/secrets/nope is missing"):
        stack.exec(f"{variable}=/run/secrets/nope db-entrypoint", service="db")
