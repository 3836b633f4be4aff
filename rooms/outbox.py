"""Messages to patients: what is sent, when, and what happens when sending fails.

Every message a meeting sends its guest is an :class:`OutboxMessage` in the
store's outbox, written when the meeting is booked or changed and delivered
by the shell's sender when it falls due. A message names its *trigger* (which
template renders it) and its meeting, never its text: the sender renders it
when it sends, so a reminder always carries the meeting's link as it is then
(after a re-issue, the new one).

The rules here are pure: which messages a booking, a confirmation, a
reschedule or a cancellation schedules (:func:`plan_booking`,
:func:`plan_change`), and what a failed attempt leads to
(:func:`after_failure`). The outbox's states::

    scheduled --sent--> sent
        |  \\--attempt failed, attempts left--> scheduled (due later)
        |   \\--attempt failed, none left--> failed
        \\--meeting cancelled or moved--> cancelled

While one sender delivers a message it holds a *claim* (``claimed_by``,
``claimed_until``): the stores grant it atomically to one sender of all nodes,
and a claim that outlives its lease (the node died mid-send) lets another
sender take the message again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from rooms.errors import Invalid
from rooms.meeting import Meeting


class Trigger(enum.StrEnum):
    """Why a message is sent; each has its own template."""

    CONFIRMATION = "confirmation"
    #: the confirmation of a recurring series: the first session's link and every date
    SERIES_CONFIRMATION = "series_confirmation"
    REMINDER = "reminder"
    RESCHEDULE = "reschedule"
    CANCELLATION = "cancellation"
    #: a new team member's invitation, with the link to set their password
    #: (the one trigger about an invitation rather than a meeting)
    INVITATION = "invitation"
    #: a meeting in planning: the link to the page where the guest picks a slot
    PROPOSED_SLOTS = "proposed_slots"
    #: after a completed meeting: the link to the page where the guest reviews it
    REVIEW_REQUEST = "review_request"


class MessageState(enum.StrEnum):
    SCHEDULED = "scheduled"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: the triggers whose message carries an .ics calendar attachment with the join link
WITH_CALENDAR = frozenset({Trigger.CONFIRMATION, Trigger.SERIES_CONFIRMATION, Trigger.REMINDER})

#: reminders go this long before each session unless the team chose otherwise
DEFAULT_REMINDER_OFFSETS: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
#: a team sets at most this many reminders, each at most this far ahead
MAX_REMINDERS = 5
LONGEST_REMINDER_OFFSET = timedelta(days=14)

#: delivery attempts per message before it is ``failed``
MAX_ATTEMPTS = 5
#: the wait after the first failed attempt, doubled after each further one
FIRST_BACKOFF = timedelta(seconds=30)
#: the longest wait between two attempts
LONGEST_BACKOFF = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message to a meeting's guest (``meeting_id``), or a new member's
    invitation (``invitation_id``), as the outbox keeps it: exactly one of the
    two is set."""

    id: str
    team_id: str
    #: the meeting the message is about (None for an invitation)
    meeting_id: str | None
    trigger: Trigger
    #: the guest's (or invited member's) address when the message was scheduled
    recipient: str
    #: when it is to be sent (the next attempt's time after a failure)
    due_at: datetime
    created_at: datetime
    state: MessageState = MessageState.SCHEDULED
    #: attempts started so far (a claim counts as one)
    attempts: int = 0
    #: the last failure, as a class and an SMTP code (never the text, which may
    #: name the recipient)
    last_error: str | None = None
    sent_at: datetime | None = None
    #: a reminder's offset before the start (None for other triggers)
    offset: timedelta | None = None
    #: the sender holding the message while it delivers it, and until when
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    #: the invitation the message carries (rooms.invitations), for INVITATION
    invitation_id: str | None = None


def plan_invitation(
    team_id: str, invitation_id: str, recipient: str, now: datetime, new_id: Callable[[], str]
) -> OutboxMessage:
    """The invitation message of a new member, due now."""
    return OutboxMessage(
        id=new_id(),
        team_id=team_id,
        meeting_id=None,
        trigger=Trigger.INVITATION,
        recipient=recipient,
        due_at=now,
        created_at=now,
        invitation_id=invitation_id,
    )


@dataclass(frozen=True, slots=True)
class TeamMessaging:
    """A team's choices for the messages its meetings send: when reminders go,
    and its own templates in place of the shipped ones. ``templates`` maps a
    trigger's name to any of ``subject``, ``text``, ``html`` (Jinja2 sources,
    rendered in a sandbox); a part it does not name is the shipped one."""

    team_id: str
    reminder_offsets: tuple[timedelta, ...] = DEFAULT_REMINDER_OFFSETS
    templates: Mapping[str, Any] = field(default_factory=dict)


#: the parts of a message a template may give
TEMPLATE_PARTS = ("subject", "text", "html")


