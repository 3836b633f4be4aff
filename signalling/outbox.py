"""The outbox: messages to guests scheduled when meetings change, sent when due.

Scheduling (:meth:`Outbox.booked`, :meth:`Outbox.changed`, and
:meth:`Outbox.on_status` for the review request after a completed meeting,
rooms.patient_links.review_request_due) applies the rules
of rooms.outbox and writes the messages to the store; the REST handlers call
it after the meeting itself is stored. A change (a slot chosen, a reschedule,
a cancellation) first cancels the meeting's pending messages, then schedules
its own message and, unless cancelled, the reminders of the new time.

Sending (:meth:`Outbox.run`, a background task next to the status scheduler)
claims due messages in the store (one atomic claim with a lease: of every
node's sender exactly one gets a message), renders each from its trigger's
template at that moment (so it carries the meeting's link as it is now),
hands it to the SMTP server, and records the outcome. A failed attempt is
retried after a backoff (rooms.outbox.backoff) up to ``mail_attempts``
attempts, then the message is ``failed``: it stays in the history, never
lost. A node that dies mid-send leaves a claim that expires after
:data:`LEASE`; another sender (or the same node after its restart) then
takes the message again. The one window in which a guest can get a message
twice is a death between the SMTP server's acceptance and the store recording
it; both copies carry the same Message-ID.

Without an SMTP URL nothing is sent: messages stay ``scheduled``, visible in
each meeting's history (``GET /api/meetings/{id}/messages``).

The sender sleeps until the earliest due message the store knows of, and
wakes early when this node schedules one; with several nodes, a message
another node scheduled is found at the latest :data:`IDLE_CHECK` later.
Tests drive time with a FixedClock and ``await outbox.run_due(now)``.

Log lines name message, meeting and team ids, the trigger and the error's
class and SMTP code; never an address, a name, a link or a message's text.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import structlog

from rooms.errors import Conflict, NotFound
from rooms.invitations import Invitation
from rooms.meeting import Meeting
from rooms.outbox import (
    DEFAULT_REMINDER_OFFSETS,
    WITH_CALENDAR,
    OutboxMessage,
    TeamMessaging,
    Trigger,
    after_failure,
    after_success,
    plan_booking,
    plan_change,
    plan_invitation,
    plan_review_request,
)
from rooms.patient_links import Purpose, review_request_due
from rooms.status import MeetingStatus, StatusDecision
from signalling.clock import Clock
from signalling.mail import (
    CONTEXT_NAMES,
    Templates,
    Transport,
    build_email,
    calendar,
    describe_failure,
    sender_address,
    span,
    when,
)
from signalling.patient_links import patient_links_for
from signalling.sealing import Sealer
from signalling.settings import Settings
from signalling.store.base import Store

log = structlog.get_logger("vestibule.outbox")

#: how long a claim holds a message: far longer than one SMTP conversation
#: (``mail_timeout``), so a live sender never loses a message it is sending
LEASE = timedelta(minutes=5)
#: messages claimed at a time
BATCH = 20
#: the longest the sender sleeps without looking at the store
IDLE_CHECK = 60.0
#: meetings whose review request this node remembers having scheduled
REVIEWS_REMEMBERED = 10_000


class Outbox:
    """Schedules messages to guests and (with a transport) delivers them."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        sealer: Sealer,
        new_id: Callable[[], str],
        *,
        transport: Transport | None,
        templates: Templates | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.sealer = sealer
        self._new_id = new_id
        self.transport = transport
        self.templates = templates if templates is not None else Templates()
        self.node = settings.node_id
        self._wake = asyncio.Event()
        #: attempts this node has finished and recorded (tests wait on it)
        self.settled = 0
        self._settled = asyncio.Condition()
        #: meetings whose review request this node has scheduled (or found scheduled)
        self._reviews_asked: set[str] = set()

    def _id(self) -> str:
        return self._new_id()

    # -- the review request ------------------------------------------------------------

    def on_status(
        self,
        meeting: Meeting,
        decision: StatusDecision,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        """A status listener (PresenceLog.on_status): the first time this node
        sees a meeting completed, schedule its review request (``spawn`` runs
        the store work as a task the app owns)."""
        if decision.status is not MeetingStatus.COMPLETED or meeting.id in self._reviews_asked:
            return
        if len(self._reviews_asked) >= REVIEWS_REMEMBERED:
            self._reviews_asked.clear()  # the store's history still prevents a second request
        self._reviews_asked.add(meeting.id)
        spawn(self._ask_review(meeting, self.clock.now()))

    async def _ask_review(self, meeting: Meeting, now: datetime) -> None:
        try:
            await self.review_requested(meeting, now)
        except Exception:  # the store is unreachable: the next completed decision asks again
            self._reviews_asked.discard(meeting.id)
            log.exception("review request not scheduled", meeting=meeting.id)

    async def review_requested(self, meeting: Meeting, now: datetime) -> OutboxMessage | None:
        """Schedule the request to review ``meeting`` (once: not if the meeting
        has one already, whatever its state). The request's id is the same on
        every node (rooms.outbox.review_request_id), so when two nodes see the
        meeting completed at the same instant the store takes the first and
        refuses the second as a reused id: exactly one is queued."""
        due = review_request_due(meeting, now)
        if due is None:
            return None
        existing = await self.store.list_messages(meeting.id)
        if any(m.trigger is Trigger.REVIEW_REQUEST for m in existing):
            return None
        message = plan_review_request(meeting, due, now)
        try:
            await self._add([message])
        except Conflict:  # another node queued it meanwhile
            return None
        log.info("review request scheduled", meeting=meeting.id, team=meeting.team_id)
        return message

    # -- scheduling --------------------------------------------------------------------

    async def messaging(self, team_id: str) -> TeamMessaging:
        found = await self.store.get_messaging(team_id)
        return found if found is not None else TeamMessaging(team_id)

    async def _offsets(self, team_id: str) -> tuple[timedelta, ...]:
        found = await self.store.get_messaging(team_id)
        return found.reminder_offsets if found is not None else DEFAULT_REMINDER_OFFSETS

    async def booked(self, meetings: Sequence[Meeting], now: datetime) -> list[OutboxMessage]:
        """Schedule what a booking sends (one meeting or a series)."""
        if not meetings:
            return []
        offsets = await self._offsets(meetings[0].team_id)
        planned = plan_booking(meetings, offsets, now, self._id)
        await self._add(planned)
        return planned

    async def changed(
        self, meeting: Meeting, trigger: Trigger, now: datetime
    ) -> list[OutboxMessage]:
        """Cancel the meeting's pending messages, then schedule ``trigger``'s
        message and (unless a cancellation) the reminders of its time."""
        await self.store.cancel_messages(meeting.id, now)
        offsets = await self._offsets(meeting.team_id)
        planned = plan_change(meeting, trigger, offsets, now, self._id)
        await self._add(planned)
        return planned

    async def invited(self, invitation: Invitation, recipient: str, now: datetime) -> OutboxMessage:
        """Schedule a new member's invitation (``invitation`` is stored, with
        its token sealed)."""
        message = plan_invitation(invitation.team_id, invitation.id, recipient, now, self._id)
        await self._add([message])
        return message

    async def _add(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        await self.store.add_messages(messages)
        self._wake.set()

    # -- rendering ---------------------------------------------------------------------

    def join_link(self, token: str) -> str:
        return f"{self.settings.base_url}/join/{token}"

    def invitation_link(self, token: str) -> str:
        return f"{self.settings.base_url}/welcome/{token}"

    async def _compose_invitation(self, message: OutboxMessage) -> EmailMessage:
        """An invitation: to the invited member, with the one-time link opened
        from its sealed copy (NotFound, the last attempt, if it no longer opens)."""
        store = self.store
        if message.invitation_id is None:
            raise NotFound("the message names no invitation")
        invitation = await store.get_invitation(message.invitation_id)
        token = self.sealer.open(invitation.sealed, f"{invitation.id}:invitation")
        if token is None:
            raise NotFound("the invitation link cannot be opened")
        member = await store.get_staff(invitation.staff_id)
        team = await store.get_team(invitation.team_id)
        rooms = await store.list_rooms(team.id)
        own = next((r for r in rooms if r.owner_id == member.id), None)
        context: dict[str, object] = {name: "" for name in CONTEXT_NAMES}
        context.update(
            guest_name=member.name,
            team_name=team.name,
            team_phone=team.phone,
            start=when(invitation.expires_at),
            start_iso=invitation.expires_at.isoformat(),
            duration_minutes=0,
            link=self.invitation_link(token),
            room_url="" if own is None else f"{self.settings.base_url}/r/{own.slug}",
            dates=[],
        )
        messaging = await self.messaging(team.id)
        rendered = self.templates.render(message.trigger, context, messaging.templates)
        return build_email(
            message_id=message.id,
            sender=sender_address(self.settings.mail_from, team.name),
            recipient=member.email,
            rendered=rendered,
            ics=None,
        )

    async def compose(self, message: OutboxMessage) -> EmailMessage:
        """The email of ``message`` as it would be sent now."""
        if message.trigger is Trigger.INVITATION:
            return await self._compose_invitation(message)
        store = self.store
        if message.meeting_id is None:
            raise NotFound("the message names no meeting")
        meeting = await store.get_meeting(message.meeting_id)
        team = await store.get_team(meeting.team_id)
        host = await store.get_staff(meeting.host_id)
        room = await store.get_room(meeting.room_id)
        mtype = None if meeting.type_id is None else await store.get_meeting_type(meeting.type_id)
        messaging = await self.messaging(meeting.team_id)
        revealed = self.sealer.reveal(await store.get_credential_for_meeting(meeting.id))
        link = None if revealed is None else self.join_link(revealed.link_token)
        key = None
        if revealed is not None:
            key = f"{revealed.guest_key[:4]}-{revealed.guest_key[4:]}"
        sessions: list[Meeting] = [meeting]
        if message.trigger is Trigger.SERIES_CONFIRMATION and meeting.series_id is not None:
            # the confirmation goes on the first session: the others start later
            every = await store.list_meetings(meeting.team_id, start_from=meeting.start)
            sessions = [
                m for m in every if m.series_id == meeting.series_id and not m.cancelled
            ] or [meeting]
        links = patient_links_for(self.settings.data_key)
        base = self.settings.base_url
        context = {
            "guest_name": meeting.guest.name,
            "team_name": team.name,
            "team_phone": team.phone,
            "host_name": host.name,
            "start": when(meeting.start),
            "start_iso": "" if meeting.start is None else meeting.start.isoformat(),
            "duration_minutes": int(meeting.duration.total_seconds() // 60),
            "link": link,
            "guest_key": key,
            "room_url": f"{self.settings.base_url}/r/{room.slug}",
            "link_opens": span(self.settings.link_before),
            "instructions": "" if mtype is None else mtype.instructions,
            "address": "" if mtype is None else mtype.address,
            "description": meeting.description,
            "meeting_type": "" if mtype is None else mtype.label,
            "dates": [when(m.start) for m in sessions if m.start is not None],
            "subject": "",
            "slots": [when(slot) for slot in meeting.proposed_slots],
            "pick_link": links.url(base, Purpose.PICK, meeting.id),
            "review_link": links.url(base, Purpose.REVIEW, meeting.id),
        }
        rendered = self.templates.render(message.trigger, context, messaging.templates)
        ics = None
        if message.trigger in WITH_CALENDAR:
            pairs = [(m, link if m.id == meeting.id else None) for m in sessions]
            ics = calendar(pairs, team_name=team.name, host_name=host.name, stamp=self.clock.now())
        return build_email(
            message_id=message.id,
            sender=sender_address(self.settings.mail_from, team.name),
            recipient=meeting.guest.email,
            rendered=rendered,
            ics=ics,
        )

    # -- sending -----------------------------------------------------------------------

    async def run_due(self, now: datetime) -> int:
        """Claim and send every message due at ``now``; returns how many were
        attempted. Does nothing without a transport."""
        if self.transport is None:
            return 0
        done = 0
        while True:
            claimed = await self.store.claim_messages(now, self.node, now + LEASE, BATCH)
            for message in claimed:
                await self._deliver(message)
            done += len(claimed)
            if len(claimed) < BATCH:
                return done

    async def _deliver(self, message: OutboxMessage) -> None:
        assert self.transport is not None
        ids = {
            "message": message.id,
            "meeting": message.meeting_id or "",
            "invitation": message.invitation_id or "",
            "team": message.team_id,
        }
        try:
            email = await self.compose(message)
            await self.transport.send(email)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure is an attempt that failed
            if isinstance(exc, NotFound):
                message = _last_attempt(message, self.settings.mail_attempts)
            settled = after_failure(
                message,
                describe_failure(exc),
                self.clock.now(),
                max_attempts=self.settings.mail_attempts,
            )
            log.warning(
                "message not sent",
                trigger=str(message.trigger),
                attempt=message.attempts,
                error=settled.last_error,
                outcome=str(settled.state),
                **ids,
            )
        else:
            settled = after_success(message, self.clock.now())
            log.info("message sent", trigger=str(message.trigger), attempt=message.attempts, **ids)
        if not await self.store.settle_message(settled, self.node):
            log.warning("message claim lost before its outcome was recorded", **ids)
        async with self._settled:
            self.settled += 1
            self._settled.notify_all()

    async def until_settled(self, count: int) -> None:
        """Return once this node has recorded the outcome of ``count`` attempts."""
        async with self._settled:
            await self._settled.wait_for(lambda: self.settled >= count)

    def poke(self) -> None:
        """Wake the sender now (a test moved the clock, or a message was added)."""
        self._wake.set()

    async def run(self) -> None:
        """Send what is due, then sleep until the next due message (owned by the app)."""
        while True:
            self._wake.clear()
            pause = IDLE_CHECK
            try:
                sent = await self.run_due(self.clock.now())
                nxt = await self.store.next_message_due()
                if nxt is not None:
                    pause = min(IDLE_CHECK, max(0.0, (nxt - self.clock.now()).total_seconds()))
                    if pause == 0.0 and sent == 0:
                        pause = 1.0  # due but not ours to claim yet: look again shortly
            except Exception:  # the store is unreachable: try again shortly
                log.exception("outbox round failed")
                pause = 5.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)


def _last_attempt(message: OutboxMessage, attempts: int) -> OutboxMessage:
    """A message whose meeting (or team, host, room) no longer exists: retrying
    cannot help, so this attempt is its last."""
    return replace(message, attempts=max(message.attempts, attempts))
