"""What an installation says when the repository fails it: python-tuf's exceptions (and the
fetcher's own) as one sentence naming the file, the likely cause (an attack, a stale
mirror, a wrong clock, the network) and the fix; python-tuf's own wording at most as a detail.

Kept apart from `subscription.py`, which reads the repository, so that the sentences can
change without touching how it is read. `tests/integration/test_tuf_attacks.py` shows
each refusal as an operator sees it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata
from tuf.api.serialization import DeserializationError

from commonshelf.platform.clock import now_iso
from commonshelf.platform.errors import TrustError

METADATA = "the repository metadata"  # `what` of a refresh (a target's path otherwise)
FILE_TIMEOUTS = 4  # one file may take this many timeouts in all: what a silent server costs


class CutShort(tuf_errors.DownloadError):
    """The connection ended before the whole file arrived."""


class Endless(tuf_errors.SlowRetrievalError):
    """The server was still sending a file when its time was up (FILE_TIMEOUTS)."""


@dataclass(frozen=True)
class Read:
    """What the failed read knew: which file it asked for last, the metadata it downloaded
    (by role file name), the folder of the metadata held, the timeout per request."""

    what: str
    url: str
    timeout: int
    asked: str
    downloaded: Mapping[str, bytes]
    held: Path

    def version(self, name: str) -> str:
        """The version of the metadata file `name` (N.role.json) as it was served, or ""."""
        data = self.downloaded.get(re.sub(r"^\d+\.", "", name))
        try:
            return str(Metadata.from_bytes(data).signed.version) if data else ""
        except (DeserializationError, ValueError, TypeError):
            return ""

    def expired(self, exc: BaseException) -> str:
        """Which role expired, when, and what this machine's clock says: a clock far ahead
        is as likely a cause as a publisher that stopped re-signing."""
        found = re.search(r"\b(root|timestamp|snapshot|targets)\b", str(exc))
        role = found.group(1) if found else "metadata"
        try:  # the bytes this poll downloaded, else the copy held
            data = self.downloaded.get(f"{role}.json") or (self.held / f"{role}.json").read_bytes()
            expires = Metadata.from_bytes(data).signed.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
            when = f"it expired at {expires}; "
        except (OSError, DeserializationError, ValueError, TypeError):
            when = ""
        return f"{role}.json: {when}this machine's clock says {now_iso()}"


def _rollback(text: str) -> bool:
    """python-tuf's version complaint is about going back (not about a file other than the
    one the signed metadata names): its rollback checks say "must be >=" or name a file
    ("Expected targets.json version 1, got 2." — with the numbers the wrong way round)."""
    return "must be >=" in text or bool(re.search(r"\.json version", text))


def _signed(exc: BaseException) -> str:
    """python-tuf's "root was signed by 1/2 keys" as "1 of the 2 root keys required signed
    it"."""
    found = re.search(r"(\w+) was signed by (\d+)/(\d+) keys", str(exc))
    if found is None:
        return str(exc)
    role, got, needed = found.groups()
    return f"{got} of the {needed} {role} keys required signed it"


def _limit(exc: BaseException) -> str:
    found = re.search(r"maximum allowed length of (\d+)", str(exc))
    return f"over {found.group(1)} bytes" if found else str(exc)


@dataclass(frozen=True)
class _Row:
    kind: type[BaseException] | tuple[type[BaseException], ...]
    says: str  # after "<what> from <url> "; may use the fields of `_facts`
    fix: str
    when: Callable[[BaseException], bool] = lambda exc: True


_FIX_MIRROR = (
    "use the repository's real address, or a mirror that is up to date; this installation "
    "keeps what it trusts meanwhile."
)

