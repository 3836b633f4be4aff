"""Plan entitlements: which rooms a team may have, and creating a client account.

| plan         | shared rooms                                     | waiting area |
|--------------|--------------------------------------------------|--------------|
| starter      | Reception                                        | no           |
| professional | Reception, Team Meeting                          | no           |
| clinic       | Reception, Team Meeting, any number of custom    | one          |

Every member, whatever the plan, has one user room of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType

from rooms.accounts import Plan, StaffAccount, StaffRole, Team
from rooms.errors import Conflict, Invalid, PlanLimit
from rooms.passwords import check_password_rules, hash_password
from rooms.room import WALK_IN_KINDS, Room, RoomKind
from rooms.validate import (
    check_aware,
    check_name,
    check_phone,
    check_text,
    normalise_email,
    slugify,
    unique_slug,
)

#: How many shared rooms of each kind a plan allows; None means any number. A
#: kind absent from a plan's mapping is not included in that plan at all.
SHARED_ROOM_LIMITS: Mapping[Plan, Mapping[RoomKind, int | None]] = MappingProxyType(
    {
        Plan.STARTER: MappingProxyType({RoomKind.RECEPTION: 1}),
        Plan.PROFESSIONAL: MappingProxyType({RoomKind.RECEPTION: 1, RoomKind.TEAM_MEETING: 1}),
        Plan.CLINIC: MappingProxyType(
            {
                RoomKind.RECEPTION: 1,
                RoomKind.TEAM_MEETING: 1,
                RoomKind.CUSTOM: None,
                # one team-wide queue: two would split the guests any free
                # clinician is meant to pick from
                RoomKind.WAITING_AREA: 1,
            }
        ),
    }
)

#: The shared rooms a new team starts with, in order, with their display names.
#: Custom rooms are created later by members ("+ Create Room").
_DEFAULT_ROOMS: tuple[tuple[RoomKind, str], ...] = (
    (RoomKind.RECEPTION, "Reception"),
    (RoomKind.TEAM_MEETING, "Team Meeting"),
    (RoomKind.WAITING_AREA, "Waiting Area"),
)

#: How a room kind is named in a PlanLimit message ("the starter plan does not include …").
_KIND_WORDS: Mapping[RoomKind, tuple[str, str]] = MappingProxyType(
    {
        RoomKind.RECEPTION: ("a reception", "more than one reception"),
        RoomKind.TEAM_MEETING: ("a team meeting room", "more than one team meeting room"),
        RoomKind.CUSTOM: ("custom rooms", "more custom rooms"),
        RoomKind.WAITING_AREA: ("a waiting area", "more than one waiting area"),
    }
)

#: Free-text profile fields of a staff account.
TITLE_MAX = 60
SPECIALITY_MAX = 100
CONTACT_MAX = 500
REFERENCE_MAX = 60


def allowed_shared_kinds(plan: Plan) -> frozenset[RoomKind]:
    """The shared room kinds ``plan`` includes."""
    return frozenset(SHARED_ROOM_LIMITS[plan])


def default_shared_rooms(
    team: Team, new_id: Callable[[], str], *, taken_slugs: Collection[str] = ()
) -> list[Room]:
    """The shared rooms a new team of ``team.plan`` starts with; slugs are
    "<team name>-reception" and so on, made unique against ``taken_slugs``."""
    limits = SHARED_ROOM_LIMITS[team.plan]
    taken = set(taken_slugs)
    team_slug = slugify(team.name, fallback="team")
    rooms = []
    for kind, name in _DEFAULT_ROOMS:
        if kind not in limits:
            continue
        slug = unique_slug(slugify(f"{team_slug} {name}"), taken)
        taken.add(slug)
        rooms.append(
            Room(
                id=new_id(),
                team_id=team.id,
                slug=slug,
                name=name,
                kind=kind,
                walk_ins=kind in WALK_IN_KINDS,
            )
        )
    return rooms


def user_room_for(
    member: StaffAccount,
    team: Team,
    new_id: Callable[[], str],
    *,
    taken_slugs: Collection[str] = (),
) -> Room:
    """The user room (consulting room) of ``member``: named and slugged after
    them, hosted only by them. Raises Invalid for a manager or another team's member."""
    if member.role is not StaffRole.MEMBER or member.team_id != team.id:
        raise Invalid("only a member of the team has a user room")
    slug = unique_slug(slugify(member.name, fallback="clinician"), taken_slugs)
    return Room(
        id=new_id(),
        team_id=team.id,
        slug=slug,
        name=member.name,
        kind=RoomKind.USER,
        owner_id=member.id,
        walk_ins=True,
    )


def check_can_create_room(
    team: Team, existing: Sequence[Room], kind: RoomKind, *, owner_id: str | None = None
) -> None:
    """Raise unless the team may add a room of ``kind`` next to ``existing``.

    Shared kinds: PlanLimit naming the plan when the plan lacks the kind or
    its count is used up; archived rooms take no place (restoring one is
    checked as creating it). USER rooms are not a plan matter: ``owner_id`` is
    required and Conflict is raised if that member already has one.
    """
    mine = [room for room in existing if room.team_id == team.id]
    if kind is RoomKind.USER:
        if owner_id is None:
            raise Invalid("a user room needs its owner")
        if any(r.kind is RoomKind.USER and r.owner_id == owner_id for r in mine):
            raise Conflict("this member already has a user room")
        return
    limits = SHARED_ROOM_LIMITS[team.plan]
    missing, more = _KIND_WORDS[kind]
    if kind not in limits:
        raise PlanLimit(team.plan.value, missing)
    limit = limits[kind]
    if limit is not None and sum(r.kind is kind and not r.archived for r in mine) >= limit:
        raise PlanLimit(team.plan.value, more)


