"""SLO expressions: parsing, files, and the gate's verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.slo import Objective, SloError, evaluate, gather, load_file


def test_expressions_parse_with_or_without_spaces() -> None:
    assert Objective.parse("relay.p99_ms<=20") == Objective("relay.p99_ms", "<=", 20.0)
    assert Objective.parse(" join.rate >= 500 ") == Objective("join.rate", ">=", 500.0)
    assert Objective.parse("errors.unexpected == 0").op == "=="
    assert Objective.parse("abuse.wrong_code!=1e3").value == 1000.0


@pytest.mark.parametrize("bad", ["relay <= 20", "relay.p99_ms =< 20", "relay.p99_ms <= x", ""])
def test_malformed_expressions_are_refused(bad: str) -> None:
    with pytest.raises(SloError):
        Objective.parse(bad)


def test_verdicts_and_missing_figures() -> None:
    objectives = gather(["relay.p99_ms<=20", "join.rate>=500", "dashboard.lost==0"], [])
    verdicts = evaluate(objectives, {"relay.p99_ms": 12.5, "join.rate": 400.0})
    assert [v.met for v in verdicts] == [True, False, False]
    assert verdicts[1].actual == 400.0
    # a figure the run did not produce never passes
    assert verdicts[2].actual is None


def test_slo_file_as_list_or_mapping(tmp_path: Path) -> None:
    listed = tmp_path / "a.yaml"
    listed.write_text("- relay.p99_ms <= 20\n- errors.unexpected == 0\n")
    mapped = tmp_path / "b.yaml"
    mapped.write_text("slo:\n  - join.rate >= 500\n")
    assert [o.figure for o in load_file(listed)] == ["relay.p99_ms", "errors.unexpected"]
    assert [o.text for o in gather(["x.y<1"], [str(mapped)])] == ["x.y < 1", "join.rate >= 500"]
    broken = tmp_path / "c.yaml"
    broken.write_text("slo: 3\n")
    with pytest.raises(SloError):
        load_file(broken)
