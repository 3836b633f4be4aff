"""One hierarchy of domain and protocol errors, each with a stable wire code.

The shell maps any :class:`VestibuleError` to ``{"type":"error","code":...}``
(websocket) or an HTTP status (REST) in one place; the code never changes
once published (docs/protocol.md lists them).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar


class VestibuleError(Exception):
    """Base of every error Vestibule reports to a client."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    #: websocket close code when the error ends the connection (None: it does not)
    close_code: ClassVar[int | None] = None
    #: close code when the error refuses a handshake (nothing is usable before one)
    refusal_code: ClassVar[int] = 1008
    #: generic text shown when no message is given
    default_message: ClassVar[str] = "request failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class BadMessage(VestibuleError):
    code = "bad_message"
    default_message = "malformed or invalid message"


class Invalid(VestibuleError):
    """A well-formed request whose values break a rule (length, range, format)."""

    code = "invalid"
    http_status = 422
    default_message = "invalid value"


class Unauthorized(VestibuleError):
    code = "unauthorized"
    http_status = 401
    close_code = 1008
    default_message = "authentication required"


class TokenInvalid(VestibuleError):
    """One uniform error for a wrong, expired, revoked or already used credential."""

    code = "token_invalid"
    http_status = 401
    close_code = 1008
    default_message = "this link or key is not valid"


class LinkNotOpen(VestibuleError):
    """A join link opened before its window: its holder is told when it opens.

    Only a link that is otherwise good (not revoked, not yet used) gets this
    answer; every other failure stays the uniform :class:`TokenInvalid`."""

    code = "link_not_open"
    http_status = 409
    close_code = 1008

    def __init__(self, opens_at: datetime) -> None:
        super().__init__(f"This link opens at {opens_at:%H:%M} UTC on {opens_at:%d %B %Y}.")
        self.opens_at = opens_at


class Forbidden(VestibuleError):
    code = "forbidden"
    http_status = 403
    default_message = "not allowed"


class NotHost(Forbidden):
    code = "not_host"
    default_message = "only a host of this room may do that"


class ForeignOrigin(Forbidden):
    """A browser page of another site tried to act with the staff session cookie
    (the ``Origin`` rule, docs/protocol.md "Origin")."""

    code = "foreign_origin"
    default_message = "requests with the session cookie must come from this server's pages"


class PlanLimit(Forbidden):
    code = "plan_limit"

    def __init__(self, plan: str, what: str) -> None:
        super().__init__(f"the {plan} plan does not include {what}")
        self.plan = plan


class RoomArchived(Forbidden):
    """The room is archived: it admits nobody (staff, or a guest whose meeting is
    in it). A walk-in is never told this: they get the uniform TokenInvalid."""

    code = "room_archived"
    close_code = 1008
    default_message = "this room is archived and admits nobody"


class NotFound(VestibuleError):
    code = "not_found"
    http_status = 404
    default_message = "no such thing"


class Conflict(VestibuleError):
    code = "conflict"
    http_status = 409
    default_message = "conflicts with the current state"


class BadTransition(Conflict):
    """A lifecycle move its transition table does not allow; names the state it was in."""

    code = "bad_transition"

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: cannot {event} while {state}")
        self.machine = machine
        self.state = state
        self.event = event


class KnownPatientsOnly(Forbidden):
    """An online booking of a "known patients only" type by an email the team
    does not know. Says nothing else about the address (docs/domain.md)."""

    code = "known_patients_only"
    default_message = (
        "this appointment type can be booked online by existing patients only;"
        " please contact the practice"
    )


class SlotTaken(Conflict):
    """The online booking's time is not (or no longer) a free slot."""

    code = "slot_taken"
    default_message = "this time is no longer free; please choose another"


class SlotAlreadyChosen(Conflict):
    """A proposed slot is picked for a meeting whose time is already set (a
    slot was picked before, or the clinic fixed the time)."""

    code = "slot_already_chosen"
    default_message = "a time has already been chosen for this appointment"


class SlotNotOffered(Conflict):
    """The slot picked is not one of the meeting's proposed slots still ahead."""

    code = "slot_not_offered"
    default_message = "that time is not offered for this appointment"


class NoLongerWaiting(Conflict):
    """A pick of a patient who is not waiting in that queue any more: a colleague
    picked them first, they left, or a host there admitted them."""

    code = "no_longer_waiting"
    default_message = "this patient is no longer waiting there"


class RoomFull(VestibuleError):
    code = "room_full"
    http_status = 409
    default_message = "the room is full"


class RateLimited(VestibuleError):
    code = "rate_limited"
    http_status = 429
    default_message = "too many requests; slow down"

    def __init__(self, message: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooLarge(VestibuleError):
    code = "too_large"
    http_status = 413
    close_code = 1009
    default_message = "message too large"


class UnsupportedMediaType(VestibuleError):
    """A REST request body that is not ``application/json``."""

    code = "unsupported_media_type"
    http_status = 415
    default_message = "the body must be application/json"


class Busy(VestibuleError):
    code = "busy"
    http_status = 503
    default_message = "busy; try again shortly"

    def __init__(self, message: str | None = None, retry_after: float = 2.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Internal(VestibuleError):
    """Something failed on the server that is not the client's doing (a bug).
    After a handshake the connection stays usable."""

    code = "internal"
    http_status = 500
    refusal_code = 1011
    default_message = "the server could not do that; try again"


class Unavailable(VestibuleError):
    """The server cannot reach its store (Redis or the database) just now. Nothing
    was done; the same request may succeed after ``retry_after`` seconds."""

    code = "unavailable"
    http_status = 503
    refusal_code = 1013
    default_message = "the service is briefly unavailable; try again shortly"

    def __init__(self, message: str | None = None, retry_after: float = 2.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


ALL_ERRORS: tuple[type[VestibuleError], ...] = (
    BadMessage,
    Invalid,
    Unauthorized,
    TokenInvalid,
    LinkNotOpen,
    Forbidden,
    NotHost,
    ForeignOrigin,
    PlanLimit,
    KnownPatientsOnly,
    RoomArchived,
    NotFound,
    Conflict,
    BadTransition,
    SlotTaken,
    SlotAlreadyChosen,
    SlotNotOffered,
    NoLongerWaiting,
    RoomFull,
    RateLimited,
    TooLarge,
    UnsupportedMediaType,
    Busy,
    Internal,
    Unavailable,
)
