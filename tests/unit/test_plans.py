"""Unit tests of rooms.plans: entitlements per plan, rooms, client-account creation."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from rooms.accounts import Plan, StaffAccount, StaffRole, Team
from rooms.errors import Conflict, Invalid, PlanLimit
from rooms.passwords import hash_password, verify_password
from rooms.plans import (
    ClientAccountRequest,
    allowed_shared_kinds,
    change_plan,
    check_can_create_room,
    check_plan_change,
    check_unique_email,
    default_shared_rooms,
    new_client_team,
    user_room_for,
)
from rooms.room import Room, RoomKind

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def team(plan: Plan = Plan.STARTER) -> Team:
    return Team(
        id="t1",
        org_id="o1",
        name="Harbour Clinic",
        reference="HC-1",
        plan=plan,
        email="desk@harbour.example",
        phone="",
        created_at=NOW,
    )


def member(staff_id: str = "s1", name: str = "Dr Jane Smith", **changes: object) -> StaffAccount:
    base = StaffAccount(
        id=staff_id,
        org_id="o1",
        team_id="t1",
        role=StaffRole.MEMBER,
        email=f"{staff_id}@harbour.example",
        name=name,
        password_hash="x",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def room(kind: RoomKind, n: int = 1, team_id: str = "t1", owner_id: str | None = None) -> Room:
    return Room(
        id=f"{kind}{n}", team_id=team_id, slug=f"{kind}-{n}", name=kind, kind=kind,
        owner_id=owner_id,
    )  # fmt: skip


def cheap_hash(password: str) -> str:
    return hash_password(password, n=2**4)


# -- entitlements -------------------------------------------------------------


def test_allowed_shared_kinds_per_plan() -> None:
    assert allowed_shared_kinds(Plan.STARTER) == {RoomKind.RECEPTION}
    assert allowed_shared_kinds(Plan.PROFESSIONAL) == {RoomKind.RECEPTION, RoomKind.TEAM_MEETING}
    assert allowed_shared_kinds(Plan.CLINIC) == {
        RoomKind.RECEPTION,
        RoomKind.TEAM_MEETING,
        RoomKind.CUSTOM,
        RoomKind.WAITING_AREA,
    }


@pytest.mark.parametrize(
    ("plan", "kinds"),
    [
        (Plan.STARTER, [RoomKind.RECEPTION]),
        (Plan.PROFESSIONAL, [RoomKind.RECEPTION, RoomKind.TEAM_MEETING]),
        (Plan.CLINIC, [RoomKind.RECEPTION, RoomKind.TEAM_MEETING, RoomKind.WAITING_AREA]),
    ],
)
def test_default_shared_rooms(plan: Plan, kinds: list[RoomKind]) -> None:
    rooms = default_shared_rooms(team(plan), ids())
    assert [r.kind for r in rooms] == kinds
    assert all(r.team_id == "t1" and r.owner_id is None and r.shared for r in rooms)
    assert rooms[0].name == "Reception"
    assert rooms[0].slug == "harbour-clinic-reception"
    assert len({r.id for r in rooms}) == len(rooms)


def test_default_room_slugs_avoid_taken_ones() -> None:
    rooms = default_shared_rooms(team(), ids(), taken_slugs={"harbour-clinic-reception"})
    assert rooms[0].slug == "harbour-clinic-reception-2"


def test_user_room_for_a_member() -> None:
    r = user_room_for(member(), team(), ids())
    assert (r.kind, r.owner_id, r.team_id, r.slug, r.name) == (
        RoomKind.USER,
        "s1",
        "t1",
        "dr-jane-smith",
        "Dr Jane Smith",
    )
    assert user_room_for(member(), team(), ids(), taken_slugs={"dr-jane-smith"}).slug == (
        "dr-jane-smith-2"
    )


def test_no_user_room_for_managers_or_other_teams() -> None:
    with pytest.raises(Invalid):
        user_room_for(member(role=StaffRole.MANAGER, team_id=None), team(), ids())
    with pytest.raises(Invalid):
        user_room_for(member(team_id="t2"), team(), ids())


# -- creating rooms -------------------------------------------------------------


def test_starter_plan_does_not_include_custom_rooms() -> None:
    with pytest.raises(PlanLimit) as info:
        check_can_create_room(team(Plan.STARTER), [room(RoomKind.RECEPTION)], RoomKind.CUSTOM)
    assert info.value.message == "the starter plan does not include custom rooms"
    assert info.value.plan == "starter"
    assert info.value.code == "plan_limit"


@pytest.mark.parametrize(
    ("plan", "kind", "allowed"),
    [
        (Plan.STARTER, RoomKind.TEAM_MEETING, False),
        (Plan.STARTER, RoomKind.WAITING_AREA, False),
        (Plan.PROFESSIONAL, RoomKind.TEAM_MEETING, True),
        (Plan.PROFESSIONAL, RoomKind.CUSTOM, False),
        (Plan.PROFESSIONAL, RoomKind.WAITING_AREA, False),
        (Plan.CLINIC, RoomKind.CUSTOM, True),
        (Plan.CLINIC, RoomKind.WAITING_AREA, True),
    ],
)
def test_which_kinds_each_plan_allows(plan: Plan, kind: RoomKind, allowed: bool) -> None:
    if allowed:
        check_can_create_room(team(plan), [], kind)
    else:
        with pytest.raises(PlanLimit, match=f"the {plan} plan does not include"):
            check_can_create_room(team(plan), [], kind)


def test_counted_kinds_stop_at_their_limit() -> None:
    clinic = team(Plan.CLINIC)
    check_can_create_room(clinic, [], RoomKind.WAITING_AREA)
    with pytest.raises(PlanLimit, match="more than one waiting area"):
        check_can_create_room(clinic, [room(RoomKind.WAITING_AREA)], RoomKind.WAITING_AREA)
    with pytest.raises(PlanLimit, match="more than one reception"):
        check_can_create_room(team(), [room(RoomKind.RECEPTION)], RoomKind.RECEPTION)
    # another team's waiting area does not count against this one
    check_can_create_room(
        clinic, [room(RoomKind.WAITING_AREA, team_id="t2")], RoomKind.WAITING_AREA
    )


def test_clinic_custom_rooms_are_unlimited() -> None:
    many = [room(RoomKind.CUSTOM, n) for n in range(200)]
    check_can_create_room(team(Plan.CLINIC), many, RoomKind.CUSTOM)


def test_one_user_room_per_member() -> None:
    existing = [room(RoomKind.USER, owner_id="s1")]
    check_can_create_room(team(), existing, RoomKind.USER, owner_id="s2")
    with pytest.raises(Conflict):
        check_can_create_room(team(), existing, RoomKind.USER, owner_id="s1")
    with pytest.raises(Invalid):
        check_can_create_room(team(), existing, RoomKind.USER)


# -- changing plan ----------------------------------------------------------------


def test_downgrade_refused_while_rooms_exceed_the_new_plan() -> None:
    clinic = team(Plan.CLINIC)
    rooms = [room(RoomKind.RECEPTION), room(RoomKind.TEAM_MEETING), room(RoomKind.CUSTOM)]
    with pytest.raises(PlanLimit, match="the professional plan does not include custom rooms"):
        check_plan_change(clinic, Plan.PROFESSIONAL, rooms)
    check_plan_change(clinic, Plan.PROFESSIONAL, rooms[:2])
    with pytest.raises(PlanLimit, match="the starter plan does not include a team meeting room"):
        check_plan_change(clinic, Plan.STARTER, rooms[:2])
    user_rooms = [room(RoomKind.USER, n, owner_id=f"s{n}") for n in range(5)]
    check_plan_change(clinic, Plan.STARTER, [rooms[0], *user_rooms])


def test_upgrade_adds_the_missing_default_rooms() -> None:
    upgraded, gained = change_plan(
        team(Plan.STARTER), Plan.CLINIC, [room(RoomKind.RECEPTION)], ids()
    )
    assert upgraded.plan is Plan.CLINIC
    assert [r.kind for r in gained] == [RoomKind.TEAM_MEETING, RoomKind.WAITING_AREA]


# -- client accounts ---------------------------------------------------------------


def test_check_unique_email_is_case_insensitive() -> None:
    assert check_unique_email(" New@Example.org", ["a@example.org"]) == "new@example.org"
    with pytest.raises(Conflict):
        check_unique_email("Jane@Example.org", ["jane@example.ORG"])
    with pytest.raises(Invalid):
        check_unique_email("not-an-email", [])


def request(**changes: object) -> ClientAccountRequest:
    base = ClientAccountRequest(
        name="Dr Jane Smith",
        email="Jane@Harbour.example",
        password="s3cret-pass",
        plan=Plan.PROFESSIONAL,
        title="Dr",
        speciality="Physiotherapy",
        contact="1 Harbour Road\nPortsmouth",
        phone="+44 20 7946 0958",
        reference="HC-7",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_new_client_team_builds_team_account_and_rooms() -> None:
    made = new_client_team(
        request(), org_id="o1", existing_emails=[], now=NOW, new_id=ids(),
        password_hasher=cheap_hash,
    )  # fmt: skip
    assert made.team.plan is Plan.PROFESSIONAL
    assert (made.team.name, made.team.reference, made.team.email) == (
        "Dr Jane Smith",
        "HC-7",
        "jane@harbour.example",
    )
    account = made.account
    assert account.team_id == made.team.id and account.role is StaffRole.MEMBER
    assert account.email == "jane@harbour.example"
    assert account.password_hash != "s3cret-pass"
    assert verify_password("s3cret-pass", account.password_hash)
    assert (account.title, account.speciality) == ("Dr", "Physiotherapy")
    kinds = [r.kind for r in made.rooms]
    assert kinds == [RoomKind.RECEPTION, RoomKind.TEAM_MEETING, RoomKind.USER]
    assert made.rooms[-1].owner_id == account.id
    assert len({r.slug for r in made.rooms}) == 3


def test_new_client_team_uses_the_team_name_when_given() -> None:
    made = new_client_team(
        request(team_name="Harbour Physio"), org_id="o1", existing_emails=[], now=NOW,
        new_id=ids(), password_hasher=cheap_hash,
    )  # fmt: skip
    assert made.team.name == "Harbour Physio"
    assert made.rooms[0].slug == "harbour-physio-reception"


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"password": "1234567"}, Invalid, "at least 8"),
        ({"name": " "}, Invalid, "name is required"),
        ({"email": "nope"}, Invalid, "email"),
        ({"email": "TAKEN@harbour.example "}, Conflict, "already exists"),
        ({"phone": "12"}, Invalid, "phone"),
        ({"title": "x" * 61}, Invalid, "title"),
    ],
)
def test_new_client_team_refuses(
    changes: dict[str, object], error: type[Exception], match: str
) -> None:
    hashed: list[str] = []

    def spy_hash(password: str) -> str:
        hashed.append(password)
        return cheap_hash(password)

    with pytest.raises(error, match=match):
        new_client_team(
            request(**changes), org_id="o1", existing_emails=["taken@harbour.example"],
            now=NOW, new_id=ids(), password_hasher=spy_hash,
        )  # fmt: skip
    assert hashed == []  # refused before spending a hash
