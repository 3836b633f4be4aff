"""Administering rooms, walk-in rooms and supervised queues: the pure rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from rooms.accounts import Plan, StaffAccount, StaffRole, Team
from rooms.errors import Forbidden, Invalid, NotHost, PlanLimit, RoomArchived
from rooms.plans import check_can_create_room
from rooms.room import Room, RoomKind
from rooms.room_admin import RoomChange, change_room, check_open, takes_walk_ins
from rooms.supervision import check_pick, watched_rooms

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TEAM = Team("t1", "o1", "Harbour", "", Plan.CLINIC, "team@example.org", "", T0)
ADA = StaffAccount("ada", "o1", "t1", StaffRole.MEMBER, "ada@example.org", "Dr Ada", "!")
SAM = StaffAccount("sam", "o1", "t1", StaffRole.MEMBER, "sam@example.org", "Dr Sam", "!")
KIM = StaffAccount("kim", "o2", "t2", StaffRole.MEMBER, "kim@example.org", "Dr Kim", "!")
OWN = Room("r-ada", "t1", "dr-ada", "Dr Ada", RoomKind.USER, owner_id="ada", walk_ins=True)
RECEPTION = Room("r-rec", "t1", "reception", "Reception", RoomKind.RECEPTION, walk_ins=True)
WAITING = Room("r-wait", "t1", "waiting", "Waiting Area", RoomKind.WAITING_AREA, walk_ins=True)
MEETING = Room("r-meet", "t1", "team-meeting", "Team Meeting", RoomKind.TEAM_MEETING)
OTHER_RECEPTION = Room("r-x", "t2", "elsewhere", "Reception", RoomKind.RECEPTION)


def test_rename_keeps_the_slug() -> None:
    renamed = change_room(SAM, TEAM, RECEPTION, RoomChange(name="  Front desk "))
    assert (renamed.name, renamed.slug) == ("Front desk", "reception")
    with pytest.raises(Invalid):
        change_room(SAM, TEAM, RECEPTION, RoomChange(name="   "))


def test_settings_change_only_what_is_given() -> None:
    changed = change_room(ADA, TEAM, OWN, RoomChange(show_position=False))
    assert changed == replace(OWN, show_position=False)
    changed = change_room(ADA, TEAM, OWN, RoomChange(walk_ins=False))
    assert changed == replace(OWN, walk_ins=False)
    with pytest.raises(Invalid, match="nothing to change"):
        change_room(ADA, TEAM, OWN, RoomChange())


def test_a_team_meeting_room_takes_no_walk_ins() -> None:
    with pytest.raises(Invalid, match="walk-ins"):
        change_room(ADA, TEAM, MEETING, RoomChange(walk_ins=True))
    assert not change_room(ADA, TEAM, MEETING, RoomChange(walk_ins=False)).walk_ins


def test_only_shared_rooms_are_archived_and_archived_rooms_admit_nobody() -> None:
    archived = change_room(SAM, TEAM, RECEPTION, RoomChange(archived=True))
    assert archived.archived
    with pytest.raises(RoomArchived):
        check_open(archived)
    check_open(change_room(SAM, TEAM, archived, RoomChange(archived=False)))
    with pytest.raises(Invalid, match="consulting room"):
        change_room(ADA, TEAM, OWN, RoomChange(archived=True))


def test_who_may_change_a_room() -> None:
    with pytest.raises(NotHost):
        change_room(SAM, TEAM, OWN, RoomChange(name="Mine now"))
    with pytest.raises(Forbidden):
        change_room(KIM, TEAM, RECEPTION, RoomChange(name="Taken"))


def test_walk_ins_need_an_open_room_that_takes_them() -> None:
    assert takes_walk_ins(OWN)
    assert not takes_walk_ins(None)
    assert not takes_walk_ins(MEETING)
    assert not takes_walk_ins(replace(OWN, archived=True))
    assert not takes_walk_ins(replace(OWN, walk_ins=False))


def test_watched_rooms_are_the_teams_open_shared_queues() -> None:
    archived = replace(WAITING, id="r-old", archived=True)
    rooms = [OWN, RECEPTION, MEETING, WAITING, archived, OTHER_RECEPTION]
    assert watched_rooms(rooms, OWN) == [RECEPTION, WAITING]
    assert watched_rooms(rooms, RECEPTION) == [WAITING]


def test_pick_rules() -> None:
    check_pick(RECEPTION, OWN)
    check_pick(WAITING, OWN)
    with pytest.raises(Forbidden):
        check_pick(OTHER_RECEPTION, OWN)
    with pytest.raises(Forbidden):
        check_pick(MEETING, OWN)
    with pytest.raises(Forbidden):
        check_pick(replace(WAITING, archived=True), OWN)
    with pytest.raises(Invalid):
        check_pick(WAITING, WAITING)


def test_restoring_a_room_takes_a_place_in_the_plan() -> None:
    starter = replace(TEAM, plan=Plan.STARTER)
    archived = replace(RECEPTION, archived=True)
    newer = replace(RECEPTION, id="r-rec2", slug="front-desk")
    with pytest.raises(PlanLimit, match="starter plan"):
        change_room(SAM, starter, archived, RoomChange(archived=False), [archived, newer])
    restored = change_room(SAM, starter, archived, RoomChange(archived=False), [archived])
    assert restored.archived is False
    # an archived room takes no place: another of its kind may be created
    check_can_create_room(starter, [archived], RoomKind.RECEPTION)
