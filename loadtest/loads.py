"""The relay loads, run inside a worker on the pairs it holds.

Every message is a trickled ICE candidate, A to B or B to A, carrying its send time
(``time.monotonic_ns()``) in ``candidate.usernameFragment``: a free-form string the
hub relays untouched (``ref`` is not relayed: it is for replies to the sender).

- flat-out: each A keeps ``window`` messages outstanding; B answers every message it
  gets and each answer lets A send one more. Every delivered message counts: the
  figure is relayed messages per second in both directions.
- paced: each A sends at a fixed rate, B answers each at once; both legs are latency
  samples (arrival time minus the carried send time).

Both start at an absolute time, count only after a warm-up, stop sending at the end
and then wait for the messages still in flight, so the next phase starts clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from array import array
from dataclasses import dataclass

import orjson

from loadtest.driver import Pair, WorkerState
from loadtest.wsclient import MessageHandler, WsClient

#: how long the tail of a phase may take to arrive before the phase is declared broken
DRAIN_TIMEOUT = 10.0


_CANDIDATE = (
    b'{"candidate":"candidate:1 1 UDP 2122260223 10.0.0.1 5000 typ host",'
    b'"sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"'
)


def _message_prefix(to: str, dialect: str = "signal") -> bytes:
    if dialect == "peerjs":
        # what a PeerJS client sends for a trickled candidate (the stamp ends the object)
        return (
            b'{"type":"CANDIDATE","dst":' + orjson.dumps(to) + b',"payload":'
            b'{"type":"media","connectionId":"mc_load","candidate":' + _CANDIDATE
        )
    return (
        b'{"type":"signal","to":'
        + orjson.dumps(to)
        + b',"kind":"candidate","candidate":'
        + _CANDIDATE
    )


_SUFFIX = b'"}}'
_SUFFIXES = {"signal": _SUFFIX, "peerjs": b'"}}}'}


@dataclass(slots=True)
class PhaseResult:
    """One worker's share of a phase (picklable; latencies as ``array('q')`` bytes)."""

    received: int
    sent: int
    #: messages still undelivered when the drain timed out (0 on a healthy run)
    lost: int
    errors: int
    first_error: str
    latencies: bytes
    #: this worker's CPU time during the counted window, in seconds
    cpu_seconds: float


class _Leg:
    """One direction of a pair during a phase: the prebuilt message and its counters."""

    __slots__ = ("phase", "prefix", "received", "sent", "suffix")

    def __init__(self, phase: _Phase, to: str) -> None:
        self.phase = phase
        self.prefix = _message_prefix(to, phase.dialect)
        self.suffix = _SUFFIXES[phase.dialect]
        self.sent = 0
        self.received = 0

    def message(self) -> bytes:
        self.sent += 1
        self.phase.in_flight += 1
        return self.prefix + str(time.monotonic_ns()).encode() + self.suffix

    def delivered(self) -> None:
        self.received += 1
        phase = self.phase
        phase.in_flight -= 1
        if phase.stopped and phase.in_flight == 0:
            phase.quiet.set()


class _Phase:
    """The shared state of one phase in one worker: clock window, counters, samples."""

    def __init__(
        self, start_ns: int, warmup_ns: int, seconds: float, dialect: str = "signal"
    ) -> None:
        self.dialect = dialect
        self.start_ns = start_ns
        self.count_from = start_ns + warmup_ns
        self.count_to = self.count_from + int(seconds * 1e9)
        self.stopped = False
        self.received = 0
        self.errors = 0
        self.first_error = ""
        self.latencies = array("q")
        self.legs: list[tuple[_Leg, _Leg]] = []
        #: messages sent and not yet delivered; the phase is over when it is 0 after stop
        self.in_flight = 0
        self.quiet = asyncio.Event()

    def legs_of(self, pair: Pair) -> tuple[_Leg, _Leg]:
        """The A->B and B->A legs of a pair, registered with this phase."""
        legs = (_Leg(self, pair.b_id), _Leg(self, pair.a_id))
        self.legs.append(legs)
        return legs

    def arrival(self, payload: bytes) -> int | None:
        """The send stamp of a relayed signal; None (and counted) for anything else."""
        body = orjson.loads(payload)
        kind = body.get("type")
        if kind == "signal":
            stamp = int(body["candidate"]["usernameFragment"])
        elif kind == "CANDIDATE":
            stamp = int(body["payload"]["candidate"]["usernameFragment"])
        else:
            if kind in ("error", "ERROR"):
                self.errors += 1
                detail = body.get("code") or (body.get("payload") or {}).get("msg")
                self.first_error = self.first_error or str(detail)
            return None
        if self.count_from <= stamp < self.count_to:
            self.received += 1
        return stamp

    async def finish(self, worker_pairs: list[Pair]) -> PhaseResult:
        await _sleep_until(self.count_from)
        cpu0 = time.process_time()
        await _sleep_until(self.count_to)
        cpu = time.process_time() - cpu0
        self.stopped = True
        if self.in_flight == 0:
            self.quiet.set()
        with contextlib.suppress(TimeoutError):  # what did not arrive is reported as lost
            await asyncio.wait_for(self.quiet.wait(), DRAIN_TIMEOUT)
        for pair in worker_pairs:
            pair.a.on_message = None
            pair.b.on_message = None
        return PhaseResult(
            received=self.received,
            sent=sum(ab.sent + ba.sent for ab, ba in self.legs),
            lost=self.in_flight,
            errors=self.errors,
            first_error=self.first_error,
            latencies=self.latencies.tobytes(),
            cpu_seconds=cpu,
        )


