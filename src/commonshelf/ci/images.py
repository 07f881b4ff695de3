"""Images: the project's own Debian base image and the recipe images built on it.

Nothing is ever pulled from a container registry: the base image is made with
debootstrap from Debian's mirror and `docker import`, and recipe images are
built on it. Both are keyed by content hashes, so unchanged inputs are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from commonshelf.platform import pip_index
from commonshelf.platform.errors import BuildError, ReleaseError
from commonshelf.platform.loaders import BASE, load_yaml
from commonshelf.platform.proc import run
from commonshelf.platform.progress import Say, quiet
from commonshelf.platform.settings import Settings
from commonshelf.recipes.model import Recipe, content_hash

BASE_REPOSITORY = "commonshelf/base"
LABEL_PREFIX = "dev.commonshelf"


@dataclass(frozen=True)
class BaseImage:
    tag: str
    built: bool  # False when an image with this definition hash already existed


@dataclass(frozen=True)
class BuiltImage:
    """A recipe service's image in the local engine."""

    service: str
    ref: str  # local reference that names exactly this build
    image_id: str
    built: bool


def base_image_tag(settings: Settings) -> str:
    definition = content_hash(settings.shared_dir / "base", settings.debian_mirror)
    return f"{BASE_REPOSITORY}:bookworm-{definition[:12]}"


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _definition(path: Path) -> dict[str, Any]:
    """shared/base/base.yml: debootstrap's `variant` and `suite`, and packages to `include`."""
    definition = load_yaml(path, BASE)
    include = (definition.get("include") or []) if isinstance(definition, dict) else None
    if (
        not isinstance(definition, dict)
        or not all(isinstance(definition.get(key), str) for key in ("variant", "suite"))
        or not isinstance(include, list)
        or not all(isinstance(package, str) for package in include)
    ):
        raise BuildError(
            f"{path} must map `variant` and `suite` to text and `include` to package names.",
            "restore it from git: `git checkout shared/base/base.yml`.",
        )
    return definition


def _import_rootfs(rootfs: Path, tag: str) -> None:
    """`tar -c rootfs | docker import - tag`: the base image, with its label."""
    fix = "check that the Docker engine has disk space."
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        if tar.stdout is None:  # only when Popen was not asked for a pipe
            raise BuildError("tar gave no pipe for the base image's files.", fix)
        run(
            [
                "docker",
                "import",
                "--change",
                'CMD ["/bin/bash"]',
                "--change",
                f"LABEL {LABEL_PREFIX}.base={tag}",
                "-",
                tag,
            ],
            what="docker import of the base image",
            fix=fix,
            error=BuildError,
            stdin=tar.stdout,
        )
    finally:
        if tar.stdout is not None:
            tar.stdout.close()
        tar.wait()
    if tar.returncode != 0:
        # docker imported what tar wrote before it failed: never reuse that image
        with contextlib.suppress(BuildError):
            run(["docker", "rmi", "--force", tag], fix=fix, error=BuildError)
        raise BuildError(
            f"docker import of the base image failed: tar exited {tar.returncode}.",
            "check that the state dir's disk has space and the rootfs is readable.",
        )


def _overlay(source: Path, rootfs: Path, mirror: str) -> None:
    """Copy shared/base/rootfs into the new rootfs, filling in the Debian mirror."""
    for path in sorted(source.rglob("*")):
        target = rootfs / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.write_text(path.read_text().replace("{mirror}", mirror))
            target.chmod(path.stat().st_mode & 0o777)


