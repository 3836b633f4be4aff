"""Service-level objectives of ``loadtest run``: ``SCENARIO.FIGURE OP VALUE``.

An expression names a figure of the result (``relay.p99_ms``, ``join.rate``,
``dashboard.lost``, ``errors.unexpected``) and a bound: ``relay.p99_ms <= 20``.
Operators: ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``. Objectives come from
``--slo`` flags and from a YAML file (``--slo-file``), which is either a list of
expressions or a mapping ``{slo: [expressions...]}``. A figure the run did not
produce (a scenario that did not run, a misspelt name) breaches its objective: a
gate must never pass on a figure nobody measured.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_EXPR = re.compile(
    r"^\s*(?P<figure>[a-z][a-z0-9_-]*\.[a-z][a-z0-9_.]*)\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$"
)


class SloError(ValueError):
    """An objective that does not parse, or an SLO file of the wrong shape."""


@dataclass(frozen=True, slots=True)
class Objective:
    figure: str
    op: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.figure} {self.op} {self.value:g}"

    @classmethod
    def parse(cls, expression: str) -> Objective:
        match = _EXPR.match(expression)
        if match is None:
            raise SloError(
                f"not an objective: {expression!r} (expected SCENARIO.FIGURE OP VALUE, "
                "e.g. relay.p99_ms<=20)"
            )
        return cls(match["figure"], match["op"], float(match["value"]))


@dataclass(frozen=True, slots=True)
class Verdict:
    objective: Objective
    #: the measured figure, or None when the run did not produce it
    actual: float | None
    met: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective.text,
            "figure": self.objective.figure,
            "op": self.objective.op,
            "value": self.objective.value,
            "actual": self.actual,
            "met": self.met,
        }


def load_file(path: str | Path) -> list[Objective]:
    """Objectives from a YAML file: a list of expressions, or ``{slo: [...]}``."""
    try:
        body = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SloError(f"cannot read SLO file {path}: {exc}") from None
    if isinstance(body, Mapping):
        body = body.get("slo")
    if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
        raise SloError(f"{path}: expected a list of expressions (or slo: [...])")
    return [Objective.parse(item) for item in body]


def gather(expressions: Iterable[str], files: Iterable[str]) -> list[Objective]:
    objectives = [Objective.parse(e) for e in expressions]
    for path in files:
        objectives.extend(load_file(path))
    return objectives


def evaluate(objectives: Iterable[Objective], figures: Mapping[str, float]) -> list[Verdict]:
    """Each objective against ``figures`` (``"scenario.figure"`` -> value)."""
    verdicts = []
    for objective in objectives:
        actual = figures.get(objective.figure)
        if actual is None or (isinstance(actual, float) and math.isnan(actual)):
            verdicts.append(Verdict(objective, None, False))
            continue
        met = _OPS[objective.op](float(actual), objective.value)
        verdicts.append(Verdict(objective, float(actual), met))
    return verdicts
