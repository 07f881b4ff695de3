"""An installation reads advisories and SBOMs from a real signed repository over HTTP: `info`
and `apps` show the advisory affecting the running version, `sbom` writes exactly the
published bytes, and a tampered SBOM, or one the catalogue does not name, is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import (
    Advisory,
    AppEntry,
    TargetRef,
    VersionEntry,
)
from commonshelf.catalogue.server import serving
from commonshelf.catalogue.signing import Publisher, load_or_create_keys
from commonshelf.installation import cli
from commonshelf.installation.subscription import Subscription

from ..entries import seat_installation, version_entry

RUNNING, FIXED = "1.1.0+2", "1.1.1+2"
SBOM = json.dumps(
    {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"name": "openssl"}]}
).encode()
SBOM_PATH = f"sbom/web/{RUNNING}/app.cdx.json"
UNNAMED_PATH = f"sbom/web/{FIXED}/app.cdx.json"  # published, but the catalogue names other bytes


def _entry(ref: TargetRef) -> VersionEntry:
    return version_entry(sboms={"app": ref})


def _catalog() -> bytes:
    named = TargetRef(path=SBOM_PATH, sha256=hashlib.sha256(SBOM).hexdigest(), length=len(SBOM))
    other = TargetRef(path=UNNAMED_PATH, sha256="0" * 64, length=len(SBOM))
    advisory = Advisory(
        id="CVE-2099-0001",
        severity="CRITICAL",
        package="openssl",
        affected=(RUNNING,),
        fixed_in=FIXED,
        package_fixed="3.0.11-1",
        title="a hole in TLS",
    )
    web = AppEntry(
        title="Web",
        description="A web app",
        category="web",
        versions={RUNNING: _entry(named), FIXED: _entry(other)},
        advisories=(advisory,),
    )
    return Catalog(apps={"web": web}).to_bytes()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The catalogue, the SBOMs and their signed metadata, served on loopback."""
    public = tmp_path / "public"
    keys = load_or_create_keys(tmp_path / "keys", env={})[0]
    Publisher(public, keys).publish(
        {"catalog.json": _catalog(), SBOM_PATH: SBOM, UNNAMED_PATH: SBOM + b" "}
    )
    with serving(public) as url:
        yield url, public


def _installation(home: Path, url: str, public: Path) -> Path:
    """An installation subscribed to `url` that runs web RUNNING (its record as the deployer
    writes it; nothing is deployed: these commands read records and the catalogue only)."""
    Subscription.create(home / "tuf", url, (public / "metadata" / "1.root.json").read_bytes())
    return seat_installation(home, url, "web", RUNNING)


def _run(home: Path, *argv: str) -> int:
    return cli.main(["--home", str(home), *argv])


def test_advisories_and_sboms_reach_an_installation_through_tuf(
    served: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, public = served
    home = _installation(tmp_path / "agent", url, public)
    assert _run(home, "--json", "info", "web") == 0
    info = json.loads(capsys.readouterr().out)
    [advisory] = info["advisories"]
    assert advisory["id"] == "CVE-2099-0001" and advisory["severity"] == "CRITICAL"
    assert (
        advisory["summary"] == "CVE-2099-0001 (critical, openssl 3.0.11-1 → fixed in web 1.1.1+2)"
    )
    assert advisory["action"] == "the next unattended run moves web to 1.1.1+2, which fixes it."
    running = next(v for v in info["versions"] if v["version"] == RUNNING)
    assert [s["path"] for s in running["sboms"]] == [SBOM_PATH]
    assert _run(home, "--json", "apps") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["advisories"], row["worst"]) == (1, "CRITICAL")
    # the SBOM arrives exactly as published, verified against the signed targets metadata
    out = tmp_path / "web.cdx.json"
    assert _run(home, "sbom", "web", "--out", str(out)) == 0
    assert out.read_bytes() == SBOM
    assert "Wrote the SBOM of web 1.1.0+2" in capsys.readouterr().out
    # a signed target that is not the file the catalogue names is refused
    refused = tmp_path / "unnamed.cdx.json"
    assert _run(home, "sbom", "web", "--version", FIXED, "--out", str(refused)) == 2
    err = capsys.readouterr().err
    assert "is signed, but is not the SBOM the catalogue names" in err and "Fix:" in err
    assert not refused.exists()


def test_a_tampered_sbom_is_refused(
    served: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, public = served
    [stored] = (public / "targets" / "sbom" / "web" / RUNNING).glob("*.app.cdx.json")
    stored.write_bytes(SBOM.replace(b"openssl", b"openssh"))  # same length, other bytes
    home = _installation(tmp_path / "agent", url, public)
    out = tmp_path / "web.cdx.json"
    assert _run(home, "sbom", "web", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"{SBOM_PATH} from {url} does not match its signed hash" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert not (home / "tuf" / "targets" / SBOM_PATH).exists()
