"""One error type that every entry point prints as a single actionable line.

Each error names what is wrong (the file or service) and how to fix it, so a
packager or operator never has to read a traceback.
"""

from __future__ import annotations


class CommonshelfError(Exception):
    """A failure a person can act on: `what` went wrong, `fix` says what to do."""

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.what} Fix: {self.fix}" if self.fix else self.what


class RecipeError(CommonshelfError):
    """A recipe folder is malformed."""


class EnvironmentNotReady(CommonshelfError):
    """Docker, the registry, Swarm or a system package is missing and cannot be set up."""


class BuildError(CommonshelfError):
    """An image build failed."""


class ScanError(CommonshelfError):
    """trivy could not run, or its gate failed."""


class TrustError(CommonshelfError):
    """Signed metadata or a target failed verification; nothing was applied."""


class ReleaseError(CommonshelfError):
    """The release job refused to publish."""


class DeployError(CommonshelfError):
    """An installation could not apply a stack."""


def translate(exc: BaseException) -> CommonshelfError | None:
    """The project error for a library's exception that escaped a module boundary, so the CLI
    and the tasks print one line instead of a traceback (None: a bug, let it show)."""
    import docker.errors
    import requests
    import yaml

    if isinstance(exc, CommonshelfError):
        return exc
    if isinstance(exc, docker.errors.APIError):
        return CommonshelfError(
            f"The Docker engine refused a request: {exc.explanation or exc}.",
            "read the engine's log; `docker info` shows its state.",
        )
    if isinstance(exc, docker.errors.DockerException):
        return CommonshelfError(
            f"The Docker engine cannot be used: {exc}.",
            "start it (`./shelf pipeline` starts one) and check /var/run/docker.sock.",
        )
    if isinstance(exc, requests.RequestException):
        return CommonshelfError(f"A request failed: {exc}.", "check that the service runs.")
    if isinstance(exc, yaml.YAMLError):
        return CommonshelfError(f"Invalid YAML: {str(exc).splitlines()[0]}.", "fix the file.")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CommonshelfError(
            f"{where}{exc.strerror or exc}.", "check the path, its permissions and free space."
        )
    return None
