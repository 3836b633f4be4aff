"""Every setting is a flag and a VESTIBULE_* variable, flags win, and
docs/operations.md names every one (its "Settings" table)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from signalling.cli import ALIASES, NOT_FLAGS, NOT_VARIABLES, _parser, flag_of, settings_from
from signalling.settings import Settings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"

#: a value each field can be given as text, and what it reads as
SAMPLES = {
    "str": ("x-value", "x-value"),
    "int": ("7", 7),
    "float": ("2.5", 2.5),
    "tuple[str, ...]": ("a, b", ("a", "b")),
}


def settable() -> list[str]:
    return [f.name for f in fields(Settings) if f.name not in NOT_FLAGS]


@pytest.mark.parametrize("command", ["serve", "demo"])
@pytest.mark.parametrize("name", settable())
def test_every_setting_is_a_flag_and_a_variable(command: str, name: str) -> None:
    kind = str(next(f.type for f in fields(Settings) if f.name == name))
    env = "VESTIBULE_" + name.upper()
    if kind == "bool":
        args = _parser().parse_args([command, "--no-" + name.replace("_", "-")])
        assert getattr(settings_from(args, {}), name) is False
        args = _parser().parse_args([command])
        assert getattr(settings_from(args, {env: "off"}), name) is False
        return
    if name == "log_format":
        raw, value, other = "json", "json", "console"
    else:
        raw, value = SAMPLES[kind]
        other = raw + "9" if kind != "tuple[str, ...]" else "c"
    by_flag = settings_from(_parser().parse_args([command, flag_of(name), raw]), {})
    assert getattr(by_flag, name) == value
    by_env = settings_from(_parser().parse_args([command]), {env: raw})
    assert getattr(by_env, name) == value
    both = settings_from(_parser().parse_args([command, flag_of(name), raw]), {env: other})
    assert getattr(both, name) == value, "the flag wins over the variable"


def test_the_demo_is_a_command_not_a_variable() -> None:
    args = _parser().parse_args(["serve"])
    assert settings_from(args, {"VESTIBULE_DEMO": "1"}).demo is False


def test_short_spellings_are_the_same_setting() -> None:
    for name, short in ALIASES.items():
        args = _parser().parse_args(["serve", short, "somewhere"])
        assert getattr(args, name) == "somewhere"


def test_an_unreadable_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from signalling.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "eighty"])
    assert exit_.value.code == 2
    assert "port" in capsys.readouterr().err


def test_operations_md_documents_every_setting_and_no_other() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert documented == {f.name for f in fields(Settings) if f.name not in NOT_VARIABLES}


def test_the_data_key_is_a_variable_and_never_a_flag() -> None:
    key = "q3VJ0tD1cO0m6b0lYcW3dFv8m2m9Xq2R8yqz7l4uV5Q="
    args = _parser().parse_args(["serve"])
    assert settings_from(args, {"VESTIBULE_DATA_KEY": key}).data_key == key
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--data-key", key])


def test_a_started_server_freezes_what_lives_forever_and_collects_less_often() -> None:
    import gc

    from signalling.cli import GC_THRESHOLDS, settle_collector

    before = gc.get_threshold()
    try:
        settle_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
