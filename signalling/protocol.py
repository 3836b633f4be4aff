"""The wire protocol: frames in, typed messages; typed messages out, frames.

``parse(frame, binary=...)`` is the only place a client's raw dict is read: it
returns one of the frozen ``ClientMessage`` types or raises
:class:`rooms.errors.BadMessage`, whatever JSON or msgpack value stands in any
field. ``encode(body, binary=...)`` writes a server message as JSON (orjson, 6-7x
the stdlib on these messages) or msgpack. ``MESSAGES`` is the one table of client
message types (wire name, type, parser); ``SERVER_TYPES`` names every message the
server sends. docs/protocol.md is the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack
import orjson

from rooms.errors import BadMessage, VestibuleError

Ref = str | int | None

MAX_REF = 64
MAX_NAME = 80
MAX_ID = 64
#: an SDP is a few KiB; the frame limit (64 KiB) bounds it anyway
MAX_SDP = 60_000
MAX_CANDIDATE = 1_024
MAX_SAY = 500


# -- client messages ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    token: str | None = None
    guest_key: str | None = None
    room: str | None = None
    jwt: str | None = None
    resume: str | None = None
    rejoin: str | None = None
    name: str | None = None
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Join:
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Leave:
    ref: Ref = None


SIGNAL_KINDS = frozenset({"offer", "answer", "candidate", "ice-restart"})


class Signal(NamedTuple):
    """The hot message: a NamedTuple, immutable like the others, because a frozen
    dataclass's __init__ costs 1.1 µs against 0.45 µs here, on every relayed frame
    (docs/decisions.md)."""

    to: str
    kind: str
    sdp: str | None = None
    candidate: Mapping[str, Any] | None = None
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class CallState:
    state: str
    peer: str | None = None
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Admit:
    participant: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class AdmitAll:
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Deny:
    participant: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class PutBack:
    participant: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Move:
    participant: str
    room: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Invite:
    member: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Watch:
    """A host follows the team's shared queues (Reception, Waiting Area)."""

    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Unwatch:
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Pick:
    """A host brings a patient waiting in a watched queue into their own room."""

    participant: str
    room: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class MediaCheckOffer:
    sdp: str
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Ping:
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Pong:
    ref: Ref = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    scope: str
    since: int | None = None
    ref: Ref = None


ClientMessage = (
    Hello
    | Join
    | Leave
    | Signal
    | CallState
    | Admit
    | AdmitAll
    | Deny
    | PutBack
    | Move
    | Say
    | Invite
    | Watch
    | Unwatch
    | Pick
    | MediaCheckOffer
    | Ping
    | Pong
    | Subscribe
)


# -- field readers -------------------------------------------------------------------


def _str(obj: Mapping[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise BadMessage(f"{key}: required")
        return None
    if not isinstance(value, str):
        raise BadMessage(f"{key}: expected a string")
    if len(value) > limit:
        raise BadMessage(f"{key}: longer than {limit} characters")
    if required and not value:
        raise BadMessage(f"{key}: must not be empty")
    return value


def _req(obj: Mapping[str, Any], key: str, limit: int) -> str:
    value = _str(obj, key, limit, required=True)
    assert value is not None
    return value


def _ref(obj: Mapping[str, Any]) -> Ref:
    ref = obj.get("ref")
    if ref is None:
        return None
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        raise BadMessage("ref: expected a string or an integer")
    if isinstance(ref, str) and len(ref) > MAX_REF:
        raise BadMessage(f"ref: longer than {MAX_REF} characters")
    return ref


def _hello(o: Mapping[str, Any]) -> Hello:
    msg = Hello(
        token=_str(o, "token", 256),
        guest_key=_str(o, "guest_key", 32),
        room=_str(o, "room", MAX_ID),
        jwt=_str(o, "jwt", 4096),
        resume=_str(o, "resume", 256),
        rejoin=_str(o, "rejoin", 256),
        name=_str(o, "name", MAX_NAME),
        ref=_ref(o),
    )
    given = [x for x in (msg.token, msg.guest_key, msg.jwt, msg.resume) if x is not None]
    if len(given) > 1:
        raise BadMessage("hello: give exactly one credential")
    if msg.guest_key is not None and not msg.room:
        raise BadMessage("hello: guest_key needs room")
    return msg


_CANDIDATE_KEYS = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})


