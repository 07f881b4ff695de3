"""Which old images an installation may remove: never one a running, previous, backed-up or
pending version of any installed app pins (shared database images included), and only
images of the installed apps' catalogue versions."""

from __future__ import annotations

from commonshelf.catalogue.catalog import Catalog
from commonshelf.catalogue.contract import ServiceImage
from commonshelf.installation.image_cleanup import unused_images
from commonshelf.installation.state import Installed

from ..entries import version_entry

DB = "reg/commonshelf/postgres@sha256:" + "d" * 64


def _image(app: str, version: str) -> str:
    return f"reg/commonshelf/{app}-app@sha256:{version.replace('.', '')[:5]:0<64}"


def _catalog() -> Catalog:
    catalog = Catalog()
    for app in ("web", "wiki", "other"):
        for version in ("1.0.0+1", "1.1.0+1", "1.2.0+1", "1.3.0+1"):
            services = {"app": ServiceImage(image=_image(app, version), digest="")}
            if app != "other":
                services["db"] = ServiceImage(image=DB, digest="")
            entry = version_entry(services=services)
            catalog.add_version(app, app.title(), "", "tools", version, entry)
    return catalog


def _running(app: str, version: str, previous: str = "") -> Installed:
    return Installed(
        app=app,
        version=version,
        stack=app,
        url=f"http://{app}.localhost/",
        images={"app": _image(app, version), "db": DB},
        main_service="app",
        main_port=80,
        installed_at="2026-11-27T00:00:00Z",
        previous=previous,
    )


def test_only_versions_nothing_needs_are_removed() -> None:
    installed = {
        "web": _running("web", "1.3.0+1", previous="1.2.0+1"),
        "wiki": _running("wiki", "1.1.0+1"),
    }
    kept = {"web": {"1.0.0+1"}}  # a kept backup was taken with 1.0.0
    unused = unused_images(_catalog(), installed, kept)
    assert unused == {_image("web", "1.1.0+1")} | {
        _image("wiki", v) for v in ("1.0.0+1", "1.2.0+1", "1.3.0+1")
    }
    assert DB not in unused  # every kept version pins the shared database image
    assert not any("other-app" in ref for ref in unused)  # not installed: not a candidate


def test_a_version_the_catalogue_no_longer_lists_is_not_guessed_at() -> None:
    installed = {"gone": _running("gone", "1.0.0+1")}
    assert unused_images(_catalog(), installed, {}) == set()
