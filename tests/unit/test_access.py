"""Who may be where: access rules one by one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rooms.access import (
    DashboardScope,
    check_can_host,
    check_move_target,
    check_same_team,
    role_in_room,
    visible_meetings_scope,
)
from rooms.accounts import Group, Plan, StaffAccount, StaffRole, Team
from rooms.errors import Forbidden, Invalid, NotHost
from rooms.presence import Role
from rooms.room import Room, RoomKind

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def team(team_id: str = "t1") -> Team:
    return Team(
        id=team_id,
        org_id="o1",
        name="Clinic",
        reference="C-1",
        plan=Plan.CLINIC,
        email="clinic@example.test",
        phone="",
        created_at=T0,
    )


def staff(
    staff_id: str,
    team_id: str | None = "t1",
    role: StaffRole = StaffRole.MEMBER,
    groups: frozenset[str] = frozenset(),
) -> StaffAccount:
    return StaffAccount(
        id=staff_id,
        org_id="o1",
        team_id=team_id,
        role=role,
        email=f"{staff_id}@example.test",
        name=staff_id,
        password_hash="x",
        groups=groups,
    )


def room(
    kind: RoomKind, room_id: str = "r1", team_id: str = "t1", owner: str | None = None
) -> Room:
    return Room(
        id=room_id, team_id=team_id, slug=f"slug-{room_id}", name=room_id, kind=kind, owner_id=owner
    )


ALICE = staff("alice")
BOB = staff("bob")
OUTSIDER = staff("eve", team_id="t2")
MANAGER = staff("mia", team_id=None, role=StaffRole.MANAGER)
ALICES_ROOM = room(RoomKind.USER, "alice-room", owner="alice")
SHARED_KINDS = [k for k in RoomKind if k is not RoomKind.USER]


def test_the_owner_hosts_their_user_room() -> None:
    assert role_in_room(ALICE, team(), ALICES_ROOM) is Role.HOST


def test_a_colleague_joins_a_user_room_only_when_invited() -> None:
    assert role_in_room(BOB, team(), ALICES_ROOM, invited=True) is Role.MEMBER
    with pytest.raises(Forbidden):
        role_in_room(BOB, team(), ALICES_ROOM)


@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_any_member_of_the_team_hosts_a_shared_room(kind: RoomKind) -> None:
    shared = room(kind)
    assert role_in_room(ALICE, team(), shared) is Role.HOST
    assert role_in_room(BOB, team(), shared) is Role.HOST


@pytest.mark.parametrize("kind", list(RoomKind))
def test_nobody_outside_the_team_gets_in(kind: RoomKind) -> None:
    with pytest.raises(Forbidden):
        role_in_room(OUTSIDER, team(), room(kind, owner="alice"), invited=True)


def test_a_room_of_another_team_is_refused_even_to_a_member() -> None:
    with pytest.raises(Forbidden):
        role_in_room(ALICE, team(), room(RoomKind.RECEPTION, team_id="t2"))


@pytest.mark.parametrize("kind", list(RoomKind))
def test_a_manager_hosts_nothing(kind: RoomKind) -> None:
    with pytest.raises(Forbidden):
        role_in_room(MANAGER, team(), room(kind, owner="alice"), invited=True)
    # even a manager account that carries a team id
    with pytest.raises(Forbidden):
        role_in_room(staff("mia", role=StaffRole.MANAGER), team(), room(kind))


def test_check_can_host() -> None:
    check_can_host(ALICE, team(), ALICES_ROOM)
    check_can_host(BOB, team(), room(RoomKind.WAITING_AREA))
    with pytest.raises(NotHost):
        check_can_host(BOB, team(), ALICES_ROOM)
    with pytest.raises(Forbidden) as caught:
        check_can_host(OUTSIDER, team(), room(RoomKind.RECEPTION))
    assert not isinstance(caught.value, NotHost)


def test_check_same_team() -> None:
    check_same_team(ALICE, "t1")
    with pytest.raises(Forbidden):
        check_same_team(ALICE, "t2")
    with pytest.raises(Forbidden):
        check_same_team(MANAGER, "t1")


def test_moves_stay_inside_the_team() -> None:
    reception = room(RoomKind.RECEPTION, "rec")
    check_move_target(reception, ALICES_ROOM)
    # the team-wide queue is a legitimate target, from any room
    check_move_target(ALICES_ROOM, room(RoomKind.WAITING_AREA, "wa"))
    with pytest.raises(Forbidden):
        check_move_target(reception, room(RoomKind.USER, "x", team_id="t2", owner="eve"))
    with pytest.raises(Invalid):
        check_move_target(reception, reception)


def test_my_scope_is_the_viewer_alone() -> None:
    groups = [Group("g1", "t1", "Physio", frozenset({"alice", "bob"}))]
    assert visible_meetings_scope(ALICE, groups, "my") == {"alice"}
    assert visible_meetings_scope(ALICE, groups, DashboardScope.MY) == {"alice"}


def test_everyone_is_the_members_of_the_viewers_groups() -> None:
    groups = [
        Group("g1", "t1", "Physio", frozenset({"alice", "bob"})),
        Group("g2", "t1", "Dentists", frozenset({"carol"})),
        # listed through the account's own groups rather than the group's members
        Group("g3", "t1", "Front desk", frozenset({"dan"})),
        # same member id in another team's group: never visible
        Group("g4", "t2", "Elsewhere", frozenset({"alice", "zed"})),
    ]
    viewer = staff("alice", groups=frozenset({"g3"}))
    assert visible_meetings_scope(viewer, groups, "everyone") == {"alice", "bob", "dan"}


def test_everyone_without_groups_is_the_viewer() -> None:
    assert visible_meetings_scope(ALICE, [], "everyone") == {"alice"}


def test_unknown_scope_and_managers_are_refused() -> None:
    with pytest.raises(Invalid):
        visible_meetings_scope(ALICE, [], "all")
    with pytest.raises(Forbidden):
        visible_meetings_scope(MANAGER, [], "my")