# The first matching row wins.
_FAILURES: list[_Row] = [
    _Row(
        tuf_errors.LengthOrHashMismatchError,
        "does not match its signed hash (changed after signing, or corrupted); nothing was "
        "applied.",
        "use an untampered mirror (the repository's real address), or ask its publisher to "
        "republish with `invoke release`.",
    ),
    _Row(
        tuf_errors.ExpiredMetadataError,
        "is covered by signed metadata that has expired ({expired}: if that is wrong, fix the "
        "clock (NTP)); nothing was applied.",
        "the publisher must run `invoke refresh` (or a release) to re-sign it (when this "
        "machine's clock is right).",
    ),
    _Row(
        tuf_errors.BadVersionNumberError,
        "goes back to metadata older than what this installation already trusts (a rollback "
        "attack, or a mirror serving an old copy); nothing was applied.",
        _FIX_MIRROR,
        lambda exc: _rollback(str(exc)),
    ),
    _Row(
        tuf_errors.BadVersionNumberError,
        "is not the version the signed metadata names{served}: a mix-and-match attack "
        "(metadata of another release) or a mirror serving a mixed copy; nothing was applied.",
        _FIX_MIRROR,
    ),
    _Row(
        tuf_errors.UnsignedMetadataError,
        "is a new root not signed by trusted keys ({signed}): a forged root, or a rotation "
        "signed below its threshold or by revoked keys; nothing was applied.",
        "keep this installation as it is and tell the repository's publisher (a new root "
        "must be signed by a threshold of the previous root's keys and of its own); re-run "
        "init only with a root obtained out of band.",
        lambda exc: str(exc).startswith("root was signed"),
    ),
    _Row(
        tuf_errors.UnsignedMetadataError,
        "comes with metadata not signed by trusted keys ({signed}); nothing was applied.",
        "check the repository URL; if its root changed, re-run init with the new root obtained "
        "out of band.",
    ),
    _Row(
        tuf_errors.DownloadHTTPError,
        "could not be fetched: the server answered HTTP {status}.",
        "check the repository URL and that it is published (HTTP 5xx: see the server's log); "
        "the next poll tries again.",
    ),
    _Row(
        tuf_errors.DownloadLengthMismatchError,
        "sent a file larger than allowed ({limit}, where the download was stopped): an "
        "oversized or endless file, from a broken or malicious mirror; nothing was applied.",
        "use the repository's real address, or tell its publisher; the network is fine.",
    ),
    _Row(
        Endless,
        "could not be fetched: the server was still sending it after {budget} s (an endless "
        "or dripping stream, stopped there); nothing was applied.",
        "use the repository's real address, or tell its publisher; a very slow link may need "
        "a longer COMMONSHELF_FETCH_TIMEOUT (seconds; a file may take "
        f"{FILE_TIMEOUTS} times it).",
    ),
    _Row(
        tuf_errors.SlowRetrievalError,
        "could not be fetched: the server did not answer within {timeout} s (asked 4 times); "
        "nothing was applied.",
        "check the server and the network; a slow link may need a longer "
        "COMMONSHELF_FETCH_TIMEOUT (seconds).",
    ),
    _Row(
        CutShort,
        "could not be fetched: the connection broke before the whole file arrived ({exc}); "
        "nothing was applied.",
        "check the server and the network; the next poll tries again.",
    ),
    _Row(
        (tuf_errors.DownloadError, OSError),
        "could not be fetched: the repository is unreachable ({exc}).",
        "check the network, the repository URL and that its server runs.",
    ),
    _Row(
        tuf_errors.RepositoryError,
        "failed verification ({exc}); nothing was applied.",
        "use an untampered mirror or republish.",
    ),
]


def refusal(exc: BaseException, read: Read) -> TrustError | None:
    """The operator's one line for `exc` (None: not a repository failure; let it show).
    A refreshed metadata file is named beside the repository ("(2.root.json)"), except for
    an expiry, which names the role that expired itself."""
    for row in _FAILURES:
        if not isinstance(exc, row.kind) or not row.when(exc):
            continue
        named = read.what == METADATA and read.asked
        if named and not isinstance(exc, tuf_errors.ExpiredMetadataError):
            where = f"{read.what} ({read.asked}) from {read.url}"
        else:
            where = f"{read.what} from {read.url}"
        served = read.version(read.asked) if "{served}" in row.says else ""
        facts = {
            "exc": exc,
            "timeout": read.timeout,
            "budget": FILE_TIMEOUTS * read.timeout,
            "status": getattr(exc, "status_code", "?"),
            "expired": read.expired(exc) if "{expired}" in row.says else "",
            "signed": _signed(exc),
            "limit": _limit(exc),
            "served": f" (it is version {served})" if served else "",
        }
        return TrustError(f"{where} {row.says.format(**facts)}", row.fix)
    return None