def rooms_beyond_plan(team: Team, new_plan: Plan, existing: Sequence[Room]) -> list[Room]:
    """The team's shared rooms, not archived, that ``new_plan`` has no place
    for: every room of a kind it lacks, and of a kind it limits, those past the
    limit (the later slugs). Archived rooms take no place."""
    limits = SHARED_ROOM_LIMITS[new_plan]
    mine = sorted(
        (
            r
            for r in existing
            if r.team_id == team.id and r.kind is not RoomKind.USER and not r.archived
        ),
        key=lambda r: r.slug,
    )
    beyond: list[Room] = []
    for kind in sorted({r.kind for r in mine}):
        of_kind = [r for r in mine if r.kind is kind]
        limit = limits.get(kind, 0)
        if limit is not None and len(of_kind) > limit:
            beyond.extend(of_kind[limit:])
    return beyond


def check_plan_change(team: Team, new_plan: Plan, existing: Sequence[Room]) -> None:
    """Raise PlanLimit naming ``new_plan`` if the team's shared rooms exceed it,
    and the rooms to archive first (a downgrade keeps no room the new plan
    lacks). Archived rooms do not count."""
    beyond = rooms_beyond_plan(team, new_plan, existing)
    if not beyond:
        return
    limits = SHARED_ROOM_LIMITS[new_plan]
    first = beyond[0].kind
    missing, more = _KIND_WORDS[first]
    names = ", ".join(f"{r.name} ({r.slug})" for r in beyond)
    what = missing if first not in limits else more
    raise PlanLimit(new_plan.value, f"{what}; archive these rooms first: {names}")


def change_plan(
    team: Team,
    new_plan: Plan,
    existing: Sequence[Room],
    new_id: Callable[[], str],
    *,
    taken_slugs: Collection[str] = (),
) -> tuple[Team, list[Room]]:
    """The team on ``new_plan`` and the default shared rooms it gains (an
    upgrade to professional adds Team Meeting). Raises as check_plan_change."""
    check_plan_change(team, new_plan, existing)
    upgraded = replace(team, plan=new_plan)
    have = {r.kind for r in existing if r.team_id == team.id}
    gained = [
        room
        for room in default_shared_rooms(upgraded, new_id, taken_slugs=taken_slugs)
        if room.kind not in have
    ]
    return upgraded, gained


def check_unique_email(email: str, existing_emails: Iterable[str]) -> str:
    """The normalised ``email`` if no account uses it yet (compared
    case-insensitively), else Conflict. Invalid if it is not an email."""
    normal = normalise_email(email)
    if any(other.strip().lower() == normal for other in existing_emails):
        raise Conflict("an account with this email already exists")
    return normal


@dataclass(frozen=True, slots=True)
class ClientAccountRequest:
    """What a managing account fills in to create a client account."""

    name: str
    email: str
    password: str
    plan: Plan = Plan.STARTER
    title: str = ""
    speciality: str = ""
    #: professional contact details (practice address, professional phone…)
    contact: str = ""
    #: private phone, listed to the managing account
    phone: str = ""
    #: the managing account's own reference for this client
    reference: str = ""
    #: the team's name; the clinician's name when empty
    team_name: str = ""


@dataclass(frozen=True, slots=True)
class NewClient:
    """A validated new client account: its team, first member and rooms."""

    team: Team
    account: StaffAccount
    rooms: tuple[Room, ...]


def new_client_team(
    request: ClientAccountRequest,
    *,
    org_id: str,
    existing_emails: Iterable[str],
    now: datetime,
    new_id: Callable[[], str],
    taken_slugs: Collection[str] = (),
    password_hasher: Callable[[str], str] = hash_password,
) -> NewClient:
    """Validate a client-account creation request and build the team, its first
    staff account (password hashed) and rooms (the plan's shared rooms and the
    member's user room).

    ``existing_emails`` are the staff emails already in the store; the store
    still enforces uniqueness, so a concurrent creation ends in Conflict there.
    ``password_hasher`` is replaceable only so tests can hash cheaply.
    """
    check_aware(now, field="now")
    name = check_name(request.name)
    email = check_unique_email(request.email, existing_emails)
    title = check_text(request.title, field="title", max_length=TITLE_MAX)
    speciality = check_text(request.speciality, field="speciality", max_length=SPECIALITY_MAX)
    contact = check_text(
        request.contact, field="contact details", max_length=CONTACT_MAX, multiline=True
    )
    phone = check_phone(request.phone)
    reference = check_text(request.reference, field="reference", max_length=REFERENCE_MAX)
    team_name = check_name(request.team_name, field="team name", required=False) or name
    check_password_rules(request.password)
    password_hash = password_hasher(request.password)

    team = Team(
        id=new_id(),
        org_id=org_id,
        name=team_name,
        reference=reference,
        plan=request.plan,
        email=email,
        phone=phone,
        created_at=now,
    )
    account = StaffAccount(
        id=new_id(),
        org_id=org_id,
        team_id=team.id,
        role=StaffRole.MEMBER,
        email=email,
        name=name,
        password_hash=password_hash,
        title=title,
        speciality=speciality,
        contact=contact,
        phone=phone,
        created_at=now,
        # the first member administers the account (docs/decisions.md)
        admin=True,
    )
    shared = default_shared_rooms(team, new_id, taken_slugs=taken_slugs)
    taken = {*taken_slugs, *(room.slug for room in shared)}
    own = user_room_for(account, team, new_id, taken_slugs=taken)
    return NewClient(team=team, account=account, rooms=(*shared, own))
