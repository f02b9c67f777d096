"""Each setting's scope is declared once, on its field; what is recorded, carried to the
workers and offered by each command follows from it."""

from __future__ import annotations

import pytest

from prodseg.producer.cli.main import build_parser
from prodseg.settings import (
    CONNECTION,
    JOB,
    JOB_SETTINGS,
    MACHINE,
    MACHINE_SETTINGS,
    SECRET,
    SECRET_SETTINGS,
    WORKER,
    Scope,
    Settings,
    load_settings,
    recorded,
    scope_of,
    setting,
    settings_with,
)


def test_every_setting_has_exactly_one_scope() -> None:
    for name in Settings.model_fields:
        scope = scope_of(name)
        assert sum(kind in scope for kind in (JOB, MACHINE, SECRET)) == 1, name
    assert set(Settings.model_fields) == JOB_SETTINGS | MACHINE_SETTINGS
    assert not JOB_SETTINGS & MACHINE_SETTINGS
    assert {"broker_url", "s3_endpoint_url"} == SECRET_SETTINGS


def test_a_setting_without_one_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly one of JOB, MACHINE or SECRET"):
        setting(JOB | MACHINE, 1)
    with pytest.raises(ValueError, match="exactly one"):
        setting(CONNECTION, 1)


def test_records_hold_job_settings_only() -> None:
    s = load_settings(broker_url="redis://:hunter2@broker:6379/0",
                      s3_endpoint_url="http://user:pw@s3.local:9000", device="cpu")
    record = recorded(s)
    assert set(record) == JOB_SETTINGS
    assert "hunter2" not in repr(record) and "pw@" not in repr(record)


def _flags(*argv: str) -> set[str]:
    """The setting flags a command accepts (their dest names)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    command = sub.choices[argv[0]]  # type: ignore[index]
    for word in argv[1:]:
        command = next(a for a in command._actions if a.dest.endswith("_command")).choices[word]
    return {a.dest.removeprefix("setting_") for a in command._actions
            if a.dest.startswith("setting_")}


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (("run",), set(Settings.model_fields) - settings_with(CONNECTION) - settings_with(WORKER)),
        (("submit",), JOB_SETTINGS | settings_with(CONNECTION)),
        (("status",), settings_with(CONNECTION)),
        (("fetch",), settings_with(CONNECTION)),
        (("worker",), set(Settings.model_fields)),
        (("catalog", "status"), settings_with(CONNECTION) | {"model_cache_dir", "device"}),
    ],
)
def test_each_command_offers_the_settings_its_scope_allows(argv: tuple[str, ...],
                                                            wanted: set[str]) -> None:
    assert _flags(*argv) == wanted


def test_scopes_combine_as_flags() -> None:
    assert scope_of("broker_url") == Scope.SECRET | Scope.CONNECTION
    assert scope_of("task_retries") == MACHINE | WORKER
    assert scope_of("similarity_threshold") == JOB