def _signal(o: Mapping[str, Any]) -> Signal:
    # The hot path (every relayed message): plain type checks, no helper calls
    # unless something is wrong.
    to = o.get("to")
    kind = o.get("kind")
    if type(to) is not str or not 0 < len(to) <= MAX_ID:
        raise BadMessage("to: expected a participant id")
    if type(kind) is not str or kind not in SIGNAL_KINDS:
        raise BadMessage("kind: expected offer, answer, candidate or ice-restart")
    sdp = o.get("sdp")
    if sdp is not None and (type(sdp) is not str or len(sdp) > MAX_SDP):
        raise BadMessage(f"sdp: expected a string of at most {MAX_SDP} characters")
    candidate: Mapping[str, Any] | None = None
    if kind == "candidate":
        raw = o.get("candidate")
        if raw is not None:
            if type(raw) is not dict or not raw.keys() <= _CANDIDATE_KEYS:
                extra = sorted(set(raw) - _CANDIDATE_KEYS) if type(raw) is dict else None
                raise BadMessage(
                    f"candidate: unexpected field {extra[0]}"
                    if extra
                    else "candidate: expected an object or null"
                )
            line = raw.get("candidate")
            if line is not None and (type(line) is not str or len(line) > MAX_CANDIDATE):
                raise BadMessage("candidate.candidate: expected a candidate line")
            mid = raw.get("sdpMid")
            if mid is not None and (type(mid) is not str or len(mid) > 32):
                raise BadMessage("candidate.sdpMid: expected a short string")
            ufrag = raw.get("usernameFragment")
            if ufrag is not None and (type(ufrag) is not str or len(ufrag) > 256):
                raise BadMessage("candidate.usernameFragment: expected a short string")
            index = raw.get("sdpMLineIndex")
            if index is not None and type(index) is not int:
                raise BadMessage("candidate.sdpMLineIndex: expected an integer")
            candidate = raw
    elif kind != "ice-restart" and not sdp:
        raise BadMessage(f"{kind}: sdp required")
    ref = o.get("ref")
    return Signal(to, kind, sdp, candidate, ref if ref is None else _ref(o))


def _call_state(o: Mapping[str, Any]) -> CallState:
    state = _req(o, "state", 16)
    if state not in ("connected", "failed"):
        raise BadMessage("state: expected connected or failed")
    return CallState(state=state, peer=_str(o, "peer", MAX_ID), ref=_ref(o))


def _subscribe(o: Mapping[str, Any]) -> Subscribe:
    scope = _req(o, "scope", 16)
    if scope not in ("my", "everyone"):
        raise BadMessage("scope: expected my or everyone")
    since = o.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
        raise BadMessage("since: expected a non-negative integer")
    return Subscribe(scope=scope, since=since, ref=_ref(o))


Parser = Callable[[Mapping[str, Any]], ClientMessage]

#: The one table of client message types: wire name -> (type, parser). Everything
#: else that names a client message (the metrics' labels, docs/protocol.md's test)
#: is derived from it.
MESSAGES: Mapping[str, tuple[type, Parser]] = {
    "hello": (Hello, _hello),
    "join": (Join, lambda o: Join(ref=_ref(o))),
    "leave": (Leave, lambda o: Leave(ref=_ref(o))),
    "signal": (Signal, _signal),
    "call.state": (CallState, _call_state),
    "admit": (Admit, lambda o: Admit(participant=_req(o, "participant", MAX_ID), ref=_ref(o))),
    "admit_all": (AdmitAll, lambda o: AdmitAll(ref=_ref(o))),
    "deny": (Deny, lambda o: Deny(participant=_req(o, "participant", MAX_ID), ref=_ref(o))),
    "put_back": (
        PutBack,
        lambda o: PutBack(participant=_req(o, "participant", MAX_ID), ref=_ref(o)),
    ),
    "move": (
        Move,
        lambda o: Move(
            participant=_req(o, "participant", MAX_ID), room=_req(o, "room", MAX_ID), ref=_ref(o)
        ),
    ),
    # the text limit is a domain rule (Invalid), checked by the lobby; bound it loosely here
    "say": (Say, lambda o: Say(text=_req(o, "text", 4 * MAX_SAY), ref=_ref(o))),
    "invite": (Invite, lambda o: Invite(member=_req(o, "member", MAX_ID), ref=_ref(o))),
    "watch": (Watch, lambda o: Watch(ref=_ref(o))),
    "unwatch": (Unwatch, lambda o: Unwatch(ref=_ref(o))),
    "pick": (
        Pick,
        lambda o: Pick(
            participant=_req(o, "participant", MAX_ID), room=_req(o, "room", MAX_ID), ref=_ref(o)
        ),
    ),
    "mediacheck.offer": (
        MediaCheckOffer,
        lambda o: MediaCheckOffer(sdp=_req(o, "sdp", MAX_SDP), ref=_ref(o)),
    ),
    "ping": (Ping, lambda o: Ping(ref=_ref(o))),
    "pong": (Pong, lambda o: Pong(ref=_ref(o))),
    "subscribe": (Subscribe, _subscribe),
}