def ensure_base_image(
    client: docker.DockerClient, settings: Settings, say: Say = quiet
) -> BaseImage:
    """Build the base image from `shared/base/` unless an image of that definition exists."""
    tag = base_image_tag(settings)
    if image_exists(client, tag):
        return BaseImage(tag=tag, built=False)
    definition = _definition(settings.shared_dir / "base" / "base.yml")
    say(f"Building base image {tag} with debootstrap (about 30 s)")
    work_root = settings.state_dir / "tmp"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root, prefix="rootfs-") as work:
        rootfs = Path(work) / "rootfs"
        include = ",".join(definition.get("include") or [])
        argv = ["debootstrap", f"--variant={definition['variant']}"]
        if include:
            argv.append(f"--include={include}")
        run(
            [*argv, definition["suite"], str(rootfs), settings.debian_mirror],
            what="debootstrap",
            fix=f"check that {settings.debian_mirror} is reachable (COMMONSHELF_DEBIAN_MIRROR).",
            error=BuildError,
        )
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        _overlay(settings.shared_dir / "base" / "rootfs", rootfs, settings.debian_mirror)
        for leftovers in ("var/lib/apt/lists", "var/cache/apt", "var/log"):
            for child in (rootfs / leftovers).glob("*"):
                if child.is_file():
                    child.unlink()
        _import_rootfs(rootfs, tag)
    return BaseImage(tag=tag, built=True)


def _build_key(content: str, base_tag: str, name: str) -> str:
    return hashlib.sha256(f"{content}\0{base_tag}\0{name}".encode()).hexdigest()[:16]


def local_repository(recipe: Recipe, service: str) -> str:
    return f"commonshelf/{recipe.name}-{service}"


def _build_args(dockerfile: Path, base_tag: str) -> dict[str, str]:
    """The base image, and the package index's hosts for a Dockerfile that asks for them."""
    args = {"BASE_IMAGE": base_tag}
    if PIP_TRUSTED_HOST_ARG.search(dockerfile.read_text(encoding="utf-8", errors="replace")):
        args["PIP_TRUSTED_HOST"] = pip_index.trusted_hosts()
    return args


PIP_TRUSTED_HOST_ARG = re.compile(r"^\s*ARG\s+PIP_TRUSTED_HOST\b", re.MULTILINE)


def build_context(
    client: docker.DockerClient,
    context: Path,
    *,
    repository: str,
    key: str,
    base_tag: str,
    labels: dict[str, str],
    fix: str,
) -> tuple[str, bool]:
    """Build `context/Dockerfile` on the base image as `repository:build-<key>`.

    Returns the reference and whether it was built now (False: reused).
    """
    ref = f"{repository}:build-{key}"
    if image_exists(client, ref):
        return ref, False
    dockerfile = context / "Dockerfile"
    try:
        for chunk in client.api.build(
            path=str(context),
            tag=ref,
            buildargs=_build_args(dockerfile, base_tag),
            labels=labels,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ):
            if "error" in chunk:
                raise BuildError(f"{dockerfile}: build failed: {str(chunk['error']).strip()}", fix)
    except docker.errors.APIError as exc:
        raise BuildError(
            f"{dockerfile}: the engine refused the build: {exc.explanation}",
            "the Dockerfile must start with `ARG BASE_IMAGE` and `FROM ${BASE_IMAGE}`.",
        ) from exc
    return ref, True


def build_recipe(
    client: docker.DockerClient,
    recipe: Recipe,
    base_tag: str,
    *,
    revision: str,
    source: str,
    say: Say = quiet,
) -> dict[str, BuiltImage]:
    """Build every service image of a recipe on the base image; reuse identical earlier builds."""
    recipe_hash = recipe.content_hash()
    built: dict[str, BuiltImage] = {}
    for service, context in sorted(recipe.builds.items()):
        repository = local_repository(recipe, service)
        key = _build_key(recipe_hash, base_tag, service)
        if not image_exists(client, f"{repository}:build-{key}"):
            say(f"Building {recipe.name}/{service} {recipe.version}")
        ref, fresh = build_context(
            client,
            recipe.path / context,
            repository=repository,
            key=key,
            base_tag=base_tag,
            labels={
                "org.opencontainers.image.title": f"{recipe.title} ({service})",
                "org.opencontainers.image.version": recipe.version,
                "org.opencontainers.image.source": source,
                "org.opencontainers.image.revision": revision,
                "org.opencontainers.image.base.name": base_tag,
                f"{LABEL_PREFIX}.recipe": recipe.name,
                f"{LABEL_PREFIX}.content-hash": recipe_hash,
            },
            fix=f"run `invoke build {recipe.name}` and read the build log.",
        )
        image = client.images.get(ref)
        image.tag(repository, recipe.image_tag)
        built[service] = BuiltImage(service, ref, image.id, built=fresh)
    for service, folder in sorted(recipe.platform.items()):
        shared = build_shared(client, folder, base_tag, revision=revision, source=source)
        if shared.built:
            say(f"Built platform service {folder.name} {shared.version} (for {recipe.name})")
        image = client.images.get(shared.ref)
        image.tag(local_repository(recipe, service), recipe.image_tag)
        built[service] = BuiltImage(service, shared.ref, image.id, built=shared.built)
    return built


