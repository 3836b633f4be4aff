"""A patient reviews a meeting from the review request they received, in
Chromium, against the demo server sending real mail to an SMTP server
(aiosmtpd) the test reads; the review then shows on the clinician's overview.

The request goes 30 minutes after a meeting ends, and the server's clock is
the real one, so the meeting is one that took place two hours ago: the test
writes it into the demo's database (SQLite, which the server shares with
other processes) as the server would have left it: completed by presence,
with its review request due. The server then sends that request like any
other due message, from its own outbox.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Page, expect

from rooms.meeting import Guest
from rooms.outbox import plan_review_request
from rooms.presence import PresenceEvent, PresenceKind, Role
from rooms.schedule import create_meeting
from rooms.status import facts_from
from signalling.demo import CLINICIANS, new_id
from signalling.store.sqlite import SQLiteStore
from tests.browser.conftest import _free_port, serve_demo
from tests.browser.test_browser_patient_links import Inbox, Mail, text_of
from tests.browser.test_browser_visit import overview_as_member

GUEST = "Robin Review"
GUEST_EMAIL = "robin.review@example.org"


@pytest.fixture(scope="module")
def mail() -> Iterator[Mail]:
    box = Inbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Mail(box, port)
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def inbox(mail: Mail) -> Inbox:
    return mail.inbox


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-reviews")


@pytest.fixture(scope="module")
def demo(mail: Mail, demo_db: Path) -> Iterator[dict[str, Any]]:
    """The demo server, its messages to guests sent to the inbox."""
    smtp = f"smtp://127.0.0.1:{mail.port}?starttls=0"
    with serve_demo(demo_db, "--smtp-url", smtp) as summary:
        yield summary


async def _a_meeting_that_took_place(db: Path) -> str:
    """Dr Ada Jones's meeting with the guest, two hours ago: both entered, the
    guest was admitted, both left (completed); its review request is due."""
    store = SQLiteStore(str(db))
    await store.open()
    try:
        ada = await store.get_staff(CLINICIANS[0][0])
        assert ada.team_id is not None
        team = await store.get_team(ada.team_id)
        room = next(r for r in await store.list_rooms(team.id) if r.owner_id == ada.id)
        consult = await store.get_meeting_type("demo-consult")
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(hours=2)
        meeting, _ = create_meeting(
            team,
            ada,
            room,
            consult,
            Guest(GUEST, GUEST_EMAIL),
            "Knee check",
            start,
            None,
            (),
            start - timedelta(days=2),
            new_id,
        )
        await store.add_meetings([meeting], [])
        steps = [
            (PresenceKind.ENTERED, "s-ada", Role.HOST),
            (PresenceKind.ENTERED, "g-robin", Role.GUEST),
            (PresenceKind.ADMITTED, "g-robin", Role.GUEST),
            (PresenceKind.LEFT, "g-robin", Role.GUEST),
            (PresenceKind.LEFT, "s-ada", Role.HOST),
        ]
        events = [
            PresenceEvent(
                kind, team.id, room.id, who, role, start + timedelta(minutes=n), meeting.id
            )
            for n, (kind, who, role) in enumerate(steps)
        ]
        await store.put_meeting_facts(meeting.id, facts_from(events).to_dict())
        assert meeting.end is not None
        due = meeting.end + timedelta(minutes=30)
        await store.add_messages([plan_review_request(meeting, due, meeting.end)])
        return meeting.id
    finally:
        await store.close()


def _api(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _book_online(base: str) -> None:
    """A patient books a First visit on Dr Ada Jones's page: the server
    schedules its confirmation, and its sender, woken, sends every message due."""
    page = _api(base, "GET", "/api/book/dr-ada-jones")
    (offered,) = page["types"]
    slots = _api(base, "GET", f"/api/book/dr-ada-jones/slots?type={offered['id']}")["slots"]
    guest = {"name": "Sam Wake", "email": "sam.wake@example.org"}
    booked = {"type": offered["id"], "start": slots[0], "guest": guest}
    _api(base, "POST", "/api/book/dr-ada-jones", booked)


def test_a_patient_reviews_from_the_mailed_link_and_the_overview_shows_it(
    demo: dict[str, Any], demo_db: Path, devices: Any, shots: Path, console: Any, inbox: Inbox
) -> None:
    # its own thread: playwright's sync API runs an event loop in this one
    with ThreadPoolExecutor(1) as worker:
        seeded = worker.submit(asyncio.run, _a_meeting_that_took_place(demo_db / "demo.sqlite3"))
        meeting_id = seeded.result(timeout=30)
    _book_online(demo["url"])

    # the request: the review link, to the meeting's guest
    request = inbox.wait_for(GUEST_EMAIL, "How was your appointment")
    (link,) = re.findall(re.escape(demo["url"]) + r"/review/[A-Za-z0-9_.-]+", text_of(request))
    assert link.rsplit("/", 1)[1].startswith(meeting_id + ".")

    # the patient's own device: the token leaves the address bar, they rate and comment
    patient: Page = console.watch(devices.new(420, 860).new_page(), "patient")
    patient.goto(link)
    expect(patient.locator("body")).to_have_attribute("data-state", "form")
    assert patient.url == f"{demo['url']}/review"
    expect(patient.locator("#app")).to_contain_text("Dr Ada Jones")
    patient.get_by_label("4 – Good").check()
    patient.get_by_label("Your comment (optional)").fill("Clear advice on the knee, thank you.")
    patient.screenshot(path=str(shots / "review.png"), full_page=True)
    patient.get_by_role("button", name="Send my review").click()
    expect(patient.locator("body")).to_have_attribute("data-state", "done")
    expect(patient.locator("#thanks")).to_have_text("Your review was sent to your clinic.")

    # the link again: reviewed already, nothing more to send
    again: Page = console.watch(devices.new(420, 860).new_page(), "again")
    again.goto(link)
    expect(again.locator("body")).to_have_attribute("data-state", "done")
    expect(again.locator("h1")).to_have_text("Already reviewed")

    # the clinician's overview: the meeting, completed, with its review in the details
    overview = overview_as_member(demo, devices, console, "overview")
    row = overview.locator(f'#meetings tr[data-meeting="{meeting_id}"]')
    expect(row).to_have_attribute("data-status", "completed")
    row.get_by_role("button", name=f"Show the details of the meeting with {GUEST}").click()
    details = overview.locator(f'tr[data-details="{meeting_id}"]')
    expect(details).to_contain_text("4/5 Clear advice on the knee, thank you.")
    expect(details.locator('tr[data-trigger="review_request"]')).to_have_attribute(
        "data-state", "sent"
    )
