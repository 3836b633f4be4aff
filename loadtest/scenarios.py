"""The scenarios of ``loadtest run``, as they run inside one load process.

Each scenario has a *share* (what this process drives: tokens, rooms, JWTs), a
``setup`` that runs before the clock starts (hosts in their rooms, guests admitted,
dashboards subscribed), and a ``run`` that works on an open-loop schedule from the
run's origin until its end (CLOCK_MONOTONIC ns, common to every process), then drains.
Every latency is recorded from the operation's *intended* start (loadtest.recorder).
What a scenario counts goes into its :class:`Tally`; error codes it did not expect are
``unexpected`` (the ``errors.unexpected`` figure), the refusals the ``abuse`` scenario
provokes are counted by act and code.

Scenarios:

``join``       guests redeem link tokens (new websocket, ``hello``, ``welcome``,
               ``leave``) at a set rate; every ``staff_every``-th join is a clinician
               (``hello`` with a staff JWT). Latency: intended start -> welcome.
``call``       rooms whose host stays; per room one call after another: a guest's
               hello, join, admission, offer/answer/candidates each way and
               ``call.state connected`` from both. Latency: intended start -> set up.
``lobby``      rooms whose host stays; guests arrive and wait, the host says a message
               once a second and admits each guest (every 4th is moved to the next
               room first). Latency: intended arrival -> ``admitted``.
``relay``      1:1 rooms (host + admitted guest) signalling each other at a set rate per
               direction. Latency: intended send -> relayed frame received.
``dashboard``  subscribers on ``/ws/dashboard`` while guests enter meetings of theirs;
               every ``entered`` presence event must reach every subscriber exactly once
               (lost and duplicated are counted; duplicates also by ``seq``). Latency:
               the guest's intended hello -> event received.
``mediacheck`` patients run the media check with a real aiortc peer; verdicts counted.
               Latency: intended start -> ``mediacheck.result``.
``abuse``      replayed link tokens, wrong guest keys, oversized frames, floods, in the
               even seconds of the run; each must be refused with its code. Latency:
               intended start -> refusal. (The result compares the normal traffic's
               p99 in those seconds with the quiet odd ones.)
``resume``     1:1 rooms whose guest's connection is cut (no close frame); 0.2 s later
               the host signals the guest 3 times; the guest resumes with its secret and
               must receive those messages (replayed). Latency: resume hello -> welcome
               (sent when due: the cycles of one room are closed-loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson

from loadtest.recorder import Recorder, Schedule
from loadtest.wire import Endpoint, Entered, Refused, connect, hello, read_until
from loadtest.wsclient import ServerError, WsClient, WsError

#: seconds one handshake or expected answer may take before it counts as failed
WAIT = 10.0
#: after the end, seconds to wait for messages still in flight
DRAIN = 3.0
#: seconds a resumed guest waits for the messages sent while it was away
REPLAY_WAIT = 2.0
#: kept per scenario for the report
FIRST_ERRORS = 5
#: a signal the relay and resume scenarios send (a trickled candidate); ``usernameFragment``
#: carries the message's number so the receiver knows its intended send time
_CANDIDATE = "candidate:1 1 UDP 2122260223 192.0.2.1 9 typ host"

SCENARIOS = ("join", "call", "relay", "lobby", "dashboard", "mediacheck", "abuse", "resume")
#: the scenarios whose hosts or subscribers need staff JWTs
NEEDS_STAFF = frozenset({"call", "relay", "lobby", "dashboard", "resume", "abuse"})


#: the ramp of this load process's run (ns): every schedule grows to its rate over it.
#: A load process runs one plan, so the runner sets it once before the clock starts.
RAMP_NS = 0


def make_schedule(start_ns: int, rate: float) -> Schedule:
    return Schedule(start_ns, rate, RAMP_NS)


def now_ns() -> int:
    return time.monotonic_ns()


@dataclass(slots=True)
class Tally:
    """What one scenario counted in one process."""

    name: str
    latency: Recorder
    counts: Counter[str] = field(default_factory=Counter)
    #: error codes the scenario did not expect, by code (transport failures too)
    unexpected: Counter[str] = field(default_factory=Counter)
    #: refusals provoked on purpose, "act:code" (abuse)
    refused: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    #: scenario-specific sets reported whole (dashboard: meetings seen per subscriber)
    extra: dict[str, Any] = field(default_factory=dict)

    def error(self, code: str, detail: str = "") -> None:
        self.unexpected[code] += 1
        if len(self.first_errors) < FIRST_ERRORS:
            self.first_errors.append(f"{code}: {detail}"[:300] if detail else code)

    def failure(self, exc: BaseException) -> None:
        if isinstance(exc, Refused | ServerError):
            self.error(exc.code, str(exc))
        elif isinstance(exc, TimeoutError):
            self.error("timeout", "no answer in time")
        else:
            self.error("transport", f"{type(exc).__name__}: {exc}")

    def progress(self) -> dict[str, Any]:
        """Progress so far, cheap to make: the histogram goes out encoded (well under a
        millisecond) and the orchestrator works out its percentiles (see
        :func:`loadtest.recorder.progress_figures`). Working them out here took
        about 25 ms per scenario each second, a stall of this process's loop that
        the open-loop timing then measured as the server's latency."""
        return {
            "unexpected": sum(self.unexpected.values()),
            "errors": dict(self.unexpected),
            "hist": self.latency.total.encode().decode("ascii"),
        }

    def encode(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latency": self.latency.encode(),
            "counts": dict(self.counts),
            "unexpected": dict(self.unexpected),
            "refused": dict(self.refused),
            "first_errors": list(self.first_errors),
            "extra": self.extra,
        }


