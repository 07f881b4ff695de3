"""`status`, `apps` and `info` show the advisories affecting the running version (with the
command that fixes them), `info` where each version's SBOMs are, and `sbom` writes exactly
the bytes the catalogue names, or one line saying why not."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import (
    Advisory,
    AppEntry,
    TargetRef,
    VersionEntry,
)
from commonshelf.installation import cli, swarm
from commonshelf.installation.agent import Agent
from commonshelf.platform.errors import TrustError

from ..entries import seat_installation, version_entry

RUNNING = "1.1.0+2"
SBOM = b'{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n'


def _ref(app: str, version: str, service: str, data: bytes = SBOM) -> TargetRef:
    return TargetRef(
        path=f"sbom/{app}/{version}/{service}.cdx.json",
        sha256=hashlib.sha256(data).hexdigest(),
        length=len(data),
    )


def _entry(version: str, sboms: tuple[str, ...] = ("app",)) -> VersionEntry:
    return version_entry(sboms={s: _ref("web", version, s) for s in sboms})


CRITICAL = Advisory(
    id="CVE-2099-0001",
    severity="CRITICAL",
    package="openssl",
    affected=(RUNNING, "1.1.1+2"),
    fixed_in="2.0.0+1",
    package_fixed="3.0.11-1",
    title="a hole in TLS",
)
CATALOG = Catalog(
    apps={
        "web": AppEntry(
            title="Web",
            description="A web app",
            category="web",
            versions={
                "1.0.0+1": _entry("1.0.0+1", sboms=()),
                RUNNING: _entry(RUNNING),
                "1.1.1+2": _entry("1.1.1+2", sboms=("app", "db")),
                "2.0.0+1": _entry("2.0.0+1", sboms=("db", "worker")),
            },
            advisories=(CRITICAL,),
        ),
        "notes": AppEntry(
            title="Notes",
            description="Notes",
            category="office",
            versions={"1.0.0+1": _entry("1.0.0+1")},
        ),
    }
)


class _Subscription:
    """Hands out targets as a verified Subscription would (the TUF side is integration-tested)."""

    def __init__(self, targets: dict[str, bytes]) -> None:
        self.targets = targets
        self.asked: list[str] = []

    def fetch(self, path: str) -> bytes:
        self.asked.append(path)
        return self.targets[path]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installation running web 1.1.0+2 (and no notes) against CATALOG, without an engine."""
    seat_installation(tmp_path, "http://127.0.0.1:1", "web", RUNNING)
    monkeypatch.setattr(Agent, "catalog", lambda self: CATALOG)
    monkeypatch.setattr(Agent, "client", property(lambda self: None))
    monkeypatch.setattr(swarm, "stack_services", lambda client, stack: [])
    return tmp_path


