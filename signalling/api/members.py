"""Team administration: inviting members, their admin flag and profile,
disabling and enabling them, and their own room's address.

Who may (rooms.team_admin): a team administrator, or the organisation's
manager viewing as the team; never an API key. Listing members stays open to
every member (signalling.api.team). A member's own room's slug may also be
changed by that member.

Disabling a member writes their account first: from that moment every
credential of theirs is refused on every node (signalling.staff_auth reads the
account on each check) and this node closes their open websockets; the other
nodes close theirs when the next frame or heartbeat of such a connection is
checked against the store (docs/operations.md). Then their meetings still to
come are reassigned or cancelled one by one (each as its own change, with the
messages the guest gets for it), and their room is archived.
"""

from __future__ import annotations

from dataclasses import replace

import structlog
from aiohttp import web

from rooms.accounts import StaffAccount, StaffRole
from rooms.errors import Conflict, Forbidden, Invalid
from rooms.invitations import issue_invitation
from rooms.outbox import Trigger
from rooms.presence import MeetingChange
from rooms.room import Room, RoomKind
from rooms.team_admin import (
    Handover,
    MemberInvite,
    MemberState,
    NewMember,
    check_administrator,
    disable_member,
    edit_profile,
    enable_member,
    new_member,
    plan_departure,
    rename_slug,
    set_admin,
    state_of,
)
from signalling.api.body import boolean, optional_text, read_json, text
from signalling.api.meetings import issue
from signalling.api.render import member_json, room_json
from signalling.api.scope import Actor, audit_actor, member_in_team, new_id, now_of, team_actor
from signalling.keys import OUTBOX, PRESENCE, ROOM_CHANGES, SEALER, STAFF_SOCKETS, STORE
from signalling.store.base import Store

log = structlog.get_logger("vestibule.api.members")

#: as for a new client account: each round adds the colliding slugs to the taken set
_SLUG_ROUNDS = 5


def setup(app: web.Application) -> None:
    app.router.add_post("/api/members", invite_member)
    app.router.add_patch("/api/members/{id}", edit_member)
    app.router.add_post("/api/members/{id}/disable", disable)
    app.router.add_post("/api/members/{id}/enable", enable)
    app.router.add_post("/api/members/{id}/invitation", invite_again)
    app.router.add_put("/api/members/{id}/room", rename_room)


async def admin_actor(request: web.Request) -> Actor:
    """The caller, if it may administer the team it acts in (else Forbidden)."""
    actor = await team_actor(request)
    check_administrator(actor.account, via_api_key=actor.via_api_key)
    return actor


async def _members(store: Store, team_id: str) -> list[StaffAccount]:
    return [a for a in await store.list_staff(team_id) if a.role is StaffRole.MEMBER]


async def _own_room(store: Store, team_id: str, member_id: str) -> Room | None:
    return next(
        (
            r
            for r in await store.list_rooms(team_id)
            if r.kind is RoomKind.USER and r.owner_id == member_id
        ),
        None,
    )


async def invite_member(request: web.Request) -> web.Response:
    """POST /api/members {name, email, title?, speciality?, contact?, phone?, admin?}:
    the account (without a password), its room, and the invitation mail."""
    actor = await admin_actor(request)
    body = await read_json(request)
    invite = MemberInvite(
        name=text(body, "name", required=True),
        email=text(body, "email", required=True),
        title=text(body, "title"),
        speciality=text(body, "speciality"),
        contact=text(body, "contact"),
        phone=text(body, "phone"),
        admin=boolean(body, "admin"),
    )
    store = request.app[STORE]
    existing = await store.find_staff_by_email(invite.email) if invite.email.strip() else None
    taken_emails = [existing.email] if existing is not None else []
    now = now_of(request)
    taken_slugs: set[str] = set()
    built: NewMember | None = None
    for _ in range(_SLUG_ROUNDS):
        candidate = new_member(
            invite,
            actor.team,
            existing_emails=taken_emails,
            now=now,
            new_id=new_id,
            taken_slugs=taken_slugs,
        )
        if await store.find_room_by_slug(candidate.room.slug) is None:
            built = candidate
            break
        taken_slugs.add(candidate.room.slug)
    if built is None:
        raise Conflict("could not find a free room address; try another name")
    await store.add_staff(built.account)
    await store.add_room(built.room)
    await _send_invitation(request, built.account)
    await audit_actor(request, actor, "member.invite", built.account.id)
    return web.json_response({"member": member_json(built.account, built.room)}, status=201)


async def _send_invitation(request: web.Request, account: StaffAccount) -> None:
    """Store a new invitation of ``account`` (its token sealed) and queue its mail."""
    assert account.team_id is not None
    now = now_of(request)
    issued = issue_invitation(account.team_id, account.id, now, new_id)
    invitation = issued.invitation
    sealed = request.app[SEALER].seal(issued.token, f"{invitation.id}:invitation")
    invitation = replace(invitation, sealed=sealed)
    await request.app[STORE].add_invitation(invitation)
    await request.app[OUTBOX].invited(invitation, account.email, now)


async def invite_again(request: web.Request) -> web.Response:
    """POST /api/members/{id}/invitation: a new invitation mail with a new link,
    for a member who has not chosen a password yet (the first link was lost
    or expired). Whichever of their links is accepted first, the others then
    open nothing."""
    actor = await admin_actor(request)
    target = await member_in_team(request, actor, request.match_info["id"])
    if state_of(target) is not MemberState.INVITED:
        raise Conflict("this member has no invitation pending")
    await _send_invitation(request, target)
    await audit_actor(request, actor, "member.invite_again", target.id)
    room = await _own_room(request.app[STORE], actor.team.id, target.id)
    return web.json_response({"member": member_json(target, room)}, status=201)


