"""Fault case 5: the disk of the installation's home is full when an update wants its backup.

The home is a tmpfs (engine_harness), shrunk to leave about 1.5 MB free while the app holds
a 3 MB file: the update is refused before anything changes, saying how much space the
backup needs and how much there is. Then the estimate is made wrong on purpose (as if the
data grew between the check and the copy): the disk really fills during the copy, and the
partial backup is removed and the update refused the same way. With room again, the next
`run` applies the update with the data intact.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from commonshelf.installation import backup, updates

from .engine_harness import APP, HOME_SIZE, MB, World, world  # noqa: F401
from .report import FaultCase, record

SPACE = re.compile(r"needs about (\d+) MB free in (\S+), which has (\d+) MB")


def test_a_full_disk_refuses_the_update_before_anything_changes(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = world.record().version
    new = world.publish()
    before = world.state()
    world.count_from()
    world.resize_home(shutil.disk_usage(world.home).used + 3 * MB // 2)
    try:
        code, events = world.run()
        assert code == 1, events
        [event] = events
        assert (event["outcome"], event["to_version"]) == ("refused", new), event
        said = SPACE.search(str(event["sentence"]))
        assert said, event["sentence"]
        assert int(said[1]) >= 4 and int(said[3]) <= 1, event["sentence"]
        assert said[2].rstrip(",") == str(world.backups)
        assert str(event["sentence"]).endswith("nothing was changed.")
        world.assert_untouched(before)
        assert world.last_sentence() == event["sentence"]

        # the estimate is wrong (the data grew after the check): the copy fills the disk
        monkeypatch.setattr(backup, "volume_sizes", lambda client, names: {})
        world.runs += 1  # in this process, but it polls as a run does
        [filled] = updates.update(world.agent(), None, automatic=True)
        assert filled.outcome == "refused", filled
        said = SPACE.search(filled.sentence)
        assert said and int(said[1]) >= 4, filled.sentence
        world.assert_untouched(before)
        monkeypatch.undo()
    finally:
        world.resize_home(HOME_SIZE)
    started = time.monotonic()
    code, events = world.run()
    assert code == 0, events
    assert [(e["outcome"], e["from_version"], e["to_version"]) for e in events] == [
        ("done", old, new)
    ]
    world.assert_serves(new)
    recovered = time.monotonic() - started
    requests = world.requests_made()  # the refused run, the refused update and the last run
    lost = world.lost_bytes()
    assert lost == 0
    record(
        FaultCase(
            case="disk full: backup before an update",
            injected=f"the home's filesystem left with 1.5 MB free while {APP} holds 3 MB; "
            "then the space estimate bypassed so the copy filled the disk",
            recovered_s=round(recovered, 1),
            data_lost_bytes=lost,
            requests=requests,
            outcome=str(event["sentence"]),
        )
    )
