"""Where image builds download Python packages from, taken from this host's pip, never
written in the repository (as `apt_sources` does for Debian's mirror).

Recipes install hash-locked requirements (`--require-hashes`), so their integrity rests on
the hashes; a Dockerfile that declares `ARG PIP_TRUSTED_HOST` is handed the index's hosts
(pip reads the variable) for machines whose HTTPS is intercepted by a CA the base image
does not know.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

ENV_VAR = "COMMONSHELF_PIP_TRUSTED_HOST"


def trusted_hosts(env: Mapping[str, str] | None = None) -> str:
    """Space-separated hosts: COMMONSHELF_PIP_TRUSTED_HOST, else the host pip's index
    (PIP_INDEX_URL, else pip's own default index and its file host)."""
    env = os.environ if env is None else env
    if env.get(ENV_VAR):
        return env[ENV_VAR]
    index = env.get("PIP_INDEX_URL", "")
    if index:
        return urlsplit(index).hostname or ""
    from pip._internal.models.index import PyPI  # pip's own default, not a name of ours

    return f"{PyPI.netloc} {PyPI.file_storage_domain}"
