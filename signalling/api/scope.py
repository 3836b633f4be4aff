"""Who is acting, in which team, and lookups confined to that team.

Every REST handler that touches a team's data starts with :func:`team_actor`:
the authenticated staff principal and the one team its request may see (the
member's own team, the team a manager is viewing as, or the team of an API
key). Lookups by id then go through the ``*_in_team`` helpers, which answer
another team's id exactly like an unknown one (404 ``not_found``), so an id
reveals nothing about what exists elsewhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import structlog
from aiohttp import web

from rooms.accounts import AuditEntry, StaffAccount, StaffRole, Team
from rooms.errors import Forbidden, NotFound
from rooms.meeting import Meeting, MeetingType
from rooms.room import Room
from signalling.keys import CLOCK, SETTINGS, STORE
from signalling.staff_auth import StaffPrincipal, authenticate_request

log = structlog.get_logger("vestibule.api")


def new_id() -> str:
    """A fresh record id: 64 random bits, hex (ids are not secrets, only unique)."""
    return secrets.token_hex(8)


def now_of(request: web.Request) -> datetime:
    return request.app[CLOCK].now()


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated principal acting inside ``team``."""

    principal: StaffPrincipal
    team: Team

    @property
    def account(self) -> StaffAccount:
        """The account actions are recorded as (a manager, not the team, when viewing as)."""
        return self.principal.account

    @property
    def person(self) -> StaffAccount | None:
        """The team member acting, or None for an API key or a manager viewing as:
        neither is a member, so neither hosts, owns rooms or writes summaries."""
        if self.principal.via == "api_key" or self.account.role is not StaffRole.MEMBER:
            return None
        return self.account

    @property
    def via_api_key(self) -> bool:
        return self.principal.via == "api_key"


async def staff(request: web.Request) -> StaffPrincipal:
    """The staff principal behind the request; 401 if none, or an invalid credential."""
    app = request.app
    return await authenticate_request(app[STORE], app[SETTINGS], request, now_of(request))


async def team_actor(request: web.Request) -> Actor:
    """The principal and the team it acts in; Forbidden for a manager who is not
    viewing as a client team (managers act inside a team only through view-as)."""
    principal = await staff(request)
    if principal.team_id is None:
        raise Forbidden("an organisation manager acts in a client team only through view as")
    try:
        team = await request.app[STORE].get_team(principal.team_id)
    except NotFound:
        raise Forbidden("this team no longer exists") from None
    account = principal.account
    if account.role is StaffRole.MANAGER and team.org_id != account.org_id:
        # The view-as claim is signed by us, so this means the team changed hands.
        raise Forbidden("this team is not a client of your organisation")
    return Actor(principal, team)


async def manager(request: web.Request) -> StaffPrincipal:
    """A logged-in organisation manager (an API key is never one)."""
    principal = await staff(request)
    if principal.via == "api_key" or principal.account.role is not StaffRole.MANAGER:
        raise Forbidden("only an organisation's managing account may do that")
    return principal


async def audit(
    request: web.Request,
    account: StaffAccount,
    org_id: str,
    team_id: str | None,
    action: str,
    target: str = "",
) -> None:
    """Record what ``account`` did (a manager viewing as is recorded as the
    manager, with the team acted in)."""
    await audit_as(request, account.id, org_id, team_id, action, target)


async def audit_as(
    request: web.Request,
    actor_id: str,
    org_id: str,
    team_id: str | None,
    action: str,
    target: str = "",
) -> None:
    """Record an action of ``actor_id``: a staff account's id, or an actor
    without an account (rooms.booking.BOOKING_PAGE_ACTOR)."""
    entry = AuditEntry(
        id=new_id(),
        at=now_of(request),
        actor_id=actor_id,
        org_id=org_id,
        team_id=team_id,
        action=action,
        target=target,
    )
    await request.app[STORE].append_audit(entry)
    log.info("audit", action=action, actor=actor_id, team=team_id, target=target)


async def audit_actor(request: web.Request, actor: Actor, action: str, target: str = "") -> None:
    await audit(request, actor.account, actor.team.org_id, actor.team.id, action, target)


# -- lookups confined to the actor's team ----------------------------------------


class _TeamRecord(Protocol):
    @property
    def team_id(self) -> str | None: ...


_R = TypeVar("_R", bound=_TeamRecord)


async def _in_team(
    get: Callable[[str], Awaitable[_R]], record_id: str, actor: Actor, missing: str
) -> _R:
    """The record ``get(record_id)`` if it is ``actor``'s team's; another
    team's is NotFound(``missing``) exactly like an unknown id."""
    try:
        record = await get(record_id)
    except NotFound:
        raise NotFound(missing) from None
    if record.team_id != actor.team.id:
        raise NotFound(missing)
    return record


async def meeting_in_team(request: web.Request, actor: Actor, meeting_id: str) -> Meeting:
    return await _in_team(request.app[STORE].get_meeting, meeting_id, actor, "no such meeting")


async def member_in_team(request: web.Request, actor: Actor, staff_id: str) -> StaffAccount:
    store = request.app[STORE]
    return await _in_team(store.get_staff, staff_id, actor, "no such member in this team")


async def room_by_id_in_team(request: web.Request, actor: Actor, room_id: str) -> Room:
    return await _in_team(request.app[STORE].get_room, room_id, actor, "no such room")


async def room_in_team(request: web.Request, actor: Actor, ref: str) -> Room:
    """A room of the team by slug or by id."""
    store = request.app[STORE]
    room = await store.find_room_by_slug(ref.strip().lower())
    if room is None:
        try:
            room = await store.get_room(ref)
        except NotFound:
            room = None
    if room is None or room.team_id != actor.team.id:
        raise NotFound("no such room in this team")
    return room


async def type_in_team(request: web.Request, actor: Actor, type_id: str) -> MeetingType:
    store = request.app[STORE]
    return await _in_team(
        store.get_meeting_type, type_id, actor, "no such meeting type in this team"
    )
