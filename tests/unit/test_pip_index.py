"""The package index image builds may trust comes from the build machine's pip, never from
the repository: the override first, then pip's configured index, then pip's own default."""

from __future__ import annotations

from pip._internal.models.index import PyPI

from commonshelf.platform.pip_index import ENV_VAR, trusted_hosts


def test_the_trusted_index_comes_from_the_machine() -> None:
    assert trusted_hosts({ENV_VAR: "pypi.corp.invalid"}) == "pypi.corp.invalid"
    assert trusted_hosts({"PIP_INDEX_URL": "https://mirror.invalid:8443/simple"}) == (
        "mirror.invalid"
    )
    assert trusted_hosts({}) == f"{PyPI.netloc} {PyPI.file_storage_domain}"