@dataclass(frozen=True)
class PlatformImage:
    """A component every installation runs (the proxy), built from `shared/<name>/`."""

    name: str
    version: str  # content hash prefix of its folder and the base image
    ref: str
    built: bool


def build_platform(
    client: docker.DockerClient,
    settings: Settings,
    name: str,
    base_tag: str,
    *,
    revision: str,
    source: str,
) -> PlatformImage:
    """A component of every installation (the proxy), from `shared/<name>/`."""
    return build_shared(
        client, settings.shared_dir / name, base_tag, revision=revision, source=source
    )


def build_shared(
    client: docker.DockerClient, folder: Path, base_tag: str, *, revision: str, source: str
) -> PlatformImage:
    """An image defined once in `shared/` (the proxy, a database service), tagged by the hash
    of its definition and the base image: every recipe and version naming it gets the same
    image, so an app's update leaves its database service untouched."""
    name = folder.name
    version = content_hash(folder, base_tag)[:12]
    with _SHARED_BUILDS.setdefault(name, threading.Lock()):  # recipes vetted side by side
        ref, fresh = _build_shared_locked(folder, name, version, client, base_tag, revision, source)
    return PlatformImage(name=name, version=version, ref=ref, built=fresh)


_SHARED_BUILDS: dict[str, threading.Lock] = {}


def _build_shared_locked(
    folder: Path,
    name: str,
    version: str,
    client: docker.DockerClient,
    base_tag: str,
    revision: str,
    source: str,
) -> tuple[str, bool]:
    return build_context(
        client,
        folder,
        repository=f"commonshelf/{name}",
        key=version,
        base_tag=base_tag,
        labels={
            "org.opencontainers.image.title": f"Commonshelf {name}",
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.source": source,
            "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.base.name": base_tag,
        },
        fix=f"check {folder}/Dockerfile.",
    )


def push(
    client: docker.DockerClient, local_ref: str, registry: str, repository: str, tag: str
) -> str:
    """Push a local image to the registry and return its manifest digest ('sha256:…')."""
    remote = f"{registry}/{repository}"
    try:
        client.images.get(local_ref).tag(remote, tag)
        digest = ""
        for line in client.api.push(remote, tag=tag, stream=True, decode=True):
            if "error" in line:
                raise ReleaseError(
                    f"Registry {registry} refused {remote}:{tag}: {str(line['error']).strip()}",
                    "make sure the registry runs and has disk space (`invoke pipeline` starts a "
                    "local one), or set COMMONSHELF_REGISTRY.",
                )
            aux = line.get("aux") or {}
            digest = aux.get("Digest", digest)
    except docker.errors.APIError as exc:
        raise ReleaseError(
            f"Pushing {remote}:{tag} failed: {exc.explanation}",
            f"check that the registry {registry} runs.",
        ) from exc
    if not digest.startswith("sha256:"):
        raise ReleaseError(
            f"Registry {registry} returned no digest for {remote}:{tag}.",
            "check the registry's log.",
        )
    return digest