# -- pacing ---------------------------------------------------------------------------


async def paced(
    schedule: Schedule,
    count: int,
    end_ns: int,
    action: Callable[[int, int], Coroutine[Any, Any, None]],
) -> None:
    """Start ``action(index, intended_ns)`` for each operation as it falls due (a task
    each, so a slow one never delays the next), until ``count`` or ``end_ns``; then
    wait for those started."""
    tasks: set[asyncio.Task[None]] = set()
    index = 0
    while index < count:
        now = now_ns()
        intended = schedule.intended(index)
        if intended >= end_ns:
            break
        if intended > now:
            await asyncio.sleep((intended - now) / 1e9)
            continue
        due = min(count, schedule.due(now))
        while index < due and schedule.intended(index) < end_ns:
            task = asyncio.create_task(action(index, schedule.intended(index)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def sleep_until(deadline_ns: int) -> None:
    delay = (deadline_ns - now_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


def _endpoint(targets: list[str], index: int) -> Endpoint:
    return Endpoint.of(targets[index % len(targets)])


async def join_call(staff: Entered) -> None:
    """A host's ``join``, also when its session was still in the call (a previous run's
    connection dropped within the resume window: the server then sends the place
    itself and refuses the second join). A ping marks the end of the answers."""
    client = staff.client
    client.send_json({"type": "join", "ref": "setup-join"})
    client.send_json({"type": "ping", "ref": "setup-ping"})
    joined = False
    while True:
        body, _ = await read_until(client, frozenset({"joined", "pong"}), wait=WAIT)
        kind = body.get("type")
        if kind == "joined":
            joined = True
        elif kind == "pong" and body.get("ref") == "setup-ping":
            break
        elif kind == "error" and not (
            body.get("ref") == "setup-join" and body.get("code") == "bad_transition"
        ):
            raise ServerError(body)
    if not joined:
        raise Refused("not_joined", "join answered neither joined nor bad_transition")


async def _leave(entered: Entered) -> None:
    entered.client.send_json({"type": "leave"})
    entered.client.close()


def _loads(payload: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


# -- join -----------------------------------------------------------------------------


@dataclass(slots=True)
class JoinShare:
    #: (token, room) per guest, in the order they join
    guests: list[tuple[str, str]]
    #: (jwt, room) of clinicians logging in
    staff: list[tuple[str, str]]
    rate: float
    staff_every: int = 10


async def run_join(
    share: JoinShare, targets: list[str], origin_ns: int, end_ns: int, tally: Tally
) -> None:
    schedule = make_schedule(origin_ns, share.rate)
    guests = iter(share.guests)

    busy: set[int] = set()

    async def one(index: int, intended: int) -> None:
        login: int | None = None
        if share.staff and share.staff_every > 0 and index % share.staff_every == 0:
            # a (clinician, room) not logging in right now; none free: a guest instead
            first = index // share.staff_every
            login = next(
                (j for k in range(len(share.staff))
                 if (j := (first + k) % len(share.staff)) not in busy),
                None,
            )  # fmt: skip
        staff = login is not None
        if login is not None:
            busy.add(login)
            jwt, room = share.staff[login]
            body: dict[str, Any] = {"jwt": jwt, "room": room}
        else:
            guest = next(guests, None)
            if guest is None:
                tally.counts["skipped_no_token"] += 1
                return
            body = {"token": guest[0]}
        try:
            entered = await hello(_endpoint(targets, index), body, wait=WAIT)
        except (Refused, WsError, TimeoutError, OSError) as exc:
            tally.counts["failed"] += 1
            tally.failure(exc)
            busy.discard(login if login is not None else -1)
            return
        tally.latency.record(intended, entered.welcome_ns)
        tally.counts["ok"] += 1
        tally.counts["staff" if staff else "guests"] += 1
        tally.counts["redirects"] += entered.hops
        if login is None:
            await _leave(entered)
            return
        # a clinician's (room) is free again once the server has closed the connection
        # after its leave: the session is over, the next login starts a new one
        entered.client.send_json({"type": "leave"})
        with contextlib.suppress(WsError, TimeoutError):
            while True:
                await read_until(entered.client, frozenset(), wait=WAIT)
        entered.client.close()
        busy.discard(login)

    count = len(share.guests) + (
        len(share.guests) // max(1, share.staff_every - 1) if share.staff else 0
    )
    await paced(schedule, count, end_ns, one)


# -- 1:1 rooms (relay, resume) ---------------------------------------------------------


@dataclass(slots=True)
class PairShare:
    #: (host jwt, room, guest token) per room
    rooms: list[tuple[str, str, str]]
    #: relay: messages per second per direction; resume: cuts per second per room
    rate: float


@dataclass(slots=True)
class Pair:
    host: Entered
    guest: Entered
    room: str
    token: str


async def open_pair(targets: list[str], index: int, jwt: str, room: str, token: str) -> Pair:
    """A host in ``room`` and an admitted guest, both in the call."""
    host = await hello(_endpoint(targets, index), {"jwt": jwt, "room": room}, wait=WAIT)
    await join_call(host)
    # the guest goes wherever the host's hello ended up: the room lives there
    guest = await hello(host.endpoint, {"token": token}, wait=WAIT)
    guest.client.send_json({"type": "join"})
    await guest.client.expect("waiting", wait=WAIT)
    host.client.send_json({"type": "admit", "participant": guest.welcome["participant"]})
    await guest.client.expect("joined", wait=WAIT)
    host.client.drop_queued()
    guest.client.drop_queued()
    return Pair(host, guest, room, token)


def _signal(to: str, number: int) -> bytes:
    return orjson.dumps(
        {
            "type": "signal",
            "to": to,
            "kind": "candidate",
            "candidate": {"candidate": _CANDIDATE, "sdpMid": "0", "usernameFragment": str(number)},
        }
    )


def _number(body: dict[str, Any]) -> int | None:
    candidate = body.get("candidate")
    if body.get("type") != "signal" or not isinstance(candidate, dict):
        return None
    try:
        return int(candidate.get("usernameFragment", ""))
    except ValueError:
        return None


async def setup_pairs(share: PairShare, targets: list[str], tally: Tally) -> list[Pair]:
    pairs: list[Pair] = []

    async def one(index: int, jwt: str, room: str, token: str) -> None:
        try:
            pairs.append(await open_pair(targets, index, jwt, room, token))
        except Exception as exc:  # counted; the run goes on with the rooms that opened
            tally.counts["setup_failed"] += 1
            tally.failure(exc)

    await asyncio.gather(*(one(i, *room) for i, room in enumerate(share.rooms)))
    tally.counts["rooms"] = len(pairs)
    return pairs


#: messages each direction keeps in flight when the relay runs flat out
FLAT_OUT_WINDOW = 8


def _directions(pairs: list[Pair]) -> list[tuple[Entered, Entered]]:
    """(sender, receiver) of every direction of every pair: host to guest, guest to host."""
    return [
        (sender, receiver)
        for pair in pairs
        for sender, receiver in ((pair.host, pair.guest), (pair.guest, pair.host))
    ]


async def run_relay(
    pairs: list[Pair], rate: float, origin_ns: int, end_ns: int, tally: Tally
) -> None:
    """Signal at ``rate`` per direction (open loop), or flat out when ``rate`` is 0."""
    if rate <= 0:
        await run_relay_flat_out(pairs, end_ns, tally)
        return
    sent = 0
    received = 0
    directions = _directions(pairs)
    if not directions:
        return
    schedules = [
        # spread the directions' send times over one interval
        make_schedule(origin_ns + i * round(1e9 / rate) // len(directions), rate)
        for i in range(len(directions))
    ]
    done = asyncio.Event()
    expected = 0

    def receiver_for(schedule: Schedule) -> Callable[[bytes], None]:
        def on_message(payload: bytes) -> None:
            nonlocal received
            body = _loads(payload)
            number = _number(body)
            if number is not None:
                tally.latency.record(schedule.intended(number), now_ns())
                received += 1
                if received >= expected and now_ns() >= end_ns:
                    done.set()
            elif body.get("type") == "error":
                tally.error(str(body.get("code")), str(body.get("message", "")))

        return on_message

    for (_sender, receiver), schedule in zip(directions, schedules, strict=True):
        receiver.client.on_message = receiver_for(schedule)

    counts = [0] * len(directions)
    step = round(1e9 / rate)
    while True:
        now = now_ns()
        next_due = end_ns
        # what fell due before the end is sent even when we woke up after it (a stall
        # must show as latency, not as messages that were never sent)
        for i, ((sender, receiver), schedule) in enumerate(zip(directions, schedules, strict=True)):
            due = schedule.due(min(now, end_ns - 1))
            to = str(receiver.welcome["participant"])
            while counts[i] < due:
                sender.client.send(_signal(to, counts[i]))
                counts[i] += 1
                sent += 1
            next_due = min(next_due, schedule.intended(counts[i]))
        if now >= end_ns:
            break
        await asyncio.sleep(max(0.0, (min(next_due, now + step) - now_ns()) / 1e9))
    expected = sent
    tally.counts["sent"] = sent
    if received < expected:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), DRAIN)
    tally.counts["received"] = received
    tally.counts["lost"] = max(0, sent - received)


async def run_relay_flat_out(pairs: list[Pair], end_ns: int, tally: Tally) -> None:
    """Every direction keeps FLAT_OUT_WINDOW signals in flight and sends the next as
    soon as one arrives, until ``end_ns`` (closed loop: the figure is throughput;
    latency is send -> relayed frame received). A deployment's per-connection
    ``rate`` limit refuses the excess (``rate_limited``, counted in ``errors``):
    flat out against its defaults measures that limit."""
    sent = received = 0
    sent_at: dict[tuple[int, int], int] = {}
    directions = _directions(pairs)
    if not directions:
        return
    done = asyncio.Event()
    counts = [0] * len(directions)
    in_flight = [0] * len(directions)

    def send(i: int) -> None:
        nonlocal sent
        sender, receiver = directions[i]
        sent_at[(i, counts[i])] = now_ns()
        sender.client.send(_signal(str(receiver.welcome["participant"]), counts[i]))
        counts[i] += 1
        in_flight[i] += 1
        sent += 1

    def receiver_for(i: int) -> Callable[[bytes], None]:
        def on_message(payload: bytes) -> None:
            nonlocal received
            body = _loads(payload)
            number = _number(body)
            if number is not None:
                start = sent_at.pop((i, number), None)
                if start is not None:
                    tally.latency.record(start, now_ns())
                received += 1
                in_flight[i] -= 1
                if now_ns() < end_ns:
                    send(i)
                elif sum(in_flight) <= 0:
                    done.set()
            elif body.get("type") == "error" and body.get("code") == "rate_limited":
                # the deployment's own limit refused that one: expected flat out
                tally.refused["flat_out:rate_limited"] += 1
                in_flight[i] = max(0, in_flight[i] - 1)
            elif body.get("type") == "error":
                tally.error(str(body.get("code")), str(body.get("message", "")))

        return on_message

    for i, (_sender, receiver) in enumerate(directions):
        receiver.client.on_message = receiver_for(i)
    for i in range(len(directions)):
        for _ in range(FLAT_OUT_WINDOW):
            send(i)
    await sleep_until(end_ns)
    if sum(in_flight) > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), DRAIN)
    tally.counts["sent"] = sent
    tally.counts["received"] = received
    refused = tally.refused["flat_out:rate_limited"]
    tally.counts["lost"] = max(0, sent - received - refused)


async def run_resume(
    pairs: list[Pair],
    targets: list[str],
    rate: float,
    origin_ns: int,
    end_ns: int,
    tally: Tally,
    *,
    away_messages: int = 3,
    away: float = 0.2,
) -> None:
    """Each room: cut the guest, have the host signal it ``away_messages`` times while it
    is away (``away`` s), resume; the messages must all arrive (replayed)."""

    async def cycle(pair: Pair, intended: int) -> None:
        tally.counts["attempts"] += 1
        guest_pid = str(pair.guest.welcome["participant"])
        resume_secret = str(pair.guest.welcome["resume"])
        pair.guest.client.abort()
        # the time the guest is away: the server notices the drop and queues for it
        await asyncio.sleep(away)
        base = tally.counts["numbered"]
        tally.counts["numbered"] += away_messages
        for n in range(away_messages):
            pair.host.client.send(_signal(guest_pid, base + n))
        tally.counts["replay_expected"] += away_messages
        resume_at = now_ns()
        try:
            entered = await hello(pair.guest.endpoint, {"resume": resume_secret}, wait=WAIT)
        except (Refused, WsError, TimeoutError, OSError) as exc:
            tally.counts["failed"] += 1
            tally.failure(exc)
            return
        if entered.welcome.get("resumed") is not True:
            tally.counts["failed"] += 1
            tally.error("not_resumed", "welcome without resumed: true")
            return
        tally.latency.record(resume_at, entered.welcome_ns)
        tally.counts["resumed"] += 1
        entered.welcome.setdefault("participant", guest_pid)
        entered.welcome["resume"] = resume_secret
        wanted = set(range(base, base + away_messages))
        try:
            while wanted:
                body, _ = await read_until(entered.client, frozenset({"signal"}), wait=REPLAY_WAIT)
                if body.get("type") == "error":
                    tally.error(str(body.get("code")), str(body.get("message", "")))
                    continue
                number = _number(body)
                if number is not None:
                    wanted.discard(number)
        except (WsError, TimeoutError):
            pass
        tally.counts["replay_received"] += away_messages - len(wanted)
        pair.guest = entered

    async def lane(pair: Pair, offset: int) -> None:
        schedule = make_schedule(origin_ns + offset, rate)
        index = 0
        while schedule.intended(index) < end_ns:
            await sleep_until(schedule.intended(index))
            await cycle(pair, schedule.intended(index))
            index = max(index + 1, schedule.due(now_ns()))

    step = round(1e9 / rate)
    await asyncio.gather(*(lane(p, i * step // max(1, len(pairs))) for i, p in enumerate(pairs)))


# -- dashboard ------------------------------------------------------------------------


@dataclass(slots=True)
class DashboardShare:
    subscribers: list[str]  # staff JWTs (the host of every dashboard meeting)
    #: (global index, meeting id, token) of the guests this process sends in
    guests: list[tuple[int, str, str]]
    #: every dashboard meeting of the run: meeting id -> global index
    meetings: dict[str, int]
    rate: float


@dataclass(slots=True)
class Subscriber:
    client: WsClient
    seen: dict[str, int] = field(default_factory=dict)  # meeting -> entered events
    seqs: set[int] = field(default_factory=set)
    duplicate_seqs: int = 0
    last_seq: int = -1
    out_of_order: int = 0


async def setup_dashboard(
    share: DashboardShare, targets: list[str], tally: Tally
) -> list[Subscriber]:
    subs: list[Subscriber] = []

    async def one(index: int, jwt: str) -> None:
        endpoint = _endpoint(targets, index)
        try:
            # the feed answers hello with nothing; the snapshot follows subscribe
            client = await connect(endpoint, "/ws/dashboard", wait=WAIT)
            client.send_json({"type": "hello", "jwt": jwt})
            client.send_json({"type": "subscribe", "scope": "my"})
            await client.expect("snapshot", wait=WAIT)
        except Exception as exc:  # counted; the others go on
            tally.counts["setup_failed"] += 1
            tally.failure(exc)
            return
        subs.append(Subscriber(client))

    await asyncio.gather(*(one(i, jwt) for i, jwt in enumerate(share.subscribers)))
    return subs


async def run_dashboard(
    share: DashboardShare,
    subs: list[Subscriber],
    targets: list[str],
    origin_ns: int,
    end_ns: int,
    tally: Tally,
) -> None:
    schedule = make_schedule(origin_ns, share.rate)
    entered_ok: list[str] = []
    guests: list[Entered] = []
    complete = asyncio.Event()

    def on_event(sub: Subscriber) -> Callable[[bytes], None]:
        def handle(payload: bytes) -> None:
            body = _loads(payload)
            kind = body.get("type")
            if kind == "error":
                tally.error(str(body.get("code")), str(body.get("message", "")))
                return
            if kind not in ("presence", "meeting"):
                return
            seq = body.get("seq")
            if isinstance(seq, int):
                if seq in sub.seqs:
                    sub.duplicate_seqs += 1
                sub.seqs.add(seq)
                if seq <= sub.last_seq:
                    sub.out_of_order += 1
                sub.last_seq = max(sub.last_seq, seq)
            meeting = str(body.get("meeting"))
            if kind == "presence" and body.get("kind") == "entered" and meeting in share.meetings:
                sub.seen[meeting] = sub.seen.get(meeting, 0) + 1
                if sub.seen[meeting] == 1:
                    tally.latency.record(schedule.intended(share.meetings[meeting]), now_ns())
                    if all(len(s.seen) >= len(share.meetings) for s in subs):
                        complete.set()

        return handle

    for sub in subs:
        sub.client.drop_queued()
        sub.client.on_message = on_event(sub)

    async def enter(position: int, meeting: str, token: str) -> None:
        await sleep_until(schedule.intended(position))
        try:
            guest = await hello(_endpoint(targets, position), {"token": token}, wait=WAIT)
        except (Refused, WsError, TimeoutError, OSError) as exc:
            tally.failure(exc)
            return
        entered_ok.append(meeting)
        guests.append(guest)

    await asyncio.gather(
        *(enter(pos, m, tok) for pos, m, tok in share.guests if schedule.intended(pos) < end_ns)
    )
    await sleep_until(end_ns)
    # drain: every subscriber should see every meeting of the run entered
    if not complete.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(complete.wait(), DRAIN)
    for guest in guests:
        guest.client.close()
    tally.counts["subscribers"] = len(subs)
    tally.counts["entered"] = len(entered_ok)
    tally.counts["duplicated"] = sum(
        s.duplicate_seqs + sum(n - 1 for n in s.seen.values() if n > 1) for s in subs
    )
    tally.counts["out_of_order"] = sum(s.out_of_order for s in subs)
    tally.extra["entered"] = entered_ok
    tally.extra["seen"] = [sorted(s.seen) for s in subs]


# -- abuse ----------------------------------------------------------------------------


@dataclass(slots=True)
class AbuseShare:
    #: link tokens redeemed during setup, replayed during the run
    replay: list[str]
    #: a room for wrong guest keys and for the staff that flood
    room: str
    staff_jwt: str
    rate: float
    max_message: int = 65536
    flood: int = 250
    #: whether this process floods (the others replace their floods with wrong keys)
    floods: bool = True


ABUSE_ACTS = ("replay", "wrong_key", "oversized", "flood")
#: the codes that count as the right refusal of each act
RIGHT_CODES: dict[str, frozenset[str]] = {
    "replay": frozenset({"token_invalid"}),
    # guest-key attempts are throttled per client address: past the limit the
    # refusal is rate_limited, still a refusal
    "wrong_key": frozenset({"token_invalid", "rate_limited"}),
    "oversized": frozenset({"too_large"}),
    "flood": frozenset({"rate_limited"}),
}


async def setup_abuse(share: AbuseShare, targets: list[str], tally: Tally) -> list[str]:
    """Redeem every replay token once (a real guest's first visit)."""
    spent: list[str] = []

    async def one(index: int, token: str) -> None:
        try:
            entered = await hello(_endpoint(targets, index), {"token": token}, wait=WAIT)
        except Exception as exc:  # counted; that token is not replayed
            tally.counts["setup_failed"] += 1
            tally.failure(exc)
            return
        await _leave(entered)
        spent.append(token)

    await asyncio.gather(*(one(i, t) for i, t in enumerate(share.replay)))
    return spent


async def _refusal_of(client: WsClient) -> str:
    """The code of the error the server answers with ('closed' if it only closes)."""
    try:
        body, _ = await read_until(client, frozenset(), wait=WAIT)
    except WsError:
        return "closed"
    return str(body.get("code"))


async def run_abuse(
    share: AbuseShare, spent: list[str], targets: list[str], origin_ns: int, end_ns: int,
    tally: Tally,
) -> None:  # fmt: skip
    # abuse in the even seconds of the run only, at twice the rate (the mean is the
    # rate asked for): the odd seconds are the quiet baseline of the normal traffic
    schedule = make_schedule(origin_ns, 2 * share.rate)
    replays = iter(spent)
    flood_lock = asyncio.Lock()
    performed = 0

    async def act(index: int, intended: int) -> None:
        nonlocal performed
        if (intended - origin_ns) // 1_000_000_000 % 2:
            return
        kind = ABUSE_ACTS[performed % len(ABUSE_ACTS)]
        performed += 1
        if kind == "flood" and not share.floods:
            kind = "wrong_key"
        if kind == "replay":
            token = next(replays, None)
            if token is None:
                kind = "wrong_key"
        endpoint = _endpoint(targets, index)
        tally.counts["attempts"] += 1
        code = ""
        try:
            if kind == "replay":
                code = await _refused_hello(endpoint, {"token": token})
            elif kind == "wrong_key":
                key = "".join(secrets.choice("ABCDEFGHJKMNPQRSTVWXYZ23456789") for _ in range(8))
                body = {"guest_key": f"{key[:4]}-{key[4:]}", "room": share.room}
                code = await _refused_hello(endpoint, body)
            elif kind == "oversized":
                client = await WsClient.connect(endpoint.host, endpoint.port, "/ws", wait=WAIT)
                try:
                    client.send(b'{"type":"ping","pad":"' + b"x" * share.max_message + b'"}')
                    code = await _refusal_of(client)
                finally:
                    client.close()
            else:
                async with flood_lock:
                    code = await _flood(endpoint, share)
        except Refused as exc:  # the flooding clinician's own hello refused
            code = f"hello_{exc.code}"
        except (WsError, TimeoutError, OSError) as exc:
            tally.counts["wrong"] += 1
            tally.failure(exc)
            return
        tally.latency.record(intended, now_ns())
        if code in RIGHT_CODES[kind]:
            tally.refused[f"{kind}:{code}"] += 1
            tally.counts["refused"] += 1
        else:
            tally.counts["wrong"] += 1
            tally.error(
                f"{kind}:{code}", f"{kind} answered {code}, not {sorted(RIGHT_CODES[kind])}"
            )

    await paced(schedule, 1 << 30, end_ns, act)


async def _refused_hello(endpoint: Endpoint, body: dict[str, Any]) -> str:
    try:
        entered = await hello(endpoint, body, wait=WAIT)
    except Refused as exc:
        return exc.code
    await _leave(entered)
    return "accepted"


async def _flood(endpoint: Endpoint, share: AbuseShare) -> str:
    """Staff in the abuse room sends ``flood`` pings at once; the rate limit must answer."""
    entered = await hello(endpoint, {"jwt": share.staff_jwt, "room": share.room}, wait=WAIT)
    client = entered.client
    try:
        client.drop_queued()
        for _ in range(share.flood):
            client.send(b'{"type":"ping"}')
        pongs = 0
        while pongs < share.flood:
            try:
                body, _ = await read_until(client, frozenset({"pong"}), wait=WAIT)
            except WsError:
                return "closed"
            if body.get("type") == "error":
                return str(body.get("code"))
            pongs += 1
        return "not_refused"
    finally:
        client.send_json({"type": "leave"})
        client.close()


# -- call -----------------------------------------------------------------------------


@dataclass(slots=True)
class RoomShare:
    """Rooms with a host that stays, and the guest tokens each room's guests use."""

    #: (host jwt, room, guest tokens for this room)
    rooms: list[tuple[str, str, list[str]]]
    #: arrivals per second per room
    rate: float
    #: every room of the scenario, in every process (lobby: where guests are moved to)
    all_rooms: list[str] = field(default_factory=list)


_SDP = "v=0\r\no=- 0 0 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"


async def setup_hosts(share: RoomShare, targets: list[str], tally: Tally) -> list[Entered | None]:
    """Each room's host: ``hello`` and ``join`` (None where that failed)."""

    async def one(index: int, jwt: str, room: str) -> Entered | None:
        try:
            host = await hello(_endpoint(targets, index), {"jwt": jwt, "room": room}, wait=WAIT)
            await join_call(host)
        except Exception as exc:  # counted; the room is left out
            tally.counts["setup_failed"] += 1
            tally.failure(exc)
            return None
        return host

    hosts = await asyncio.gather(
        *(one(i, jwt, room) for i, (jwt, room, _) in enumerate(share.rooms))
    )
    tally.counts["rooms"] = sum(1 for h in hosts if h is not None)
    return list(hosts)


async def _await_waiting(host: WsClient, pid: str) -> None:
    """Until the host's lobby lists ``pid``."""
    await host.expect(
        "lobby", wait=WAIT, where=lambda b: any(w.get("id") == pid for w in b.get("waiting", []))
    )


async def _exchange(host: Entered, guest: Entered, host_pid: str, guest_pid: str) -> None:
    """Offer, answer, two candidates and end-of-candidates each way, then both report
    ``call.state connected``: what two browsers do to set a call up."""
    h, g = host.client, guest.client
    h.send_json({"type": "signal", "to": guest_pid, "kind": "offer", "sdp": _SDP})
    await g.expect("signal", wait=WAIT, where=lambda b: b.get("kind") == "offer")
    g.send_json({"type": "signal", "to": host_pid, "kind": "answer", "sdp": _SDP})
    await h.expect("signal", wait=WAIT, where=lambda b: b.get("kind") == "answer")
    for sender, to in ((h, guest_pid), (g, host_pid)):
        for n in range(2):
            sender.send(_signal(to, n))
        sender.send_json({"type": "signal", "to": to, "kind": "candidate", "candidate": None})
    for receiver in (h, g):
        await receiver.expect(
            "signal",
            wait=WAIT,
            where=lambda b: b.get("kind") == "candidate" and b["candidate"] is None,
        )
    h.send_json({"type": "call.state", "state": "connected", "peer": guest_pid})
    g.send_json({"type": "call.state", "state": "connected", "peer": host_pid})


async def run_call(
    share: RoomShare, hosts: list[Entered | None], origin_ns: int, end_ns: int, tally: Tally
) -> None:
    """Per room, one call after another: a guest arrives, waits, is admitted, the call is
    set up; latency from the call's intended start to both ``call.state connected``."""

    async def lane(host: Entered, tokens: list[str], offset: int) -> None:
        schedule = make_schedule(origin_ns + offset, share.rate)
        host_pid = str(host.welcome["participant"])
        for index, token in enumerate(tokens):
            intended = schedule.intended(index)
            if intended >= end_ns:
                break
            await sleep_until(intended)
            tally.counts["attempts"] += 1
            guest: Entered | None = None
            try:
                guest = await hello(host.endpoint, {"token": token}, wait=WAIT)
                guest_pid = str(guest.welcome["participant"])
                guest.client.send_json({"type": "join"})
                await guest.client.expect("waiting", wait=WAIT)
                await _await_waiting(host.client, guest_pid)
                host.client.send_json({"type": "admit", "participant": guest_pid})
                await guest.client.expect("joined", wait=WAIT)
                await _exchange(host, guest, host_pid, guest_pid)
            except (Refused, WsError, TimeoutError, OSError) as exc:
                tally.counts["failed"] += 1
                tally.failure(exc)
                if guest is not None:
                    guest.client.close()
                continue
            tally.latency.record(intended, now_ns())
            tally.counts["connected"] += 1
            await _leave(guest)

    step = round(1e9 / share.rate)
    await asyncio.gather(
        *(
            lane(host, tokens, i * step // max(1, len(hosts)))
            for i, (host, (_, _, tokens)) in enumerate(zip(hosts, share.rooms, strict=True))
            if host is not None
        )
    )


# -- lobby ----------------------------------------------------------------------------


async def run_lobby(
    share: RoomShare, hosts: list[Entered | None], origin_ns: int, end_ns: int, tally: Tally,
    *, move_every: int = 4,
) -> None:  # fmt: skip
    """Guests arrive in the rooms' lobbies at a set rate per room; each room's host says
    a message to its lobby once a second and admits each guest it sees waiting, except
    every ``move_every``-th, moved to the next room, whose host admits it there.
    Latency: the guest's intended arrival -> ``admitted``."""
    live = [(h, r) for h, r in zip(hosts, share.rooms, strict=True) if h is not None]
    if not live:
        return
    slugs = share.all_rooms or [room for _, (_, room, _) in live]
    moved_to: dict[str, str] = {}
    #: guests a host must move rather than admit
    to_move: set[str] = set()

    def host_handler(host: Entered, room_index: int) -> Callable[[bytes], None]:
        #: guests this host admitted or moved: a lobby update sent before the server
        #: applied that may still list them
        handled: set[str] = set()

        def handle(payload: bytes) -> None:
            body = _loads(payload)
            kind = body.get("type")
            if kind == "error":
                tally.error(str(body.get("code")), str(body.get("message", "")))
                return
            if kind != "lobby":
                return
            for waiting in body.get("waiting", []):
                pid = str(waiting.get("id"))
                if pid in handled:
                    continue
                handled.add(pid)
                if pid in to_move and len(slugs) > 1:
                    to_move.discard(pid)
                    here = live[room_index][1][1]
                    target = slugs[(slugs.index(here) + 1) % len(slugs)]
                    moved_to[pid] = target  # the next room's host admits it there
                    host.client.send_json({"type": "move", "participant": pid, "room": target})
                    tally.counts["moves"] += 1
                else:
                    host.client.send_json({"type": "admit", "participant": pid})

        return handle

    for i, (host, _) in enumerate(live):
        host.client.drop_queued()
        host.client.on_message = host_handler(host, i)

    async def say_loop() -> None:
        n = 0
        while now_ns() < end_ns:
            await sleep_until(origin_ns + (n + 1) * 1_000_000_000)
            for host, _ in live:
                host.client.send_json({"type": "say", "text": f"Running a little late ({n})"})
                tally.counts["said"] += 1
            n += 1

    async def guest(position: int, room_index: int, token: str, intended: int) -> None:
        host = live[room_index][0]
        try:
            g = await hello(host.endpoint, {"token": token}, wait=WAIT)
        except (Refused, WsError, TimeoutError, OSError) as exc:
            tally.counts["failed"] += 1
            tally.failure(exc)
            return
        pid = str(g.welcome["participant"])
        if move_every and position % move_every == move_every - 1:
            to_move.add(pid)
        try:
            g.client.send_json({"type": "join"})
            await g.client.expect("admitted", wait=WAIT)
        except (WsError, TimeoutError) as exc:
            tally.counts["failed"] += 1
            tally.failure(exc)
            g.client.close()
            return
        tally.latency.record(intended, now_ns())
        tally.counts["admitted"] += 1
        if pid in moved_to:
            tally.counts["admitted_after_move"] += 1
        await _leave(g)

    async def room_arrivals(room_index: int, tokens: list[str]) -> None:
        schedule = make_schedule(origin_ns, share.rate)
        tasks = []
        for index, token in enumerate(tokens):
            intended = schedule.intended(index)
            if intended >= end_ns:
                break
            await sleep_until(intended)
            tally.counts["arrivals"] += 1
            tasks.append(asyncio.create_task(guest(index, room_index, token, intended)))
        await asyncio.gather(*tasks)

    sayer = asyncio.create_task(say_loop())
    try:
        await asyncio.gather(
            *(room_arrivals(i, tokens) for i, (_, (_, _, tokens)) in enumerate(live))
        )
    finally:
        sayer.cancel()
        await asyncio.gather(sayer, return_exceptions=True)


# -- mediacheck -----------------------------------------------------------------------


@dataclass(slots=True)
class MediaShare:
    #: (token, room) per patient
    guests: list[tuple[str, str]]
    #: checks started per second
    rate: float


#: a verdict comes within 15 s (docs/protocol.md); the answer within a few
VERDICT_WAIT = 30.0


async def run_mediacheck(
    share: MediaShare, targets: list[str], origin_ns: int, end_ns: int, tally: Tally
) -> None:
    """Patients redeem their link, join the queue and run the media check with a real
    aiortc peer sending browser-like VP8 (640x480, 1 Mbit/s, pre-encoded) and a tone.
    Latency: intended start -> ``mediacheck.result``."""
    # aiortc is heavy: imported only by the processes that run this scenario
    from mediacheck.synthetic import ReplayVideoTrack, SyntheticClient, ToneAudioTrack

    ReplayVideoTrack()  # encodes the replayed video once, before the clock matters

    async def one(index: int, intended: int) -> None:
        token, _room = share.guests[index]
        tally.counts["attempts"] += 1
        guest: Entered | None = None
        client = SyntheticClient(video=ReplayVideoTrack(), audio=ToneAudioTrack())
        try:
            guest = await hello(_endpoint(targets, index), {"token": token}, wait=WAIT)
            guest.client.send_json({"type": "join"})
            await guest.client.expect("waiting", wait=WAIT)
            offer = await client.offer()
            guest.client.send_json({"type": "mediacheck.offer", "sdp": offer})
            answer, _ = await read_until(
                guest.client, frozenset({"mediacheck.answer"}), wait=VERDICT_WAIT
            )
            if answer.get("type") == "error":
                if answer.get("code") == "busy":
                    tally.counts["busy"] += 1
                else:
                    tally.error(str(answer.get("code")), str(answer.get("message", "")))
                return
            await client.accept(str(answer["sdp"]))
            result, _ = await read_until(
                guest.client, frozenset({"mediacheck.result"}), wait=VERDICT_WAIT
            )
            if result.get("type") == "error":
                tally.error(str(result.get("code")), str(result.get("message", "")))
                return
        except (Refused, WsError, TimeoutError, OSError) as exc:
            tally.counts["failed"] += 1
            tally.failure(exc)
            return
        finally:
            await client.close()
            if guest is not None:
                await _leave(guest)
        tally.latency.record(intended, now_ns())
        verdict = str(result.get("verdict"))
        tally.counts["verdicts"] += 1
        tally.counts[f"verdict_{verdict}"] += 1
        if verdict != "passed" and len(tally.first_errors) < FIRST_ERRORS:
            reasons = ",".join(str(r.get("code")) for r in result.get("reasons", []))
            tally.first_errors.append(f"verdict {verdict}: {reasons}")

    await paced(make_schedule(origin_ns, share.rate), len(share.guests), end_ns, one)
