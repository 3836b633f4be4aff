"""The result of ``loadtest run``: figures per scenario, as JSON (schema: result.schema.json).

``figures`` maps ``scenario.figure`` names to numbers; SLO expressions refer to them
(loadtest.slo). Every scenario has ``count`` (latency samples), ``p50_ms``, ``p90_ms``,
``p99_ms``, ``p999_ms``, ``max_ms``, ``mean_ms`` and ``unexpected`` (error codes it
did not expect); the rest is its own (docs/loadtest.md lists them all).
"""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from loadtest.recorder import Recorder
from loadtest.runner import Outcome, RunOptions
from loadtest.slo import Objective, evaluate

SCHEMA_ID = "vestibule-loadtest-result/1"


def schema() -> dict[str, Any]:
    text = resources.files("loadtest").joinpath("result.schema.json").read_text("utf-8")
    body: dict[str, Any] = json.loads(text)
    return body


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _scenario(name: str, parts: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    rec = Recorder.decode(parts[0]["latency"])
    for part in parts[1:]:
        rec.merge(part["latency"])
    counts: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    first_errors: list[str] = []
    for part in parts:
        counts.update(part["counts"])
        unexpected.update(part["unexpected"])
        refused.update(part["refused"])
        first_errors.extend(part["first_errors"])
    figures: dict[str, float] = {k: float(v) for k, v in rec.summary().as_dict().items()}
    figures["unexpected"] = float(sum(unexpected.values()))
    c = counts
    if name == "join":
        figures.update(
            ok=c["ok"], failed=c["failed"], guests=c["guests"], staff=c["staff"],
            redirects=c["redirects"], rate=_ratio(c["ok"], duration),
        )  # fmt: skip
    elif name == "relay":
        figures.update(
            rooms=c["rooms"], sent=c["sent"], received=c["received"], lost=c["lost"],
            rate=_ratio(c["received"], duration),
            refused=refused.get("flat_out:rate_limited", 0),
        )  # fmt: skip
    elif name == "resume":
        figures.update(
            rooms=c["rooms"], attempts=c["attempts"], resumed=c["resumed"], failed=c["failed"],
            success_rate=_ratio(c["resumed"], c["attempts"]),
            replay_expected=c["replay_expected"], replay_received=c["replay_received"],
            replay_missing=c["replay_expected"] - c["replay_received"],
        )  # fmt: skip
    elif name == "dashboard":
        entered: set[str] = set()
        for part in parts:
            entered.update(part["extra"].get("entered", []))
        subscribers = 0
        delivered = 0
        for part in parts:
            for seen in part["extra"].get("seen", []):
                subscribers += 1
                delivered += len(entered & set(seen))
        expected = subscribers * len(entered)
        figures.update(
            subscribers=subscribers, entered=len(entered), expected=expected,
            delivered=delivered, lost=expected - delivered, duplicated=c["duplicated"],
            out_of_order=c["out_of_order"],
        )  # fmt: skip
    elif name == "call":
        figures.update(
            rooms=c["rooms"], attempts=c["attempts"], connected=c["connected"],
            failed=c["failed"], rate=_ratio(c["connected"], duration),
        )  # fmt: skip
    elif name == "lobby":
        figures.update(
            rooms=c["rooms"], arrivals=c["arrivals"], admitted=c["admitted"], failed=c["failed"],
            moves=c["moves"], admitted_after_move=c["admitted_after_move"], said=c["said"],
            rate=_ratio(c["admitted"], duration),
        )  # fmt: skip
    elif name == "mediacheck":
        figures.update(
            attempts=c["attempts"], verdicts=c["verdicts"], passed=c["verdict_passed"],
            not_passed=c["verdicts"] - c["verdict_passed"], busy=c["busy"], failed=c["failed"],
            pass_rate=_ratio(c["verdict_passed"], c["verdicts"]),
            rate=_ratio(c["verdicts"], duration),
        )  # fmt: skip
    elif name == "abuse":
        figures.update(attempts=c["attempts"], refused=c["refused"], wrong=c["wrong"])
    if c["setup_failed"]:
        figures["setup_failed"] = c["setup_failed"]
    return {
        "figures": {k: float(v) for k, v in figures.items()},
        "errors": dict(unexpected),
        "refused": dict(refused),
        "first_errors": first_errors[:10],
        "timeline": rec.timeline(),
        "histogram": rec.buckets(),
    }


#: the normal traffic whose latency abuse must not hurt, in order of preference
NORMAL = ("relay", "join", "call", "lobby", "dashboard")


def _abuse_effect(outcome: Outcome) -> dict[str, float]:
    """The normal traffic's p99 in the seconds with abuse (even) and without (odd)."""
    normal = next((n for n in NORMAL if n in outcome.tallies), None)
    if normal is None:
        return {}
    parts = outcome.tallies[normal]["parts"]
    rec = Recorder.decode(parts[0]["latency"])
    for part in parts[1:]:
        rec.merge(part["latency"])
    during = Recorder(rec.origin_ns)
    quiet = Recorder(rec.origin_ns)
    for second, hist in rec.seconds.items():
        (quiet if second % 2 else during).total.add(hist)
    on, off = during.summary().p99_ms, quiet.summary().p99_ms
    return {
        "normal_p99_abuse_ms": on,
        "normal_p99_quiet_ms": off,
        "normal_p99_ratio": on / off if off else 0.0,
    }


def build(
    outcome: Outcome, opts: RunOptions, objectives: list[Objective], argv: list[str]
) -> dict[str, Any]:
    """The whole result document; ``passed`` is False when an objective is breached."""
    scenarios = {
        name: _scenario(name, body["parts"], outcome.duration)
        for name, body in sorted(outcome.tallies.items())
    }
    if "abuse" in scenarios:
        scenarios["abuse"]["figures"].update(_abuse_effect(outcome))
    by_code: Counter[str] = Counter()
    for body in scenarios.values():
        by_code.update(body["errors"])
    flat: dict[str, float] = {}
    for name, body in scenarios.items():
        for figure, value in body["figures"].items():
            flat[f"{name}.{figure}"] = value
    flat["errors.unexpected"] = float(sum(by_code.values()))
    verdicts = evaluate(objectives, flat)
    saturated = [w["index"] for w in outcome.workers if w["cpu_share"] >= 0.9]
    return {
        "schema": SCHEMA_ID,
        "started_at": outcome.started_at,
        "duration_s": outcome.duration,
        "command": argv,
        "targets": opts.targets,
        "scenarios": scenarios,
        "errors": {"unexpected": sum(by_code.values()), "by_code": dict(by_code)},
        "figures": flat,
        "harness": {
            "processes": outcome.workers,
            "saturated": saturated,
            "note": (
                f"load process(es) {saturated} used 90 % or more of a core: the harness, "
                "not the server, may have been the bottleneck; add --workers"
                if saturated
                else ""
            ),
        },
        "fixtures": outcome.fixtures,
        "server": outcome.server,
        "slo": [v.as_dict() for v in verdicts],
        "passed": all(v.met for v in verdicts),
    }


def write(doc: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
