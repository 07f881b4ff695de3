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


def _repo_root() -> Path:
    """The checkout this package was installed from in editable mode, else the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "recipes").is_dir():
            return parent
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    """Paths and endpoints of one workspace (a checkout of the shelf)."""

    root: Path
    state_dir: Path
    registry: str
    catalogue_port: int
    debian_mirror: str
    min_level: int = 7  # matrix.MAX_LEVEL: every check passed and lint-clean

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
        return self.state_dir / "trivy"

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
    def load(cls, root: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            root=(root or Path(env.get("COMMONSHELF_ROOT") or _repo_root())).resolve(),
            state_dir=Path(env.get("COMMONSHELF_STATE_DIR", "/var/lib/commonshelf")),
            registry=env.get("COMMONSHELF_REGISTRY", "127.0.0.1:5000"),
            catalogue_port=int(env.get("COMMONSHELF_CATALOGUE_PORT", "8700")),
            debian_mirror=env.get("COMMONSHELF_DEBIAN_MIRROR", "http://deb.debian.org/debian"),
            min_level=_level(env.get("COMMONSHELF_MIN_LEVEL", "")),
        )


def _level(text: str) -> int:
    """COMMONSHELF_MIN_LEVEL: a level from 0 to the top one (the default)."""
    from commonshelf.ci.matrix import MAX_LEVEL
    from commonshelf.platform.errors import CommonshelfError

    if not text.strip():
        return MAX_LEVEL
    if not text.strip().isdigit() or not 0 <= int(text) <= MAX_LEVEL:
        raise CommonshelfError(
            f"COMMONSHELF_MIN_LEVEL is '{text}'.",
            f"set it to a whole number from 0 to {MAX_LEVEL}, or unset it for {MAX_LEVEL}.",
        )
    return int(text)
