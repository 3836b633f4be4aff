"""The demo offers online booking out of the box: Dr Ada Jones's booking page
(named in the demo's summary) offers a type with an address and instructions
in her working hours, weekdays 09:00-17:00 London time, and a patient books
one of its free times. A demo database seeded before that gets it on its
next start, once."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from signalling.clock import SystemClock
from signalling.demo import BOOKABLE_TYPE, CLINICIANS, ensure_demo
from signalling.settings import Settings
from signalling.store.sqlite import SQLiteStore
from tests.service.conftest import World

LONDON = ZoneInfo("Europe/London")
ADA = CLINICIANS[0][0]


async def test_the_demo_booking_page_offers_a_first_visit_in_working_hours(world: World) -> None:
    (page,) = world.demo.booking
    assert page["clinician"] == "Dr Ada Jones"
    assert page["url"] == f"{world.settings.base_url}/book/dr-ada-jones"
    api_path = "/api" + page["url"].removeprefix(world.settings.base_url)

    shown = await world.client.get(api_path)
    assert shown.status == 200
    body = await shown.json()
    assert body["timezone"] == "Europe/London"
    (offered,) = body["types"]
    assert offered["label"] == "First visit"
    assert offered["address"] and sorted(offered["kinds"]) == ["in_person", "video"]

    reply = await world.client.get(f"{api_path}/slots?type={offered['id']}")
    assert reply.status == 200
    slots = [datetime.fromisoformat(s).astimezone(LONDON) for s in (await reply.json())["slots"]]
    assert slots, "four weeks ahead hold weekdays"
    for slot in slots:
        assert slot.weekday() < 5
        assert 9 * 60 <= slot.hour * 60 + slot.minute <= 17 * 60 - 30

    booked = await world.client.post(
        api_path,
        json={
            "type": offered["id"],
            "start": slots[0].isoformat(),
            "guest": {"name": "Pat Online", "email": "pat.online@example.org"},
        },
    )
    assert booked.status == 201, await booked.text()
    result = (await booked.json())["booking"]
    assert result["address"] == offered["address"] and result["instructions"]


async def test_a_demo_seeded_before_gets_the_booking_page_once(tmp_path: Path) -> None:
    """A demo database without working hours and the First visit (as seeded
    before online booking) gets both on its next start; hours the clinician
    changed afterwards are left alone by the starts after that."""
    settings = Settings(db_path=str(tmp_path / "old-demo.sqlite3"))
    store = SQLiteStore(settings.db_path)
    await store.open()
    try:
        now = SystemClock().now()
        await ensure_demo(store, settings, now)
        # make it a database from before: no hours, no First visit (unused, so deletable)
        assert await store.delete_meeting_type(BOOKABLE_TYPE)
        with sqlite3.connect(settings.db_path) as raw:
            raw.execute("DELETE FROM working_hours")
        assert await store.get_working_hours(ADA) is None

        await ensure_demo(store, settings, now + timedelta(minutes=1))
        hours = await store.get_working_hours(ADA)
        assert hours is not None and hours.timezone == "Europe/London"
        assert [(r.weekday, r.start, r.end) for r in hours.ranges] == [
            (day, 9 * 60, 17 * 60) for day in range(5)
        ]
        offered = await store.get_meeting_type(BOOKABLE_TYPE)
        assert offered.online_bookable and offered.address and offered.instructions

        await store.put_working_hours(replace(hours, timezone="UTC", ranges=hours.ranges[:1]))
        await ensure_demo(store, settings, now + timedelta(minutes=2))
        kept = await store.get_working_hours(ADA)
        assert kept is not None and (kept.timezone, len(kept.ranges)) == ("UTC", 1)
    finally:
        await store.close()


async def test_the_demo_summary_names_its_team_administrator(world: World) -> None:
    admins = [s["email"] for s in world.demo.staff if s["admin"]]
    assert admins == [CLINICIANS[0][1]]
    assert all(s["admin"] is False for s in world.demo.staff if s["role"] == "manager")
