"""The contract suite's fixtures: every test runs once per store.

``backend`` opens stores on one shared backing (a SQLite file, or a Redis
prefix), so a test can open a second instance (another process's view) with
``await backend.open()``; ``store`` is the first instance. ``world`` seeds an
organisation, a team, two members, rooms and a meeting type; it builds
meetings and credentials with every field set (see records.World).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from rooms.accounts import Organisation, Plan, StaffAccount, StaffRole, Team
from rooms.meeting import MeetingKind, MeetingType
from rooms.room import Room, RoomKind
from signalling.store.base import Store

from .records import NOW, Backend, World


@pytest.fixture(params=["sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        chosen = Backend("sqlite", str(tmp_path / "vestibule.sqlite3"))
    else:
        url = request.getfixturevalue("redis_server")
        chosen = Backend("redis", url, prefix=f"t{uuid.uuid4().hex[:12]}:")
    try:
        yield chosen
    finally:
        await chosen.close_all()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


@pytest.fixture
async def world(store: Store) -> World:
    org = Organisation("org1", "Harbour Practice", NOW - timedelta(days=400))
    team = Team(
        "team1",
        org.id,
        "Harbour Physio",
        "HP-01",
        Plan.CLINIC,
        "desk@harbour.example",
        "+44 1632 960000",
        NOW - timedelta(days=300),
    )
    host = StaffAccount(
        "s1",
        org.id,
        team.id,
        StaffRole.MEMBER,
        "Alex.Host@Harbour.example",
        "Alex Host",
        "scrypt$hash1",
        title="Dr",
        speciality="physio",
        contact="room 2",
        phone="+44 1",
        created_at=NOW - timedelta(days=200),
        groups=frozenset({"g1", "g2"}),
    )
    other = StaffAccount(
        "s2",
        org.id,
        team.id,
        StaffRole.MEMBER,
        "blake@harbour.example",
        "Blake Other",
        "scrypt$hash2",
    )
    room = Room("r1", team.id, "alex-host", "Alex's room", RoomKind.USER, owner_id=host.id)
    shared = Room(
        "r2",
        team.id,
        "harbour-reception",
        "Reception",
        RoomKind.RECEPTION,
        show_position=False,
        capacity=3,
    )
    mtype = MeetingType(
        "mt1",
        team.id,
        "Consultation",
        timedelta(minutes=45),
        colour="#ff0000",
        online_bookable=True,
        known_patients_only=True,
        kinds=frozenset({MeetingKind.VIDEO, MeetingKind.PHONE}),
        address="1 Quay St",
        instructions="have your notes ready",
        description="first visit",
    )
    await store.add_organisation(org)
    await store.add_team(team)
    await store.add_staff(host)
    await store.add_staff(other)
    await store.add_room(room)
    await store.add_room(shared)
    await store.add_meeting_type(mtype)
    return World(store, org, team, host, other, room, shared, mtype)
