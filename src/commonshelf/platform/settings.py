"""Where things live and which services to use, with embedded defaults.

Every default works on a single machine with no configuration (local registry,
local static catalogue, single-node Swarm); each can be overridden by an
environment variable so CI and tests can point elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from commonshelf.platform import apt_sources
from commonshelf.platform.errors import CommonshelfError

# The top matrix level: every check of ci.levels.CHECKS passed and the recipe is lint-clean
# (ci.levels checks that this matches; it lives here so Settings need not import ci).
MAX_LEVEL = 7


def _repo_root() -> Path:
    """The checkout this package was installed from in editable mode, else the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "recipes").is_dir():
            return parent
    return Path.cwd()


class _DebianMirror:
    """`Settings.debian_mirror`: the mirror given (COMMONSHELF_DEBIAN_MIRROR), else the one
    the host's apt sources name, looked up on first read. Reading it on a host with neither
    raises EnvironmentNotReady: only building the base image needs a mirror, so loading
    Settings never fails for want of one."""

    _slot = "_debian_mirror"

    def __get__(self, settings: Settings | None, owner: type[Settings] | None = None) -> str:
        if settings is None:
            return ""  # the field's default: none given, use the host's
        mirror: str = settings.__dict__.get(self._slot, "")
        if not mirror:
            found = apt_sources.host_mirror()
            if found is None:
                raise apt_sources.no_mirror_error()
            mirror = settings.__dict__[self._slot] = found
        return mirror

    def __set__(self, settings: Settings, mirror: str) -> None:
        settings.__dict__[self._slot] = mirror.strip().rstrip("/")


@dataclass(frozen=True)
class Settings:
    """Paths and endpoints of one workspace (a checkout of the shelf)."""

    root: Path
    state_dir: Path
    registry: str
    catalogue_port: int
    debian_mirror: _DebianMirror = _DebianMirror()  # a str: see _DebianMirror
    min_level: int = MAX_LEVEL  # every check passed and lint-clean
    # the OCI repository trivy pulls its vulnerability DB from ("": the project's registry's
    # commonshelf/trivy-db, built from shared/advisories/ by `invoke vulndb`)
    trivy_db_repository: str = ""
    # the repository a release extends, as it is served (COMMONSHELF_PUBLISHED_URL: its
    # metadata/ and targets/ under that URL) or as a folder (COMMONSHELF_PUBLISHED_DIR);
    # neither: the local public/ (the demo). See catalogue/origin.py.
    published_url: str = ""
    published_dir: Path | None = None

    @property
    def published_source(self) -> str | None:
        """The published repository a release starts from, or None (none configured)."""
        if self.published_url:
            return self.published_url
        return str(self.published_dir) if self.published_dir is not None else None

    @property
    def trust_anchor(self) -> Path:
        """The pinned root (committed): a published repository must chain to it."""
        return self.shared_dir / "trust" / "root.json"

    @property
    def vulndb_repository(self) -> str:
        return self.trivy_db_repository or f"{self.registry}/commonshelf/trivy-db"

    @property
    def recipes_dir(self) -> Path:
        return self.root / "recipes"

    @property
    def shared_dir(self) -> Path:
        return self.root / "shared"

    @property
    def public_dir(self) -> Path:
        return self.root / "public"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def build_dir(self) -> Path:
        """Per-checkout work products that are not released: evidence, SBOMs, logs."""
        return self.root / "build"

    @property
    def evidence_dir(self) -> Path:
        return self.build_dir / "evidence"

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.json"

    @property
    def releases_path(self) -> Path:
        return self.root / "RELEASES.md"

    @property
    def trivy_cache(self) -> Path:
        """trivy's shared cache; a DB repository other than the default gets its own, so
        scans against a mirror (or a test's DB) never replace the default DB under others."""
        if not self.trivy_db_repository:
            return self.state_dir / "trivy"
        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.trivy_db_repository)
        return self.state_dir / f"trivy-{slug}"

    @property
    def registry_dir(self) -> Path:
        return self.state_dir / "registry"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def catalogue_url(self) -> str:
        return f"http://127.0.0.1:{self.catalogue_port}"

    @classmethod
    def load(
        cls,
        root: Path | None = None,
        env: Mapping[str, str] | None = None,
        default_root: Path | None = None,
    ) -> Settings:
        """`root` if given, else COMMONSHELF_ROOT, else `default_root` (the clone a command
        runs from: tasks.py's folder), else the checkout this package was installed from."""
        env = os.environ if env is None else env
        chosen = root or env.get("COMMONSHELF_ROOT") or default_root or _repo_root()
        published_url, published_dir = _published(env)
        return cls(
            root=Path(chosen).resolve(),
            state_dir=Path(env.get("COMMONSHELF_STATE_DIR", "/var/lib/commonshelf")),
            registry=env.get("COMMONSHELF_REGISTRY", "127.0.0.1:5000"),
            catalogue_port=int(env.get("COMMONSHELF_CATALOGUE_PORT", "8700")),
            debian_mirror=env.get(apt_sources.ENV_VAR, ""),  # "": the host's apt sources
            min_level=_level(env.get("COMMONSHELF_MIN_LEVEL", "")),
            trivy_db_repository=env.get("COMMONSHELF_TRIVY_DB_REPOSITORY", ""),
            published_url=published_url,
            published_dir=published_dir,
        )


def _level(text: str) -> int:
    """COMMONSHELF_MIN_LEVEL: a level from 0 to the top one (the default)."""
    if not text.strip():
        return MAX_LEVEL
    if not text.strip().isdigit() or not 0 <= int(text) <= MAX_LEVEL:
        raise CommonshelfError(
            f"COMMONSHELF_MIN_LEVEL is '{text}'.",
            f"set it to a whole number from 0 to {MAX_LEVEL}, or unset it for {MAX_LEVEL}.",
        )
    return int(text)


def _published(env: Mapping[str, str]) -> tuple[str, Path | None]:
    """COMMONSHELF_PUBLISHED_URL (http or https) or COMMONSHELF_PUBLISHED_DIR, not both."""
    url = env.get("COMMONSHELF_PUBLISHED_URL", "").strip()
    folder = env.get("COMMONSHELF_PUBLISHED_DIR", "").strip()
    if url and folder:
        raise CommonshelfError(
            "Both COMMONSHELF_PUBLISHED_URL and COMMONSHELF_PUBLISHED_DIR are set.",
            "set the one the release should start from, and unset the other.",
        )
    if url and not url.startswith(("http://", "https://")):
        raise CommonshelfError(
            f"COMMONSHELF_PUBLISHED_URL is '{url}', not an http(s) URL.",
            "set it to the address the repository is served at, e.g. "
            "https://catalogue.example/ (its metadata/ and targets/ below it).",
        )
    return url.rstrip("/"), Path(folder).resolve() if folder else None