#: every client message type's wire name
CLIENT_TYPES = frozenset(MESSAGES)
_PARSERS: dict[str, Parser] = {name: parser for name, (_, parser) in MESSAGES.items()}
_NAMES: dict[type, str] = {cls: name for name, (cls, _) in MESSAGES.items()}

#: every message type the server sends (docs/protocol.md describes each)
SERVER_TYPES = frozenset(
    {
        "welcome",
        "error",
        "goaway",
        "ping",
        "pong",
        "waiting",
        "admitted",
        "denied",
        "moved",
        "joined",
        "participant",
        "lobby",
        "invited",
        "queues",
        "signal",
        "mediacheck.answer",
        "mediacheck.progress",
        "mediacheck.result",
        "snapshot",
        "watermark",
        "meeting",
        "presence",
    }
)


def type_name(message: ClientMessage) -> str:
    """The wire name of a parsed client message."""
    return _NAMES[type(message)]


def decode(frame: bytes | str, *, binary: bool) -> Any:
    """Decode a frame to a Python value; BadMessage when it is not JSON / msgpack."""
    try:
        if binary:
            return msgpack.unpackb(frame, raw=False, strict_map_key=True)
        return orjson.loads(frame)
    except (orjson.JSONDecodeError, ValueError, msgpack.UnpackException, TypeError):
        raise BadMessage("not valid " + ("msgpack" if binary else "JSON")) from None


def parse(frame: bytes | str, *, binary: bool = False) -> ClientMessage:
    """Parse one frame into a typed client message (BadMessage on any defect)."""
    return parse_obj(decode(frame, binary=binary))


def parse_obj(obj: Any) -> ClientMessage:
    if not isinstance(obj, dict):
        raise BadMessage("a message must be an object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise BadMessage("type: required")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise BadMessage(f"unknown type {kind[:32]!r}")
    return parser(obj)


def ref_of(frame: bytes | str, *, binary: bool) -> Ref:
    """Best-effort ``ref`` of a frame that failed to parse, for the error reply."""
    try:
        obj = decode(frame, binary=binary)
        return _ref(obj) if isinstance(obj, dict) else None
    except VestibuleError:
        return None


# -- server messages -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    code: str
    message: str
    ref: Ref = None
    retry_after: float | None = None
    #: when an early link opens (``link_not_open``), ISO 8601 UTC
    opens_at: str | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.ref is not None:
            out["ref"] = self.ref
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.opens_at is not None:
            out["opens_at"] = self.opens_at
        return out

    @classmethod
    def of(cls, err: VestibuleError, ref: Ref = None) -> ErrorMessage:
        retry = getattr(err, "retry_after", None)
        opens = getattr(err, "opens_at", None)
        return cls(
            err.code,
            err.message,
            ref,
            float(retry) if retry is not None else None,
            opens.isoformat().replace("+00:00", "Z") if opens is not None else None,
        )


def encode(body: Mapping[str, Any], *, binary: bool) -> bytes:
    """Encode a wire dict: msgpack for binary connections, JSON (UTF-8 bytes) otherwise."""
    if binary:
        return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]
    return orjson.dumps(body)