async def edit_member(request: web.Request) -> web.Response:
    """PATCH /api/members/{id} {admin?, name?, title?, speciality?, contact?, phone?}"""
    actor = await admin_actor(request)
    target = await member_in_team(request, actor, request.match_info["id"])
    body = await read_json(request)
    store = request.app[STORE]
    changed = edit_profile(
        target,
        name=optional_text(body, "name"),
        title=optional_text(body, "title"),
        speciality=optional_text(body, "speciality"),
        contact=optional_text(body, "contact"),
        phone=optional_text(body, "phone"),
    )
    if "admin" in body:
        changed = set_admin(await _members(store, actor.team.id), changed, boolean(body, "admin"))
    if changed != target:
        await store.update_staff(changed)
        action = "member.edit"
        if changed.admin != target.admin:
            action = "member.admin_grant" if changed.admin else "member.admin_revoke"
        await audit_actor(request, actor, action, target.id)
    room = await _own_room(store, actor.team.id, target.id)
    return web.json_response({"member": member_json(changed, room)})


async def disable(request: web.Request) -> web.Response:
    """POST /api/members/{id}/disable {meetings: "reassign"|"cancel", to?}: the
    member can no longer log in, their sessions end, their meetings still to
    come go to ``to`` or are cancelled, and their room is archived."""
    actor = await admin_actor(request)
    target = await member_in_team(request, actor, request.match_info["id"])
    body = await read_json(request)
    try:
        handover = Handover(text(body, "meetings", required=True))
    except ValueError:
        raise Invalid("meetings must be reassign or cancel") from None
    successor = None
    if handover is Handover.REASSIGN:
        successor = await member_in_team(request, actor, text(body, "to", required=True))
    app = request.app
    store = app[STORE]
    now = now_of(request)
    disabled = disable_member(await _members(store, actor.team.id), target)
    departure = plan_departure(
        target,
        actor.team,
        await store.list_meetings(actor.team.id, host_ids=[target.id]),
        await store.list_rooms(actor.team.id),
        now,
        handover=handover,
        by=actor.account.id,
        successor=successor,
    )
    await store.update_staff(disabled)
    await app[STAFF_SOCKETS].end_staff(target.id)
    presence, outbox = app[PRESENCE], app[OUTBOX]
    for before, moved in departure.reassigned:
        message = None
        if moved.room_id != before.room_id and moved.start is not None:
            issued = issue(request, moved, now)
            await store.replace_credential(moved.id, issued.credential, now)
            # the guest key is bound to its room: the guest gets the new link
            message = Trigger.RESCHEDULE
        await store.update_meeting(moved)
        await presence.meeting_changed(moved, MeetingChange.REASSIGNED, now)
        if message is not None:
            await outbox.changed(moved, message, now)
    for cancelled in departure.cancelled:
        await store.replace_credential(cancelled.id, None, now)
        await store.update_meeting(cancelled)
        await presence.meeting_changed(cancelled, MeetingChange.CANCELLED, now)
        await outbox.changed(cancelled, Trigger.CANCELLATION, now)
    if departure.archived_room is not None:
        await store.update_room(departure.archived_room)
        await app[ROOM_CHANGES].changed(departure.archived_room)
    await audit_actor(request, actor, "member.disable", target.id)
    log.info(
        "member disabled",
        team=actor.team.id,
        staff=target.id,
        reassigned=len(departure.reassigned),
        cancelled=len(departure.cancelled),
    )
    room = departure.archived_room or await _own_room(store, actor.team.id, target.id)
    return web.json_response(
        {
            "member": member_json(disabled, room),
            "reassigned": [after.id for _, after in departure.reassigned],
            "cancelled": [m.id for m in departure.cancelled],
        }
    )


async def enable(request: web.Request) -> web.Response:
    """POST /api/members/{id}/enable: the member may log in again and their
    room is back (meetings reassigned or cancelled stay so)."""
    actor = await admin_actor(request)
    target = await member_in_team(request, actor, request.match_info["id"])
    store = request.app[STORE]
    enabled = enable_member(target)
    await store.update_staff(enabled)
    room = await _own_room(store, actor.team.id, target.id)
    if room is not None and room.archived:
        room = replace(room, archived=False)
        await store.update_room(room)
    await audit_actor(request, actor, "member.enable", target.id)
    return web.json_response({"member": member_json(enabled, room)})


async def rename_room(request: web.Request) -> web.Response:
    """PUT /api/members/{id}/room {slug}: the address of the member's own room
    (/r/<slug>), by an administrator or by that member."""
    actor = await team_actor(request)
    target = await member_in_team(request, actor, request.match_info["id"])
    person = actor.person
    if person is None or person.id != target.id:
        check_administrator(actor.account, via_api_key=actor.via_api_key)
    body = await read_json(request)
    store = request.app[STORE]
    room = await _own_room(store, actor.team.id, target.id)
    if room is None:
        raise Forbidden("this member has no room of their own")
    slug = text(body, "slug", required=True)
    renamed = rename_slug(room, slug, await store.find_room_by_slug(slug.strip().lower()))
    if renamed != room:
        await store.update_room(renamed)  # the store refuses a slug taken meanwhile
        await audit_actor(request, actor, "room.rename_slug", room.id)
    return web.json_response({"room": room_json(renamed)})
