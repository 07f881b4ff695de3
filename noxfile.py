"""CI sessions (`nox -s tests|nightly|faults|lint|recipes|pipeline|bench`) over invoke."""

from __future__ import annotations

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]
ENV = {"TESTCONTAINERS_RYUK_DISABLED": "true"}


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """The tooling's tests, against a real engine, registry, Swarm and trivy."""
    _install(session)
    # the slowest tests are listed at the end: what to move out when the suite nears its budget;
    # tests marked `nightly` (the clean-clone history rebuild) run in `nox -s nightly`
    args = session.posargs or ["tests"]
    session.run("pytest", "--durations=25", "-m", "not nightly", *args, env=ENV)


@nox.session
def nightly(session: nox.Session) -> None:
    """The slow tests kept out of the per-change suite (a scheduled job runs them)."""
    _install(session)
    args = session.posargs or ["tests"]
    session.run("pytest", "--durations=0", "-m", "nightly", *args, env=ENV)


@nox.session
def faults(session: nox.Session) -> None:
    """The fault suite alone (also part of `tests`): real faults injected into the engine,
    registry, catalogue server, release job and agent; figures for benchmarks/faults.md."""
    _install(session)
    session.run("pytest", "--durations=0", *(session.posargs or ["tests/faults"]), env=ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy and the recipe linter."""
    _install(session)
    session.run("ruff", "check", "src", "tests", "tasks.py", "noxfile.py", "recipes")
    session.run("mypy")
    session.run("invoke", "lint")


@nox.session
def recipes(session: nox.Session) -> None:
    """Build, test and scan every recipe whose content has no passing evidence yet."""
    _install(session)
    session.run("invoke", "vet", env=ENV)


@nox.session
def pipeline(session: nox.Session) -> None:
    """The whole path: vet, release the signed catalogue, install on a local installation."""
    _install(session)
    session.run("invoke", "pipeline", env=ENV)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; figures land in benchmarks/."""
    _install(session)
    session.run("python", "benchmarks/run.py", *session.posargs, env=ENV)
