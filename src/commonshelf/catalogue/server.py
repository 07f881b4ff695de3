"""Serve the signed repository (`public/`) on loopback in the background, for the demo."""

from __future__ import annotations

from commonshelf.platform import environment
from commonshelf.platform.errors import CommonshelfError
from commonshelf.platform.progress import Say, quiet
from commonshelf.platform.settings import Settings
from commonshelf.platform.wait import poll


def ensure_catalogue_server(settings: Settings, say: Say = quiet) -> str:
    """Serve public/ on loopback in the background (what `invoke serve` does in the foreground)."""
    import sys
    import urllib.request

    url = settings.catalogue_url
    note = str(settings.public_dir)
    name = f"catalogue-{settings.catalogue_port}"
    pid = environment.daemon_pid(settings, name)
    pidfile = settings.state_dir / "run" / f"{name}.pid"
    if pid is not None and pidfile.read_text().split(maxsplit=1)[1:] == [note]:
        return url
    environment.stop_daemon(settings, name)
    say(f"Serving {settings.public_dir} at {url}")
    environment.spawn_daemon(
        settings,
        name,
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(settings.public_dir),
            str(settings.catalogue_port),
        ],
        note=note,
    )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/metadata/1.root.json", timeout=2):
                return True
        except OSError:
            return False

    if poll(answers, 10, 0.2):
        return url
    raise CommonshelfError(
        f"The catalogue server on {url} did not start.",
        f"another process may hold port {settings.catalogue_port} "
        "(set COMMONSHELF_CATALOGUE_PORT).",
    )
