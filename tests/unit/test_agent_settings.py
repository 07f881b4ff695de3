"""An installation checks what an operator sets and where a version may run, before any change."""

from __future__ import annotations

import pytest

from commonshelf.catalogue.contract import MainService, Runtime, Setting
from commonshelf.installation import admission, agent, cli
from commonshelf.platform.errors import CommonshelfError


def _runtime(**kwargs: object) -> Runtime:
    return Runtime(
        compose="apps/x/1.0.0+1/compose.yml",
        services={},
        main=MainService(service="app", port=80, health="/"),
        **kwargs,  # type: ignore[arg-type]
    )


def test_settings_are_typed_and_stored_as_the_app_reads_them() -> None:
    runtime = _runtime(
        settings={
            "WORKERS": Setting(default=2, description="worker processes"),
            "DEBUG": Setting(default=False, description="verbose logs"),
        }
    )
    assert agent.validated_settings("x", runtime, {"WORKERS": "4", "DEBUG": "yes"}) == {
        "DEBUG": "true",
        "WORKERS": "4",
    }


def test_an_unknown_setting_names_the_known_ones() -> None:
    runtime = _runtime(settings={"TZ": Setting(default="UTC", description="time zone")})
    with pytest.raises(CommonshelfError, match=r"x has no setting COLOUR \(settings: TZ\)"):
        agent.validated_settings("x", runtime, {"COLOUR": "red"})


def test_a_setting_of_the_wrong_type_is_refused() -> None:
    runtime = _runtime(settings={"WORKERS": Setting(default=2, description="workers")})
    with pytest.raises(CommonshelfError, match="is not a whole number"):
        agent.validated_settings("x", runtime, {"WORKERS": "many"})


def test_a_version_for_another_architecture_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission.platform, "machine", lambda: "aarch64")
    with pytest.raises(CommonshelfError, match="runs on amd64, not on this arm64 machine"):
        agent.check_architecture("x", "1.0.0+1", _runtime(architectures=("amd64",)))
    agent.check_architecture("x", "1.0.0+1", _runtime(architectures=("amd64", "arm64")))


def test_set_takes_key_value_pairs() -> None:
    assert cli._settings(["TZ=Europe/Paris", "EMPTY="]) == {"TZ": "Europe/Paris", "EMPTY": ""}
    with pytest.raises(CommonshelfError, match="is not KEY=VALUE"):
        cli._settings(["TZ"])


def test_a_setting_outside_its_pattern_or_choices_is_refused() -> None:
    runtime = _runtime(
        settings={
            "SERVER_NAME": Setting(
                default="chat.localhost", description="name", pattern=r"[a-z0-9.-]+"
            ),
            "MODE": Setting(default="open", description="registration", choices=("open", "closed")),
        }
    )
    assert agent.validated_settings("x", runtime, {"SERVER_NAME": "example.org"}) == {
        "SERVER_NAME": "example.org"
    }
    with pytest.raises(CommonshelfError, match=r"SERVER_NAME='Bad Name!' does not have the form"):
        agent.validated_settings("x", runtime, {"SERVER_NAME": "Bad Name!"})
    with pytest.raises(CommonshelfError, match=r"MODE='invite' is not one of open, closed"):
        agent.validated_settings("x", runtime, {"MODE": "invite"})
    assert agent.validated_settings("x", runtime, {"MODE": "closed"}) == {"MODE": "closed"}


def test_generated_secrets_are_letters_and_digits_of_the_declared_length() -> None:
    from commonshelf.catalogue.contract import SecretSpec

    values = {SecretSpec(description="db", length=40).generate() for _ in range(20)}
    assert len(values) == 20  # never the same twice
    assert all(len(v) == 40 and v.isascii() and v.isalnum() for v in values)