def _json(capsys: pytest.CaptureFixture[str], *argv: str, home: Path) -> object:
    assert cli.main(["--home", str(home), "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_status_names_the_advisory_and_the_command_that_fixes_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json(capsys, "status", home=home)
    assert isinstance(rows, list)
    [web] = rows
    assert web["app"] == "web" and web["worst"] == "CRITICAL"
    [advisory] = web["advisories"]
    assert advisory["id"] == "CVE-2099-0001"
    assert advisory["fixed_in"] == "2.0.0+1" and advisory["package_fixed"] == "3.0.11-1"
    assert advisory["command"] == "commonshelf update web --to 2.0.0+1"
    assert set(advisory) == {
        "id", "severity", "package", "package_fixed", "fixed_in", "title", "found",
        "summary", "action", "command",
    }  # fmt: skip
    assert cli.main(["--home", str(home), "status"]) == 0
    text = capsys.readouterr().out
    assert "1 (critical)" in text
    assert (
        "web 1.1.0+2: CVE-2099-0001 (critical, openssl 3.0.11-1 → fixed in web 2.0.0+1): "
        "2.0.0+1 fixes it but is a major version: run `commonshelf update web --to 2.0.0+1`."
    ) in text


def test_status_without_a_verified_catalogue_says_it_does_not_know(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Agent) -> Catalog:
        raise TrustError("catalog.json from http://127.0.0.1:1 could not be fetched.", "check")

    monkeypatch.setattr(Agent, "catalog", refuse)
    rows = _json(capsys, "status", home=home)
    assert isinstance(rows, list)
    assert rows[0]["app"] == "web" and rows[0]["advisories"] is None and rows[0]["worst"] is None
    assert rows[-1]["app"] == "" and "could not be fetched" in rows[-1]["last"]


def test_apps_marks_installed_apps_with_advisories(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json(capsys, "apps", home=home)
    assert isinstance(rows, list)
    by_app = {row["app"]: row for row in rows}
    assert (by_app["web"]["advisories"], by_app["web"]["worst"]) == (1, "CRITICAL")
    assert (by_app["notes"]["advisories"], by_app["notes"]["worst"]) == (None, None)
    assert cli.main(["--home", str(home), "apps"]) == 0
    assert "1 (critical)" in capsys.readouterr().out


def test_info_lists_advisories_and_each_versions_sboms(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = _json(capsys, "info", "web", home=home)
    assert isinstance(info, dict)
    assert info["installed"] == RUNNING and info["worst"] == "CRITICAL"
    [advisory] = info["advisories"]
    assert advisory["title"] == "a hole in TLS" and advisory["package"] == "openssl"
    versions = {v["version"]: v for v in info["versions"]}
    assert versions[RUNNING]["advisories"] == ["CVE-2099-0001"]
    assert versions["2.0.0+1"]["advisories"] == []
    assert versions["1.0.0+1"]["sboms"] == []
    [sbom] = versions[RUNNING]["sboms"]
    assert sbom["path"] == "sbom/web/1.1.0+2/app.cdx.json"
    assert sbom["command"] == "commonshelf sbom web --version 1.1.0+2 --service app"
    assert sbom["sha256"] == hashlib.sha256(SBOM).hexdigest() and sbom["length"] == len(SBOM)
    assert cli.main(["--home", str(home), "info", "web"]) == 0
    text = capsys.readouterr().out
    assert "Advisories affecting web 1.1.0+2" in text and "SBOMs" in text
    # an app that is not installed shows no running version's advisories
    notes = _json(capsys, "info", "notes", home=home)
    assert isinstance(notes, dict)
    assert notes["installed"] is None and notes["advisories"] == [] and notes["worst"] == ""


def test_sbom_writes_the_running_versions_main_service_sbom(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _Subscription(
        {"sbom/web/1.1.0+2/app.cdx.json": SBOM, "sbom/web/1.1.1+2/db.cdx.json": SBOM}
    )
    monkeypatch.setattr(Agent, "subscription", lambda self: fake)
    out = home / "out" / "web.cdx.json"
    assert cli.main(["--home", str(home), "sbom", "web", "--out", str(out)]) == 0
    assert out.read_bytes() == SBOM
    assert "Wrote the SBOM of web 1.1.0+2 (app" in capsys.readouterr().out
    assert not (home / "agent.lock").exists()  # read-only: no lock taken
    assert (
        cli.main(["--home", str(home), "sbom", "web", "--version", "1.1.1+2", "--service", "db"])
        == 0
    )
    assert capsys.readouterr().out == SBOM.decode()
    assert fake.asked == ["sbom/web/1.1.0+2/app.cdx.json", "sbom/web/1.1.1+2/db.cdx.json"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--version", "1.0.0+1"], "web 1.0.0+1 has no SBOM in the catalogue"),
        (["--version", "2.0.0+1"], "has SBOMs for the services db, worker; name one"),
        (["--service", "cache"], "'cache' is not one of them"),
        (["--version", "9.0.0+1"], "has no published version 9.0.0+1"),
    ],
)
def test_sbom_refusals_are_one_line_with_a_fix(
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    says: str,
) -> None:
    monkeypatch.setattr(Agent, "subscription", lambda self: _Subscription({}))
    assert cli.main(["--home", str(home), "sbom", "web", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and "Fix:" in err and len(err.strip().splitlines()) == 1


def test_an_sbom_that_is_not_the_one_the_catalogue_names_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = SBOM.replace(b"1.5", b"1.6")
    fake = _Subscription({"sbom/web/1.1.0+2/app.cdx.json": other})
    monkeypatch.setattr(Agent, "subscription", lambda self: fake)
    out = home / "web.cdx.json"
    assert cli.main(["--home", str(home), "sbom", "web", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is signed, but is not the SBOM the catalogue names" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
