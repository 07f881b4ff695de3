"""The one subprocess helper and the one wait helper, with real processes (no mocks)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from commonshelf.platform.errors import BuildError, CommonshelfError
from commonshelf.platform.proc import run, run_bytes, tail
from commonshelf.platform.wait import poll


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


# ---- tail


def test_tail_keeps_the_last_non_empty_lines_on_one_line() -> None:
    assert tail("a\n\n b \nc\n\nd\n") == "b | c | d"
    assert tail("a\nb\nc", lines=1) == "c"
    assert tail("  \n\n") == ""


# ---- run


def test_run_returns_standard_output_only() -> None:
    assert run(sh("echo out; echo err >&2"), fix="f") == "out\n"


def test_a_failure_names_the_command_its_last_three_lines_and_the_fix() -> None:
    script = "for i in 1 2 3 4 5; do echo line$i >&2; done; echo ignored; exit 4"
    with pytest.raises(BuildError) as caught:
        run(sh(script), what="the build", fix="fix it.", error=BuildError)
    assert caught.value.what == "the build failed: line3 | line4 | line5"
    assert caught.value.fix == "fix it."
    assert "\n" not in str(caught.value)


def test_without_stderr_the_failure_quotes_stdout_then_the_exit_code() -> None:
    with pytest.raises(CommonshelfError) as caught:
        run(sh("echo said so; exit 1"), fix="f")
    assert caught.value.what.endswith("failed: said so")
    with pytest.raises(CommonshelfError) as caught:
        run(sh("exit 7"), fix="f")
    assert caught.value.what == "`sh -c exit 7` failed: exit code 7"  # default label: 3 words


def test_a_caller_words_its_own_failure() -> None:
    with pytest.raises(CommonshelfError) as caught:
        run(
            sh("echo 'bad object' >&2; exit 128"),
            fix="f",
            failed=lambda said: f"commit abc cannot be read ({said}).",
        )
    assert caught.value.what == "commit abc cannot be read (bad object)."


def test_a_missing_or_unrunnable_program_is_named(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        run(["no-such-tool-4711"], what="x", fix="install it.", error=BuildError)
    assert caught.value.what == "x: no-such-tool-4711 is not installed."
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\necho hi\n")  # not executable
    with pytest.raises(CommonshelfError, match=r"cannot be run \(Permission denied\)"):
        run([str(script)], fix="f")
    with pytest.raises(CommonshelfError, match=r"sh cannot be run"):
        run(["sh", "-c", "true"], fix="f", cwd=tmp_path / "gone")  # not "sh is not installed"


def test_a_command_that_hangs_is_stopped_at_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(CommonshelfError) as caught:
        run(sh("exec sleep 5"), what="slow", fix="f", timeout=0.3)
    assert caught.value.what == "slow did not finish within 0.3 s."
    assert time.monotonic() - started < 3


def test_cwd_env_and_stdin_reach_the_command(tmp_path: Path) -> None:
    assert run(sh("pwd"), fix="f", cwd=tmp_path).strip() == str(tmp_path)
    assert run(sh('echo "$ONLY"'), fix="f", env={"ONLY": "this"}) == "this\n"
    # the terminal is never read: without `stdin`, the command reads /dev/null
    assert run(["cat"], fix="f", timeout=5) == ""
    source = tmp_path / "in.txt"
    source.write_text("piped\n")
    with source.open("rb") as handle:
        assert run(["cat"], fix="f", stdin=handle) == "piped\n"


def test_stdin_can_be_another_process_output() -> None:
    producer = subprocess.Popen(sh("printf 'a\\nb\\n'"), stdout=subprocess.PIPE)
    try:
        assert run(["wc", "-l"], fix="f", stdin=producer.stdout).strip() == "2"
    finally:
        if producer.stdout is not None:
            producer.stdout.close()
        producer.wait()


def test_run_bytes_keeps_the_exact_bytes_and_run_replaces_undecodable_ones() -> None:
    script = sh("printf 'a\\r\\n\\000\\377'")
    assert run_bytes(script, fix="f") == b"a\r\n\x00\xff"
    assert run(script, fix="f") == "a\r\n\x00\ufffd"
    with pytest.raises(CommonshelfError, match=r"failed: \ufffd oops"):
        run_bytes(sh("printf '\\377 oops' >&2; exit 1"), fix="f")


# ---- poll


def test_poll_returns_the_first_result_that_is_not_none_or_false() -> None:
    calls: list[int] = []

    def third() -> str | None:
        calls.append(1)
        return "ready" if len(calls) == 3 else None

    assert poll(third, timeout=5, interval=0.01) == "ready"
    assert len(calls) == 3
    # 0, "" and [] are results, not "not yet"
    assert poll(lambda: 0, timeout=5) == 0
    assert poll(lambda: [], timeout=5) == []


def test_poll_gives_the_last_result_when_time_runs_out() -> None:
    started = time.monotonic()
    assert poll(lambda: False, timeout=0.3, interval=0.05) is False
    assert 0.3 <= time.monotonic() - started < 2
    assert poll(lambda: None, timeout=0, interval=1) is None  # checked once, no sleep


def test_poll_waits_for_a_real_process(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    child = subprocess.Popen(sh(f"sleep 0.3; echo done > '{flag}'"))
    try:
        found = poll(lambda: flag.read_text() if flag.exists() else None, timeout=10, interval=0.05)
    finally:
        child.wait()
    assert found == "done\n"


def test_an_error_in_the_check_ends_the_wait() -> None:
    def broken() -> None:
        raise CommonshelfError("rolled back")

    with pytest.raises(CommonshelfError, match="rolled back"):
        poll(broken, timeout=10)
