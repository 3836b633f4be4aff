"""Value objects a media check reports: findings, progress and the final result.

These cross a process boundary (worker -> hub) as plain dicts, so each has a
``to_dict`` and the result a ``from_dict``; nothing here imports aiortc or asyncio.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Figure = float | int | str | None


class Phase(enum.StrEnum):
    """Where a running check is; reported to the browser as progress."""

    CONNECTING = "connecting"  # answer sent, waiting for ICE + DTLS
    RECEIVING = "receiving"  # connected, waiting for / measuring media
    ANALYSING = "analysing"  # window over, reading stats and deciding


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class Finding(NamedTuple):
    """One reason or warning: ``(code, message)``, a stable code and a plain-language
    message for the patient."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Progress:
    """A progress update for the browser: the phase and seconds since the check began."""

    phase: str
    elapsed: float

    def __post_init__(self) -> None:
        if self.phase not in {p.value for p in Phase}:
            raise ValueError(f"unknown phase {self.phase!r}")
        object.__setattr__(self, "phase", Phase(self.phase).value)

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "elapsed": round(self.elapsed, 3)}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: verdict, reasons (why it failed), warnings and figures."""

    verdict: str
    reasons: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    figures: Mapping[str, Figure] = field(default_factory=dict)
    elapsed: float = 0.0

    def __post_init__(self) -> None:
        if self.verdict not in {o.value for o in Outcome}:
            raise ValueError(f"unknown verdict {self.verdict!r}")
        # Keep plain strings (not enum members) so results compare and serialise simply.
        object.__setattr__(self, "verdict", Outcome(self.verdict).value)
        if self.verdict == Outcome.FAILED and not self.reasons:
            raise ValueError("a failed check needs at least one reason")
        if self.verdict == Outcome.PASSED and self.reasons:
            raise ValueError("a passed check has no failure reasons")

    @property
    def passed(self) -> bool:
        return self.verdict == Outcome.PASSED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats become None)."""
        return {
            "verdict": self.verdict,
            "reasons": [f.to_dict() for f in self.reasons],
            "warnings": [f.to_dict() for f in self.warnings],
            "figures": {k: _finite(v) for k, v in self.figures.items()},
            "elapsed": round(self.elapsed, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """Rebuild a result sent by a worker process (inverse of :meth:`to_dict`)."""
        return cls(
            verdict=str(data["verdict"]),
            reasons=tuple(Finding(str(f["code"]), str(f["message"])) for f in data["reasons"]),
            warnings=tuple(Finding(str(f["code"]), str(f["message"])) for f in data["warnings"]),
            figures=dict(data["figures"]),
            elapsed=float(data["elapsed"]),
        )


def _finite(value: Figure) -> Figure:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
