"""Walk-ins, shared queues and room administration in real Chromium.

A patient without an appointment opens a clinician's room page, gives only a name,
passes the media check while already queued, and is admitted. A clinician watching
the team's queues from their own room hears the knock when a walk-in starts waiting
in the Waiting Area, sees the count in the page title, and brings the patient into
their own call without ever joining the Waiting Area's. The rooms page creates,
renames, configures and archives rooms within the plan.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

#: a media check has a hard cap of 15 s; add the offer/answer and worker start-up on a
#: loaded 2-core machine (as test_browser_visit.py)
CHECK_TIMEOUT = 40_000
CONNECT_TIMEOUT = 30_000


def clinician(demo: dict[str, Any], devices: Any) -> tuple[BrowserContext, dict[str, Any]]:
    """The first demo member, logged in, and their GET /api/me."""
    member = next(s for s in demo["staff"] if s.get("role") != "manager")
    context: BrowserContext = devices.new()
    reply = context.request.post(
        "/api/login", data={"email": member["email"], "password": member["password"]}
    )
    assert reply.ok, reply.text()
    return context, context.request.get("/api/me").json()


def own_room(me: dict[str, Any]) -> str:
    return str(next(r["slug"] for r in me["rooms"] if r["owner"] == me["staff"]["id"]))


def open_room(context: BrowserContext, slug: str, console: Any) -> Page:
    page: Page = console.watch(context.new_page(), "clinician")
    page.goto(f"/r/{slug}")
    expect(page.locator("body")).to_have_attribute("data-role", "host")
    expect(page.locator("body")).to_have_attribute("data-step", "call")
    return page


def walk_in(page: Page, slug: str, name: str) -> None:
    """The patient's side up to the media check: no key, only a name."""
    page.goto(f"/r/{slug}")
    expect(page.locator("body")).to_have_attribute("data-view", "guest")
    expect(page.locator("#walk-in-hint")).to_be_visible()
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("body")).to_have_attribute("data-walk-in", "true")
    expect(page.locator("body")).to_have_attribute("data-step", "check")


def finish_check(page: Page) -> None:
    page.wait_for_selector(
        'body[data-check-verdict="passed"], body[data-check-verdict="failed"]',
        timeout=CHECK_TIMEOUT,
    )
    verdict = page.locator("#check-verdict").inner_text()
    assert page.locator("body").get_attribute("data-check-verdict") == "passed", verdict
    page.get_by_role("button", name="Enter the waiting room").click()
    expect(page.locator("body")).to_have_attribute("data-step", "waiting")


