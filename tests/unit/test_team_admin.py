"""Unit tests of team administration (rooms.team_admin), invitations
(rooms.invitations), client edits (rooms.clients) and the rooms a plan
change would leave beyond the new plan (rooms.plans.rooms_beyond_plan)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from rooms.accounts import Plan, StaffAccount, StaffRole, Team
from rooms.clients import ClientChanges, edit_client
from rooms.errors import Conflict, Forbidden, Invalid, PlanLimit, TokenInvalid
from rooms.invitations import INVITATION_TTL, check_usable, issue_invitation, usable
from rooms.meeting import Guest, Meeting
from rooms.plans import check_plan_change, rooms_beyond_plan
from rooms.room import Room, RoomKind
from rooms.schedule import create_meeting, reassign
from rooms.team_admin import (
    Handover,
    MemberInvite,
    MemberState,
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
from rooms.tokens import digest_link

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TEAM = Team("t1", "o1", "Harbour Clinic", "HC-1", Plan.CLINIC, "desk@h.example", "", NOW)


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def member(staff_id: str, **changes: object) -> StaffAccount:
    base = StaffAccount(
        staff_id, "o1", "t1", StaffRole.MEMBER, f"{staff_id}@h.example", staff_id.title(), "h"
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def room(room_id: str, kind: RoomKind, owner: str | None = None, **changes: object) -> Room:
    base = Room(room_id, "t1", f"slug-{room_id}", room_id.title(), kind, owner_id=owner)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def meeting(meeting_id: str, host: str, room_id: str, start: datetime | None) -> Meeting:
    slots = () if start is not None else (NOW + timedelta(days=1), NOW + timedelta(days=2))
    return Meeting(
        meeting_id, "t1", host, room_id, None, Guest("Pat", "pat@example.org"),
        timedelta(minutes=30), NOW - timedelta(days=1), start=start, proposed_slots=slots,
    )  # fmt: skip


# -- administrators ----------------------------------------------------------------------


def test_who_administers() -> None:
    check_administrator(member("ada", admin=True), via_api_key=False)
    manager = dataclasses.replace(member("m"), role=StaffRole.MANAGER, team_id=None)
    check_administrator(manager, via_api_key=False)
    for refused, key in [
        (member("sam"), False),
        (member("ada", admin=True, disabled=True), False),
        (member("ada", admin=True), True),
    ]:
        with pytest.raises(Forbidden):
            check_administrator(refused, via_api_key=key)


def test_the_last_active_administrator_stays() -> None:
    ada, sam = member("ada", admin=True), member("sam")
    with pytest.raises(Conflict, match="last administrator"):
        set_admin([ada, sam], ada, False)
    with pytest.raises(Conflict, match="last administrator"):
        disable_member([ada, sam], ada)
    sam_admin = set_admin([ada, sam], sam, True)
    assert sam_admin.admin
    assert not set_admin([ada, sam_admin], ada, False).admin
    # a disabled administrator counts for nothing
    with pytest.raises(Conflict):
        set_admin([ada, dataclasses.replace(sam_admin, disabled=True)], ada, False)
    with pytest.raises(Conflict, match="enable them first"):
        set_admin([ada, sam], dataclasses.replace(sam, disabled=True), True)


def test_disable_and_enable_once_each() -> None:
    ada, sam = member("ada", admin=True), member("sam")
    off = disable_member([ada, sam], sam)
    assert state_of(off) is MemberState.DISABLED
    with pytest.raises(Conflict):
        disable_member([ada, off], off)
    on = enable_member(off)
    assert state_of(on) is MemberState.ACTIVE
    with pytest.raises(Conflict):
        enable_member(on)


# -- inviting -------------------------------------------------------------------------------


def test_an_invited_member_has_no_password_and_a_room_of_their_own() -> None:
    invite = MemberInvite("Dr Lin Park", " Lin@H.example ", title="Dr", speciality="Skin")
    built = new_member(
        invite, TEAM, existing_emails=["ada@h.example"], now=NOW, new_id=ids(),
        taken_slugs={"dr-lin-park"},
    )  # fmt: skip
    assert (built.account.email, built.account.password_hash) == ("lin@h.example", "")
    assert state_of(built.account) is MemberState.INVITED
    assert (built.room.kind, built.room.owner_id, built.room.slug) == (
        RoomKind.USER,
        built.account.id,
        "dr-lin-park-2",
    )
    with pytest.raises(Conflict):
        new_member(invite, TEAM, existing_emails=["LIN@h.example"], now=NOW, new_id=ids())
    with pytest.raises(Invalid):
        new_member(dataclasses.replace(invite, phone="call me"), TEAM, existing_emails=[],
                   now=NOW, new_id=ids())  # fmt: skip
    with pytest.raises(Conflict, match="disabled"):
        new_member(invite, dataclasses.replace(TEAM, disabled=True), existing_emails=[],
                   now=NOW, new_id=ids())  # fmt: skip


def test_an_invitation_is_usable_once_until_it_expires() -> None:
    issued = issue_invitation("t1", "s9", NOW, ids())
    invitation = issued.invitation
    assert invitation.digest == digest_link(issued.token)
    assert len(issued.token) >= 43  # 256 bits
    assert invitation.expires_at == NOW + INVITATION_TTL
    assert usable(invitation, NOW)
    assert not usable(invitation, NOW + INVITATION_TTL)
    assert not usable(dataclasses.replace(invitation, used_at=NOW), NOW)
    with pytest.raises(TokenInvalid):
        check_usable(None, NOW)
    with pytest.raises(TokenInvalid):
        check_usable(invitation, NOW - timedelta(seconds=1))


# -- a departure ----------------------------------------------------------------------------


def test_a_departure_hands_over_or_cancels_what_is_still_to_come() -> None:
    sam, ada = member("sam"), member("ada", admin=True)
    rooms = [room("r-sam", RoomKind.USER, "sam"), room("r-ada", RoomKind.USER, "ada"),
             room("r-rec", RoomKind.RECEPTION)]  # fmt: skip
    meetings = [
        meeting("own", "sam", "r-sam", NOW + timedelta(hours=2)),
        meeting("desk", "sam", "r-rec", NOW + timedelta(hours=3)),
        meeting("planning", "sam", "r-sam", None),
        meeting("over", "sam", "r-sam", NOW - timedelta(hours=2)),
        meeting("colleague", "ada", "r-ada", NOW + timedelta(hours=2)),
    ]
    handed = plan_departure(sam, TEAM, meetings, rooms, NOW, handover=Handover.REASSIGN,
                            by="ada", successor=ada)  # fmt: skip
    assert {(m.id, m.host_id, m.room_id) for _, m in handed.reassigned} == {
        ("own", "ada", "r-ada"),
        ("desk", "ada", "r-rec"),
        ("planning", "ada", "r-ada"),
    }
    assert handed.archived_room is not None and handed.archived_room.archived
    cancelled = plan_departure(sam, TEAM, meetings, rooms, NOW, handover=Handover.CANCEL, by="ada")
    assert {m.id for m in cancelled.cancelled} == {"own", "desk", "planning"}
    assert all(m.cancelled_by == "ada" for m in cancelled.cancelled)
    for successor in (None, sam, dataclasses.replace(ada, disabled=True), member("new",
                      password_hash="")):  # fmt: skip
        with pytest.raises(Invalid):
            plan_departure(sam, TEAM, meetings, rooms, NOW, handover=Handover.REASSIGN,
                           by="ada", successor=successor)  # fmt: skip


# -- addresses, profiles and client accounts ------------------------------------------------


def test_renaming_a_user_rooms_slug() -> None:
    own = room("r1", RoomKind.USER, "sam", slug="sam")
    assert rename_slug(own, " Dr-Sam ", None).slug == "dr-sam"
    assert rename_slug(own, "sam", own) is own
    with pytest.raises(Conflict):
        rename_slug(own, "taken", room("r2", RoomKind.USER, "ada", slug="taken"))
    for bad in ("", "a b", "-x", "api", "x" * 61):
        with pytest.raises(Invalid):
            rename_slug(own, bad, None)
    with pytest.raises(Invalid):
        rename_slug(room("r3", RoomKind.RECEPTION), "desk", None)


def test_profile_and_client_edits_are_validated() -> None:
    edited = edit_profile(member("sam"), title="Dr", speciality="GP")
    assert (edited.title, edited.speciality, edited.name) == ("Dr", "GP", "Sam")
    with pytest.raises(Invalid):
        edit_profile(member("sam"), name="")
    client = edit_client(TEAM, ClientChanges(reference="HC-2", disabled=True, email="A@B.example"))
    assert (client.reference, client.disabled, client.email) == ("HC-2", True, "a@b.example")
    assert edit_client(TEAM, ClientChanges()) == TEAM
    with pytest.raises(Invalid):
        edit_client(TEAM, ClientChanges(phone="not a phone"))


def test_a_downgrade_names_every_room_beyond_the_plan_and_ignores_archived_ones() -> None:
    shared = [
        room("rec", RoomKind.RECEPTION),
        room("tm", RoomKind.TEAM_MEETING),
        room("wa", RoomKind.WAITING_AREA),
        room("c1", RoomKind.CUSTOM),
        room("c2", RoomKind.CUSTOM, archived=True),
    ]
    beyond = rooms_beyond_plan(TEAM, Plan.STARTER, shared)
    assert [r.id for r in beyond] == ["c1", "tm", "wa"]
    with pytest.raises(PlanLimit) as info:
        check_plan_change(TEAM, Plan.STARTER, shared)
    assert "C1 (slug-c1), Tm (slug-tm), Wa (slug-wa)" in info.value.message
    archived = [dataclasses.replace(r, archived=r.id != "rec") for r in shared]
    check_plan_change(TEAM, Plan.STARTER, archived)


def test_a_disabled_member_is_booked_and_handed_nothing() -> None:
    ada, sam = member("ada", admin=True), member("sam", disabled=True)
    rooms = [room("r-ada", RoomKind.USER, "ada"), room("r-sam", RoomKind.USER, "sam")]
    with pytest.raises(Invalid, match="disabled"):
        reassign(meeting("m", "ada", "r-ada", NOW + timedelta(hours=1)), sam, rooms[0], TEAM,
                 new_host_room=rooms[1])  # fmt: skip
    with pytest.raises(Invalid, match="disabled"):
        create_meeting(TEAM, sam, rooms[1], None, Guest("Pat", "pat@example.org"), "",
                       NOW + timedelta(hours=1), timedelta(minutes=30), (), NOW, ids())  # fmt: skip
    assert ada.admin
