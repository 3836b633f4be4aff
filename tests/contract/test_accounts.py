"""Contract: organisations, teams, staff, groups, API keys and the audit trail."""

from __future__ import annotations

import dataclasses
from datetime import UTC, timedelta, timezone

import pytest

from rooms.accounts import (
    ApiKey,
    AuditEntry,
    Group,
    Organisation,
    Plan,
    StaffAccount,
    StaffRole,
    Team,
)
from rooms.errors import Conflict, NotFound
from signalling.store.base import Store

from .records import NOW, World, sha


async def test_organisation_round_trip_and_missing(store: Store) -> None:
    org = Organisation("o1", "Quay Secretarial", NOW)
    await store.add_organisation(org)
    got = await store.get_organisation("o1")
    assert got == org
    assert got.created_at.tzinfo is UTC
    with pytest.raises(NotFound):
        await store.get_organisation("nope")
    with pytest.raises(Conflict):
        await store.add_organisation(dataclasses.replace(org, name="again"))


async def test_times_come_back_as_utc_whatever_zone_went_in(store: Store) -> None:
    tokyo = timezone(timedelta(hours=9))
    await store.add_organisation(Organisation("o1", "Tokyo", NOW.astimezone(tokyo)))
    got = await store.get_organisation("o1")
    assert got.created_at == NOW
    assert got.created_at.tzinfo is UTC


async def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.add_organisation(Organisation("o1", "x", NOW.replace(tzinfo=None)))


async def test_team_round_trip_update_and_list(world: World) -> None:
    store = world.store
    assert await store.get_team(world.team.id) == world.team
    second = dataclasses.replace(world.team, id="team0", name="Annex", plan=Plan.STARTER)
    await store.add_team(second)
    assert await store.list_teams(world.org.id) == [second, world.team]  # by name
    assert await store.list_teams("other-org") == []
    renamed = dataclasses.replace(world.team, name="Zed Physio", plan=Plan.PROFESSIONAL)
    await store.update_team(renamed)
    assert await store.get_team(world.team.id) == renamed
    with pytest.raises(NotFound):
        await store.update_team(dataclasses.replace(renamed, id="ghost"))
    with pytest.raises(NotFound):
        await store.get_team("ghost")


async def test_team_of_a_missing_organisation_is_refused(store: Store) -> None:
    team = Team("t1", "no-org", "n", "r", Plan.STARTER, "e@x.example", "", NOW)
    with pytest.raises(NotFound):
        await store.add_team(team)


async def test_staff_round_trip_every_field(world: World) -> None:
    assert await world.store.get_staff(world.host.id) == world.host
    manager = StaffAccount(
        "mgr", world.org.id, None, StaffRole.MANAGER, "boss@quay.example", "Boss", "h"
    )
    await world.store.add_staff(manager)
    assert await world.store.get_staff("mgr") == manager
    # managers belong to no team, so no team lists them
    assert await world.store.list_staff(world.team.id) == [world.host, world.other]
    with pytest.raises(NotFound):
        await world.store.get_staff("ghost")


async def test_email_is_found_and_unique_case_insensitively(world: World) -> None:
    store = world.store
    assert await store.find_staff_by_email("alex.host@harbour.EXAMPLE") == world.host
    assert await store.find_staff_by_email("nobody@harbour.example") is None
    twin = dataclasses.replace(world.other, id="s3", email="ALEX.HOST@harbour.example")
    with pytest.raises(Conflict):
        await store.add_staff(twin)
    assert await store.list_staff(world.team.id) == [world.host, world.other]


async def test_update_staff_moves_the_email_index(world: World) -> None:
    store = world.store
    moved = dataclasses.replace(world.host, email="alex@new.example", name="Alex H")
    await store.update_staff(moved)
    assert await store.get_staff(world.host.id) == moved
    assert await store.find_staff_by_email("Alex@New.example") == moved
    assert await store.find_staff_by_email(world.host.email) is None
    # the freed address can be taken; a taken one cannot
    await store.add_staff(dataclasses.replace(world.other, id="s3", email=world.host.email))
    with pytest.raises(Conflict):
        await store.update_staff(dataclasses.replace(world.other, email="ALEX@new.example"))
    assert await store.get_staff(world.other.id) == world.other
    with pytest.raises(NotFound):
        await store.update_staff(dataclasses.replace(moved, id="ghost", email="g@x.example"))


async def test_staff_of_a_missing_team_is_refused(world: World) -> None:
    lost = dataclasses.replace(world.other, id="s9", email="lost@x.example", team_id="ghost")
    with pytest.raises(NotFound):
        await world.store.add_staff(lost)
    assert await world.store.find_staff_by_email("lost@x.example") is None


async def test_groups(world: World) -> None:
    store = world.store
    b = Group("g2", world.team.id, "Nurses", frozenset({world.other.id}))
    a = Group("g1", world.team.id, "Clinicians", frozenset({world.host.id, world.other.id}))
    await store.add_group(b)
    await store.add_group(a)
    assert await store.list_groups(world.team.id) == [a, b]
    emptied = dataclasses.replace(b, name="All nurses", member_ids=frozenset())
    await store.update_group(emptied)
    assert await store.list_groups(world.team.id) == [emptied, a]
    with pytest.raises(Conflict):
        await store.add_group(a)
    with pytest.raises(NotFound):
        await store.update_group(dataclasses.replace(a, id="ghost"))


async def test_api_keys(world: World) -> None:
    store = world.store
    key = ApiKey("k1", world.team.id, "booking system", sha("secret"), NOW, NOW + timedelta(1))
    await store.add_api_key(key)
    assert await store.find_api_key(sha("secret")) == key
    assert await store.find_api_key(sha("other")) is None
    with pytest.raises(Conflict):
        await store.add_api_key(dataclasses.replace(key, id="k2"))  # same digest
    with pytest.raises(NotFound):
        await store.add_api_key(ApiKey("k3", "ghost", "x", sha("k3"), NOW))


async def test_audit_in_time_order_and_by_team(world: World) -> None:
    store = world.store
    late = AuditEntry(
        "a1", NOW + timedelta(minutes=5), "mgr", world.org.id, world.team.id, "meeting.cancel", "m1"
    )
    early = AuditEntry("a2", NOW, "mgr", world.org.id, None, "team.create", "team1")
    tie = AuditEntry("a0", NOW, "mgr", world.org.id, "team2", "view_as.start")
    for entry in (late, early, tie):
        await store.append_audit(entry)
    assert await store.list_audit(world.org.id) == [tie, early, late]
    assert await store.list_audit(world.org.id, team_id=world.team.id) == [late]
    assert await store.list_audit("other-org") == []
    with pytest.raises(Conflict):
        await store.append_audit(early)


async def test_an_ended_session_is_remembered_until_its_cookie_expires(store: Store) -> None:
    assert not await store.session_revoked("sess-1")
    await store.revoke_session("sess-1", NOW + timedelta(hours=12), NOW)
    await store.revoke_session("sess-1", NOW + timedelta(hours=12), NOW)  # idempotent
    assert await store.session_revoked("sess-1")
    assert not await store.session_revoked("sess-2")
    # one already expired needs no record: nothing can present it any more
    await store.revoke_session("sess-3", NOW - timedelta(seconds=1), NOW)
    assert not await store.session_revoked("sess-3")