def test_a_walk_in_gives_a_name_waits_and_is_admitted(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    context, me = clinician(demo, devices)
    slug = own_room(me)
    room = open_room(context, slug, console)

    patient: Page = console.watch(devices.new().new_page(), "walk-in")
    patient.goto(f"/r/{slug}")
    expect(patient.get_by_role("heading", name="Enter your guest key")).to_be_visible()
    patient.screenshot(path=str(shots / "walk-in-name.png"), full_page=True)
    walk_in(patient, slug, "Pat Walker")

    # Queued at hello: the clinician sees the walk-in while the check still runs.
    waiting = room.locator("#lobby-list li.lobby-guest", has_text="Pat Walker")
    expect(waiting.locator(".walk-in")).to_have_text("Walk-in")
    finish_check(patient)
    expect(patient.locator("#waiting-position")).to_have_text("You are number 1 in the queue.")
    patient.screenshot(path=str(shots / "walk-in-waiting.png"), full_page=True)
    expect(waiting).to_have_attribute("data-indicator", "check_passed")
    expect(room).to_have_title(re.compile(r"^\(1\) "))
    room.screenshot(path=str(shots / "room-lobby-walk-in.png"), full_page=True)

    waiting.get_by_role("button", name="Admit Pat Walker").click()
    for page in (patient, room):
        expect(page.locator("body")).to_have_attribute(
            "data-call-state", "connected", timeout=CONNECT_TIMEOUT
        )
    expect(room.locator("#in-call-list")).to_contain_text("Pat Walker")
    expect(room).not_to_have_title(re.compile(r"^\("))
    patient.get_by_role("button", name="Leave").click()
    expect(patient.get_by_role("heading", name="You have left")).to_be_visible()


def test_a_room_without_walk_ins_answers_as_a_wrong_key(
    demo: dict[str, Any], devices: Any, console: Any
) -> None:
    meeting_room = next(r["slug"] for r in demo["rooms"] if r["kind"] == "team_meeting")
    patient: Page = console.watch(devices.new().new_page(), "no-walk-ins")
    patient.goto(f"/r/{meeting_room}")
    patient.get_by_label("Your name").fill("Pat Walker")
    patient.get_by_role("button", name="Continue").click()
    expect(patient.locator("#alert")).to_contain_text("cannot be entered without an appointment")
    expect(patient.locator("body")).to_have_attribute("data-step", "name")


def test_a_clinician_brings_a_patient_in_from_the_waiting_area(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    context, me = clinician(demo, devices)
    room = open_room(context, own_room(me), console)
    area = next(r for r in demo["rooms"] if r["kind"] == "waiting_area")
    queue = room.locator(f'#queues-list li.queue[data-room="{area["slug"]}"]')
    expect(queue).to_contain_text("No patients here right now.")
    room.get_by_role("button", name="Turn on sound and notifications").click()
    expect(room.get_by_role("button", name="Sound and notifications on")).to_be_disabled()
    before = int(room.locator("body").get_attribute("data-knocks") or "0")

    patient: Page = console.watch(devices.new().new_page(), "waiting-area")
    walk_in(patient, area["slug"], "Robin Walk")
    guest = queue.locator("li.queue-guest", has_text="Robin Walk")
    expect(guest).to_have_attribute("data-walk-in", "true")
    # the knock: the <audio> element played once more, and has played ranges
    expect(room.locator("body")).to_have_attribute("data-knocks", str(before + 1))
    room.wait_for_function("document.getElementById('knock').played.length > 0")
    plays = room.evaluate("document.getElementById('knock').played.length")
    assert plays > 0
    expect(room).to_have_title(re.compile(r"^\(1\) "))
    finish_check(patient)
    expect(guest).to_have_attribute("data-indicator", "check_passed")
    room.screenshot(path=str(shots / "room-shared-queues.png"), full_page=True)

    guest.get_by_role("button", name=f"Bring Robin Walk in from {area['name']}").click()
    for page in (patient, room):
        expect(page.locator("body")).to_have_attribute(
            "data-call-state", "connected", timeout=CONNECT_TIMEOUT
        )
    expect(queue).to_contain_text("No patients here right now.")
    expect(room.locator("#in-call-list")).to_contain_text("Robin Walk")
    # the clinician stayed in their own room: its call is the one the patient joined
    expect(patient.locator("#stage .tile")).to_have_count(2)
    room.screenshot(path=str(shots / "room-picked-in-call.png"), full_page=True)


def test_rooms_page_creates_renames_configures_and_archives(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    context, _ = clinician(demo, devices)
    page: Page = console.watch(context.new_page(), "rooms")
    page.goto("/rooms")
    expect(page.locator("body")).to_have_attribute("data-loaded", "true")
    page.get_by_role("button", name="+ Create Room").click()
    page.get_by_label("Room name").fill("Physio Room")
    page.get_by_role("button", name="Create room", exact=True).click()
    expect(page.locator("#status")).to_contain_text("Room Physio Room created")
    row = page.locator('tr[data-room="physio-room"]')
    expect(row).to_be_visible()

    # beyond the plan: a second waiting area is refused, naming the plan
    page.get_by_label("Room name").fill("Second Waiting")
    page.get_by_label("Kind").select_option("waiting_area")
    page.get_by_role("button", name="Create room", exact=True).click()
    expect(page.locator("#alert")).to_contain_text("the clinic plan does not include")

    row.get_by_label("Name of Physio Room").fill("Physio Suite")
    row.get_by_role("button", name="Rename").click()
    expect(page.locator("#status")).to_have_text("Renamed to Physio Suite.")
    walk_ins = row.get_by_label("Walk-ins: Physio Suite")
    expect(walk_ins).not_to_be_checked()
    walk_ins.check()
    expect(page.locator("#status")).to_contain_text("walk-ins on")
    expect(row.get_by_label("Walk-ins: Physio Suite")).to_be_checked()
    page.screenshot(path=str(shots / "rooms.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Archive Physio Suite").click()
    expect(page.locator("#status")).to_have_text("Physio Suite archived.")
    expect(row).to_have_count(0)
    archived = page.locator('#archived li[data-room="physio-room"]')
    expect(archived).to_contain_text("Physio Suite")
    # hidden from the pages: the dashboard's room list no longer offers it
    me = context.request.get("/api/me").json()
    assert "physio-room" not in {r["slug"] for r in me["rooms"]}
    archived.get_by_role("button", name="Restore Physio Suite").click()
    expect(page.locator('tr[data-room="physio-room"]')).to_be_visible()