def check_templates(templates: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """A team's template overrides, validated in shape (trigger names, part
    names, text); whether each compiles is the renderer's to check."""
    out: dict[str, dict[str, str]] = {}
    for name, parts in templates.items():
        if name not in {str(t) for t in Trigger}:
            raise Invalid(f"no trigger {name!r}")
        if not isinstance(parts, Mapping):
            raise Invalid(f"templates.{name} must be an object")
        clean: dict[str, str] = {}
        for part, source in parts.items():
            if part not in TEMPLATE_PARTS:
                raise Invalid(f"templates.{name}: parts are subject, text and html")
            if not isinstance(source, str) or len(source) > 20_000:
                raise Invalid(f"templates.{name}.{part} must be text of at most 20000 characters")
            clean[part] = source
        out[name] = clean
    return out


def reminder_times(
    meeting: Meeting, offsets: Sequence[timedelta], now: datetime
) -> list[tuple[timedelta, datetime]]:
    """(offset, due) of each reminder still ahead of ``now`` for a dated,
    uncancelled meeting; a reminder whose time has passed is not sent (the
    confirmation just sent says the same)."""
    if meeting.start is None or meeting.cancelled:
        return []
    due = [(offset, meeting.start - offset) for offset in sorted(set(offsets), reverse=True)]
    return [(offset, at) for offset, at in due if at > now]


def _message(
    meeting: Meeting,
    trigger: Trigger,
    due: datetime,
    now: datetime,
    new_id: Callable[[], str],
    offset: timedelta | None = None,
) -> OutboxMessage:
    return OutboxMessage(
        id=new_id(),
        team_id=meeting.team_id,
        meeting_id=meeting.id,
        trigger=trigger,
        recipient=meeting.guest.email,
        due_at=due,
        created_at=now,
        offset=offset,
    )


def _reminders(
    meeting: Meeting, offsets: Sequence[timedelta], now: datetime, new_id: Callable[[], str]
) -> list[OutboxMessage]:
    return [
        _message(meeting, Trigger.REMINDER, at, now, new_id, offset)
        for offset, at in reminder_times(meeting, offsets, now)
    ]


def plan_booking(
    meetings: Sequence[Meeting],
    offsets: Sequence[timedelta],
    now: datetime,
    new_id: Callable[[], str],
) -> list[OutboxMessage]:
    """The messages a booking schedules: one confirmation now (a series' own
    trigger, on its first session, when several sessions were booked), and the
    reminders of every session. A meeting still in planning sends the
    proposed slots now; its confirmation goes when a slot is chosen."""
    dated = sorted((m for m in meetings if m.start is not None), key=lambda m: m.start or now)
    if not dated:
        return [
            _message(m, Trigger.PROPOSED_SLOTS, now, now, new_id)
            for m in meetings
            if m.proposed_slots and not m.cancelled
        ]
    first = dated[0]
    trigger = Trigger.SERIES_CONFIRMATION if len(dated) > 1 else Trigger.CONFIRMATION
    out = [_message(first, trigger, now, now, new_id)]
    for meeting in dated:
        out.extend(_reminders(meeting, offsets, now, new_id))
    return out


def plan_change(
    meeting: Meeting,
    trigger: Trigger,
    offsets: Sequence[timedelta],
    now: datetime,
    new_id: Callable[[], str],
) -> list[OutboxMessage]:
    """The messages a change schedules, after the meeting's pending ones were
    cancelled: the change's own message now (``trigger``: confirmation of a
    chosen slot, reschedule or cancellation) and, unless cancelled, the
    reminders of its new time."""
    out = [_message(meeting, trigger, now, now, new_id)]
    if trigger is not Trigger.CANCELLATION:
        out.extend(_reminders(meeting, offsets, now, new_id))
    return out


def review_request_id(meeting_id: str) -> str:
    """The id of a meeting's review request: the same on every node, so that
    of two nodes that see the meeting completed at the same instant the store
    takes one request and refuses the other's as a reused id (Conflict)."""
    return f"{meeting_id}.review-request"


def plan_review_request(meeting: Meeting, due: datetime, now: datetime) -> OutboxMessage:
    """The request to review a completed meeting, sent at ``due``
    (rooms.patient_links.review_request_due), under its one id
    (:func:`review_request_id`)."""
    return _message(
        meeting, Trigger.REVIEW_REQUEST, due, now, lambda: review_request_id(meeting.id)
    )


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones (>= 1)."""
    delay = FIRST_BACKOFF * (1 << min(max(0, attempts - 1), 20))
    return min(delay, LONGEST_BACKOFF)


def after_failure(
    message: OutboxMessage, error: str, now: datetime, *, max_attempts: int = MAX_ATTEMPTS
) -> OutboxMessage:
    """The message after its attempt number ``message.attempts`` failed with
    ``error``: scheduled again after :func:`backoff`, or ``failed`` once
    ``max_attempts`` were made. The claim is released either way."""
    released = replace(message, last_error=error, claimed_by=None, claimed_until=None)
    if message.attempts >= max_attempts:
        return replace(released, state=MessageState.FAILED)
    return replace(released, due_at=now + backoff(message.attempts))


def after_success(message: OutboxMessage, now: datetime) -> OutboxMessage:
    """The message once its server accepted it."""
    return replace(
        message, state=MessageState.SENT, sent_at=now, claimed_by=None, claimed_until=None
    )


def check_offsets(offsets: Sequence[timedelta]) -> tuple[timedelta, ...]:
    """A team's reminder offsets, validated: at most MAX_REMINDERS, each
    positive and at most LONGEST_REMINDER_OFFSET; sorted longest first, once each.
    Raises :class:`rooms.errors.Invalid`."""
    unique = sorted(set(offsets), reverse=True)
    if len(unique) > MAX_REMINDERS:
        raise Invalid(f"at most {MAX_REMINDERS} reminders")
    for offset in unique:
        if offset <= timedelta(0) or offset > LONGEST_REMINDER_OFFSET:
            raise Invalid("a reminder goes more than 0 and at most 14 days before the start")
    return tuple(unique)
