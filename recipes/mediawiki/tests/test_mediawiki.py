"""MediaWiki installs itself on MariaDB, lets its administrator log in, edit and upload,
keeps anonymous visitors to reading (the default), keeps no secret in its data volume
and keeps its pages across restarts; all checked through MediaWiki's action API."""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

import hooks

from commonshelf.harness import RunningStack
from commonshelf.recipe import Recipe

EVAL = "php /usr/share/mediawiki/maintenance/eval.php"


def setting(recipe: Recipe, name: str) -> str:
    """The settings' defaults: what the harness runs."""
    return str(recipe.manifest["env"][name]["default"])


def test_health_path_answers_with_the_wikis_siteinfo(app: RunningStack, recipe: Recipe) -> None:
    health = app.get(recipe.main.health)
    assert health.status_code == 200
    general = health.json()["query"]["general"]
    assert general["sitename"] == setting(recipe, "WIKI_NAME")
    assert general["server"] == setting(recipe, "SERVER_URL")
    assert general["generator"] == f"MediaWiki {recipe.upstream_version}"
    assert general["dbtype"] == "mysql"


def test_runs_unprivileged(app: RunningStack) -> None:
    assert app.exec("id -un").strip() == "www-data"
    assert app.exec("awk '/^Uid:/ {print $2}' /proc/1/status").strip() == "33"


def test_administrator_logs_in_with_the_generated_password(
    app: RunningStack, recipe: Recipe
) -> None:
    wiki = hooks.admin(app)
    info = wiki.get(action="query", meta="userinfo", uiprop="groups")["query"]["userinfo"]
    assert info["name"] == setting(recipe, "ADMIN_USER")
    assert {"sysop", "bureaucrat"} <= set(info["groups"])


def test_a_wrong_password_is_refused(app: RunningStack, recipe: Recipe) -> None:
    wiki = hooks.Wiki(app)
    result = wiki.login(setting(recipe, "ADMIN_USER"), "not-the-password-0")
    assert result["status"] == "FAIL"
    assert wiki.get(action="query", meta="userinfo")["query"]["userinfo"].get("anon") is True


def test_administrator_edits_a_page_and_it_reads_back(app: RunningStack, recipe: Recipe) -> None:
    wiki = hooks.admin(app)
    text = "Hello from the '''recipe tests'''. See [[Main Page]]."
    edited = wiki.edit("Recipe test page", text, summary="recipe test")
    assert edited["edit"]["result"] == "Success", edited
    revision = hooks.Wiki(app).revision("Recipe test page")
    assert revision is not None
    assert revision["slots"]["main"]["content"] == text
    assert revision["user"] == setting(recipe, "ADMIN_USER")
    parsed = wiki.get(action="parse", page="Recipe test page", prop="text|links")["parse"]
    assert "<b>recipe tests</b>" in parsed["text"]
    assert {"ns": 0, "title": "Main Page", "exists": True} in parsed["links"]


def test_anonymous_edits_are_refused_by_default(app: RunningStack, recipe: Recipe) -> None:
    assert setting(recipe, "ANONYMOUS_EDITS") == "no"
    hooks.admin(app).edit("Anonymous target", "Written by the administrator.")
    visitor = hooks.Wiki(app)
    token = visitor.token()
    assert token == "+\\"  # the anonymous token
    refused = visitor.post(action="edit", title="Anonymous target", text="vandalised", token=token)
    assert refused["error"]["code"] == "permissiondenied", refused
    created = visitor.post(action="edit", title="Anonymous new page", text="spam", token=token)
    assert "error" in created, created
    revision = visitor.revision("Anonymous target")
    assert (
        revision is not None
        and revision["slots"]["main"]["content"] == "Written by the administrator."
    )
    assert visitor.revision("Anonymous new page") is None


def test_the_anonymous_edits_setting_is_what_decides(app: RunningStack) -> None:
    probe = (
        'echo json_encode([$wgGroupPermissions["*"]["edit"], $wgGroupPermissions["*"]["read"]]);'
    )
    allowed = app.exec(f"echo '{probe}' | ANONYMOUS_EDITS=yes {EVAL}").strip().splitlines()[-1]
    refused = app.exec(f"echo '{probe}' | ANONYMOUS_EDITS=no {EVAL}").strip().splitlines()[-1]
    assert allowed == "[true,true]"
    assert refused == "[false,true]"


def test_uploads_are_stored_in_the_data_volume_and_served(app: RunningStack) -> None:
    wiki = hooks.admin(app)
    content = hooks.png((200, 30, 30), size=8)
    uploaded = wiki.upload("Recipe-test.png", content, comment="recipe test")
    assert uploaded["upload"]["result"] == "Success", uploaded
    image = wiki.get(
        action="query", titles="File:Recipe-test.png", prop="imageinfo", iiprop="url|sha1|mime"
    )
    info = image["query"]["pages"][0]["imageinfo"][0]
    assert info["mime"] == "image/png"
    assert info["sha1"] == hashlib.sha1(content).hexdigest()
    path = urlparse(info["url"]).path
    assert path.startswith("/images/")
    stored = app.exec(f"sha1sum /var/lib/mediawiki{path}").split()[0]
    assert stored == hashlib.sha1(content).hexdigest()
    served = app.get(path)
    assert served.status_code == 200 and served.content == content
    assert served.headers.get("X-Content-Type-Options") == "nosniff"


def test_no_secret_is_kept_in_the_data_volume(app: RunningStack) -> None:
    settings = app.exec("cat /var/lib/mediawiki/LocalSettings.php")
    assert "require_once '/usr/share/commonshelf/mediawiki-settings.php';" in settings
    for name in ("db_password", "admin_password", "secret_key"):
        secret = app.exec(f"cat /run/secrets/{name}").strip()
        assert len(secret) >= 16
        assert app.exec(f"grep -rlF '{secret}' /var/lib/mediawiki || true").strip() == "", name


def test_code_and_configuration_are_not_served(app: RunningStack) -> None:
    for path in (
        "/LocalSettings.php",
        "/mw-config/",
        "/maintenance/update.php",
        "/includes/",
        "/vendor/",
        "/images/deleted/",
    ):
        assert app.get(path).status_code == 403, path
    page = app.get("/index.php?title=Main_Page")
    assert page.status_code == 200
    assert "MediaWiki has been installed" in page.text


def test_pages_and_files_survive_a_restart(app: RunningStack) -> None:
    hooks.seed(app)
    hooks.verify(app)
    app.restart()
    hooks.verify(app)
    assert "bringing the database schema up to date" in app.logs("app", lines=5000)
    # The administrator still logs in after the restart.
    hooks.admin(app)