def _dialect(state: WorkerState) -> str:
    return state.pairs[0].dialect if state.pairs else "signal"


async def _sleep_until(when_ns: int) -> None:
    delay = (when_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def flat_out(
    state: WorkerState, start_ns: int, warmup_ns: int, seconds: float, window: int
) -> PhaseResult:
    """Worker call: every pair relays as fast as it can with ``window`` messages in flight."""
    phase = _Phase(start_ns, warmup_ns, seconds, _dialect(state))
    for pair in state.pairs:
        ab, ba = phase.legs_of(pair)
        pair.b.on_message = _flat_answerer(phase, ab, ba, pair)
        pair.a.on_message = _flat_refiller(phase, ba, ab, pair)
    await _sleep_until(start_ns)
    for (ab, _), pair in zip(phase.legs, state.pairs, strict=True):
        for _ in range(window):
            pair.a.send(ab.message())
    return await phase.finish(state.pairs)


def _flat_answerer(phase: _Phase, incoming: _Leg, outgoing: _Leg, pair: Pair) -> MessageHandler:
    def on_message(payload: bytes) -> None:
        if phase.arrival(payload) is None:
            return
        incoming.delivered()
        if not phase.stopped:
            pair.b.send(outgoing.message())

    return on_message


def _flat_refiller(phase: _Phase, incoming: _Leg, outgoing: _Leg, pair: Pair) -> MessageHandler:
    def on_message(payload: bytes) -> None:
        if phase.arrival(payload) is None:
            return
        incoming.delivered()
        if not phase.stopped:
            pair.a.send(outgoing.message())

    return on_message


async def paced(
    state: WorkerState, start_ns: int, warmup_ns: int, seconds: float, rate_per_pair: float
) -> PhaseResult:
    """Worker call: each A sends ``rate_per_pair`` messages/s, B answers each; latencies."""
    phase = _Phase(start_ns, warmup_ns, seconds, _dialect(state))
    senders = []
    for pair in state.pairs:
        ab, ba = phase.legs_of(pair)
        pair.b.on_message = _timed_answerer(phase, ab, ba, pair)
        pair.a.on_message = _timed_sink(phase, ba)
        senders.append((pair.a, ab))
    random.shuffle(senders)
    ticker = asyncio.create_task(_pace(phase, senders, rate_per_pair * len(senders)))
    try:
        return await phase.finish(state.pairs)
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)


#: the pacer's period. One timer per message would cost the load process a wake-up
#: per message and hand the server one frame per wake-up, a pattern many independent
#: browsers never produce; every millisecond the messages due go out, one per pair in
#: turn, so the server sees arrivals on many sockets at once, as it would in production.
TICK = 0.001


async def _pace(phase: _Phase, senders: list[tuple[WsClient, _Leg]], rate: float) -> None:
    """Send ``rate`` messages/s in total, round robin over ``senders``, until the end."""
    sent = 0
    turn = 0
    count = len(senders)
    await _sleep_until(phase.start_ns)
    while not phase.stopped:
        now = time.monotonic_ns()
        if now >= phase.count_to:
            return
        due = int((now - phase.start_ns) / 1e9 * rate) - sent
        for _ in range(due):
            client, leg = senders[turn]
            client.send(leg.message())
            turn = (turn + 1) % count
        sent += max(0, due)
        await asyncio.sleep(TICK)


def _timed_answerer(phase: _Phase, incoming: _Leg, outgoing: _Leg, pair: Pair) -> MessageHandler:
    def on_message(payload: bytes) -> None:
        now = time.monotonic_ns()
        stamp = phase.arrival(payload)
        if stamp is None:
            return
        incoming.delivered()
        if phase.count_from <= stamp < phase.count_to:
            phase.latencies.append(now - stamp)
        if not phase.stopped:
            pair.b.send(outgoing.message())

    return on_message


def _timed_sink(phase: _Phase, incoming: _Leg) -> MessageHandler:
    def on_message(payload: bytes) -> None:
        now = time.monotonic_ns()
        stamp = phase.arrival(payload)
        if stamp is None:
            return
        incoming.delivered()
        if phase.count_from <= stamp < phase.count_to:
            phase.latencies.append(now - stamp)

    return on_message
