"""Changes to one meeting: confirm a slot, cancel, reschedule, reassign,
re-issue its credential, summary.

Who may do what (docs/domain.md; the first rule is our choice):

- confirm, cancel, reschedule, reassign: any member of the meeting's team, an
  API key of the team, or a manager viewing as the team. Clinics share the
  work of booking (a receptionist moves a colleague's appointment), and the
  audit trail records who did it.
- summary: only the meeting's host (rooms.schedule.write_summary); an API
  key or a manager is nobody's host.

Order of storage writes where a credential changes: the old credential is
revoked (and the new one stored) first, in one atomic store call, and the
meeting record second. A crash between the two leaves a meeting whose old
link no longer opens it, never a moved meeting still opened by the old link.
The messages a change sends (signalling.outbox) are scheduled last, once the
change is stored: confirming a slot sends the confirmation, rescheduling (or
a reassignment that moves the meeting to another room, and so re-issues its
link) the change notice with the new link, cancelling the cancellation; each
first cancels the
meeting's pending messages and schedules the reminders of the new time.
"""

from __future__ import annotations

from aiohttp import web

from rooms.errors import Invalid, NotHost
from rooms.meeting import Meeting
from rooms.outbox import Trigger
from rooms.presence import MeetingChange
from rooms.room import RoomKind
from rooms.schedule import cancel, choose_slot, reassign, reschedule, write_summary
from rooms.tokens import IssuedCredential
from signalling.api.body import read_json, required_instant, seconds, text
from signalling.api.meetings import issue
from signalling.api.render import MeetingRenderer
from signalling.api.scope import (
    Actor,
    audit_actor,
    meeting_in_team,
    member_in_team,
    now_of,
    team_actor,
)
from signalling.keys import OUTBOX, PRESENCE, SETTINGS, STORE


def setup(app: web.Application) -> None:
    app.router.add_post("/api/meetings/{id}/confirm", confirm)
    app.router.add_post("/api/meetings/{id}/cancel", cancel_meeting)
    app.router.add_post("/api/meetings/{id}/reschedule", reschedule_meeting)
    app.router.add_post("/api/meetings/{id}/reassign", reassign_meeting)
    app.router.add_post("/api/meetings/{id}/summary", summary)
    app.router.add_post("/api/meetings/{id}/reissue", reissue)


async def _target(request: web.Request) -> tuple[Actor, Meeting]:
    actor = await team_actor(request)
    return actor, await meeting_in_team(request, actor, request.match_info["id"])


async def _done(
    request: web.Request,
    actor: Actor,
    meeting: Meeting,
    change: MeetingChange,
    action: str,
    issued: IssuedCredential | None = None,
    message: Trigger | None = None,
) -> web.Response:
    """Tell the presence log, audit, schedule ``message`` (cancelling the
    meeting's pending ones), and answer with the meeting and its credential."""
    now = now_of(request)
    await request.app[PRESENCE].meeting_changed(meeting, change, now)
    await audit_actor(request, actor, action, meeting.id)
    if message is not None:
        await request.app[OUTBOX].changed(meeting, message, now)
    renderer = await MeetingRenderer.for_team(request.app, actor.team.id, now)
    await renderer.prime([meeting])
    return web.json_response({"meeting": renderer.view(meeting, issued)})


async def confirm(request: web.Request) -> web.Response:
    """POST /api/meetings/{id}/confirm {slot}: planning -> scheduled; issues the link."""
    actor, meeting = await _target(request)
    body = await read_json(request)
    slot = required_instant(body, "slot")
    now = now_of(request)
    chosen, change = choose_slot(meeting, slot, now)
    issued = issue(request, chosen, now)
    store = request.app[STORE]
    await store.replace_credential(chosen.id, issued.credential, now)
    await store.update_meeting(chosen)
    return await _done(
        request, actor, chosen, change, "meeting.confirm", issued, Trigger.CONFIRMATION
    )


async def cancel_meeting(request: web.Request) -> web.Response:
    """POST /api/meetings/{id}/cancel: cancelled, and its link revoked."""
    actor, meeting = await _target(request)
    now = now_of(request)
    cancelled, change = cancel(meeting, actor.account.id, now)
    store = request.app[STORE]
    await store.replace_credential(meeting.id, None, now)
    await store.update_meeting(cancelled)
    return await _done(
        request, actor, cancelled, change, "meeting.cancel", message=Trigger.CANCELLATION
    )


async def reschedule_meeting(request: web.Request) -> web.Response:
    """POST /api/meetings/{id}/reschedule {start, duration?}: the old link is
    revoked and a new one issued (returned once, here)."""
    actor, meeting = await _target(request)
    body = await read_json(request)
    start = required_instant(body, "start")
    now = now_of(request)
    moved, change = reschedule(
        meeting,
        start,
        now,
        duration=seconds(body, "duration"),
        horizon=request.app[SETTINGS].booking_horizon,
    )
    issued = issue(request, moved, now)
    store = request.app[STORE]
    await store.replace_credential(moved.id, issued.credential, now)
    await store.update_meeting(moved)
    return await _done(
        request, actor, moved, change, "meeting.reschedule", issued, Trigger.RESCHEDULE
    )


async def reassign_meeting(request: web.Request) -> web.Response:
    """POST /api/meetings/{id}/reassign {host}: another member of the team hosts.

    A meeting in the old host's own room moves to the new host's room; the
    guest key is bound to its room, so the credential is then re-issued and
    the guest is sent the change notice (the ``reschedule`` trigger) with the
    new link."""
    actor, meeting = await _target(request)
    body = await read_json(request)
    new_host = await member_in_team(request, actor, text(body, "host", required=True))
    store = request.app[STORE]
    rooms = await store.list_rooms(actor.team.id)
    room = next((r for r in rooms if r.id == meeting.room_id), None)
    if room is None:
        raise Invalid("the meeting's room no longer exists")
    own = next((r for r in rooms if r.kind is RoomKind.USER and r.owner_id == new_host.id), None)
    moved, change = reassign(meeting, new_host, room, actor.team, new_host_room=own)
    issued = None
    now = now_of(request)
    if moved.room_id != meeting.room_id and moved.start is not None:
        issued = issue(request, moved, now)
        await store.replace_credential(moved.id, issued.credential, now)
    await store.update_meeting(moved)
    # a new link is news for the guest: the change notice carries it
    message = None if issued is None else Trigger.RESCHEDULE
    return await _done(request, actor, moved, change, "meeting.reassign", issued, message)


async def reissue(request: web.Request) -> web.Response:
    """POST /api/meetings/{id}/reissue: a new link and guest key; the old ones
    are revoked at once (a credential that may have leaked, or a guest whose
    device was lost). Pending reminders carry the new link, since messages are
    rendered when they are sent; nothing new is sent by itself."""
    actor, meeting = await _target(request)
    now = now_of(request)
    issued = issue(request, meeting, now)  # Conflict if cancelled, Invalid in planning
    await request.app[STORE].replace_credential(meeting.id, issued.credential, now)
    # `updated` on the dashboards: their view of the meeting carries the new key
    return await _done(request, actor, meeting, MeetingChange.UPDATED, "meeting.reissue", issued)


async def summary(request: web.Request) -> web.Response:
    """POST /api/meetings/{id}/summary {text}: the host's summary for the guest."""
    actor, meeting = await _target(request)
    body = await read_json(request)
    person = actor.person
    if person is None:
        raise NotHost("only the meeting's host writes its summary")
    written, change = write_summary(meeting, person.id, text(body, "text", required=True))
    await request.app[STORE].update_meeting(written)
    return await _done(request, actor, written, change, "meeting.summary")
