"""A patient's whole visit in real Chromium, against the demo server.

One module, one demo server: the patient opens their link, passes the media check with
Chromium's fake camera and microphone, and waits; the clinician, logged in on another
device, sees them in the lobby with a green check, admits them, and both reach a
connected call; the dashboard follows live; the used link on another device gets
the uniform error. A guest with a key does the same through the room's page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

pytestmark = pytest.mark.browser

#: a media check has a hard cap of 15 s (docs/benchmarks.md, "Targets"); add the offer/answer
#: and worker start-up on a loaded 2-core machine
CHECK_TIMEOUT = 40_000
#: ICE on loopback connects in well under a second; DTLS and the first frames add a few
CONNECT_TIMEOUT = 30_000

UNIFORM = "This link or key cannot be used"


def in_user_rooms(demo: dict[str, Any]) -> list[dict[str, Any]]:
    """Joinable meetings in consulting rooms (hosted by their owner), soonest first."""
    user_rooms = {r["slug"] for r in demo["rooms"] if r["kind"] == "user"}
    meetings = [m for m in demo["meetings"] if m["room"] in user_rooms]
    return sorted(meetings, key=lambda m: m["start"])


def staff_for(demo: dict[str, Any], meeting: dict[str, Any], devices: Any) -> BrowserContext:
    """A logged-in context for the host of `meeting` (found through /api/me)."""
    for staff in demo["staff"]:
        if staff.get("role") == "manager":
            continue
        context = devices.new()
        response = context.request.post(
            "/api/login", data={"email": staff["email"], "password": staff["password"]}
        )
        assert response.ok, response.text()
        me = context.request.get("/api/me").json()
        if me["staff"]["id"] == meeting["host"]:
            return context
    raise AssertionError(f"no demo staff hosts meeting {meeting['id']}")


def overview_as_member(demo: dict[str, Any], devices: Any, console: Any, name: str) -> Page:
    """A demo member logged in through the login page, on the live meetings overview."""
    member = next(s for s in demo["staff"] if s.get("role") != "manager")
    page: Page = console.watch(devices.new().new_page(), name)
    page.goto("/login")
    page.get_by_label("Email").fill(member["email"])
    page.get_by_label("Password").fill(member["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard")
    expect(page.locator("body")).to_have_attribute("data-live", "true")
    return page


def pass_check(page: Page, shots: Path, name: str) -> None:
    """From the name step to the waiting room, through a passed media check."""
    expect(page.locator("body")).to_have_attribute("data-step", "check", timeout=15_000)
    page.wait_for_selector(
        'body[data-check-verdict="passed"], body[data-check-verdict="failed"]',
        timeout=CHECK_TIMEOUT,
    )
    page.screenshot(path=str(shots / f"{name}-check.png"))
    verdict = page.locator("#check-verdict").inner_text()
    assert page.locator("body").get_attribute("data-check-verdict") == "passed", verdict
    expect(page.locator("#check-verdict")).to_contain_text("Your camera and microphone work")
    page.get_by_role("button", name="Enter the waiting room").click()
    expect(page.locator("body")).to_have_attribute("data-step", "waiting")
    expect(page.get_by_role("heading", name="You are in the waiting room")).to_be_visible()


def test_patient_link_checked_admitted_and_connected(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    meeting = in_user_rooms(demo)[0]
    clinician = staff_for(demo, meeting, devices)
    patient = devices.new()
    dashboard = console.watch(clinician.new_page(), "dashboard")
    dashboard.goto("/dashboard")
    expect(dashboard.locator("body")).to_have_attribute("data-live", "true")
    row = dashboard.locator(f'tr[data-meeting="{meeting["id"]}"]')
    expect(row).to_have_attribute("data-indicator", "not_entered")
    dashboard.screenshot(path=str(shots / "dashboard-before.png"), full_page=True)

    room = console.watch(clinician.new_page(), "clinician")
    room.goto(f"/r/{meeting['room']}")
    expect(room.locator("body")).to_have_attribute("data-role", "host")
    expect(room.get_by_text("Nobody is waiting.")).to_be_visible()

    guest = console.watch(patient.new_page(), "patient")
    guest.goto(f"/join/{meeting['token']}")
    expect(guest.locator("body")).to_have_attribute("data-step", "name")
    guest.screenshot(path=str(shots / "join-name.png"), full_page=True)
    guest.get_by_label("Your name").fill("Alex Test")
    guest.get_by_role("button", name="Continue").click()
    pass_check(guest, shots, "join")
    guest.screenshot(path=str(shots / "join-waiting.png"), full_page=True)

    # The dashboard followed the guest's presence live: entered, then check passed.
    expect(row).to_have_attribute("data-indicator", "check_passed")
    expect(row.locator(".indicator-cell")).to_contain_text("Media check passed")

    waiting = room.locator("#lobby-list li.lobby-guest", has_text="Alex Test")
    expect(waiting).to_have_attribute("data-indicator", "check_passed")
    expect(waiting.locator(".indicator")).to_contain_text("✓")
    room.get_by_label("Message to waiting guests").fill("Running 2 minutes late")
    room.get_by_role("button", name="Send message").click()
    expect(guest.locator("#host-message")).to_contain_text("Running 2 minutes late")
    room.screenshot(path=str(shots / "room-lobby.png"), full_page=True)

    waiting.get_by_role("button", name="Admit Alex Test").click()
    expect(guest.locator("body")).to_have_attribute(
        "data-call-state", "connected", timeout=CONNECT_TIMEOUT
    )
    expect(room.locator("body")).to_have_attribute(
        "data-call-state", "connected", timeout=CONNECT_TIMEOUT
    )
    expect(room.locator("#lobby-list")).not_to_contain_text("Alex Test")
    expect(room.locator("#in-call-list")).to_contain_text("Alex Test")
    guest.screenshot(path=str(shots / "join-call.png"), full_page=True)
    room.screenshot(path=str(shots / "room-call.png"), full_page=True)

    expect(row).to_have_attribute("data-status", "live", timeout=CONNECT_TIMEOUT)
    expect(row.locator(".status-cell")).to_contain_text("In progress")
    dashboard.screenshot(path=str(shots / "dashboard-live.png"), full_page=True)

    # The link is used: another device gets the one uniform error.
    thief = console.watch(devices.new().new_page(), "other-device")
    thief.goto(f"/join/{meeting['token']}")
    thief.get_by_label("Your name").fill("Someone Else")
    thief.get_by_role("button", name="Continue").click()
    expect(thief.locator("body")).to_have_attribute("data-error", "token_invalid")
    heading = thief.get_by_role("heading", name="We could not open your appointment")
    expect(heading).to_be_visible()
    expect(thief.locator("#ended-text")).to_contain_text(UNIFORM)
    thief.screenshot(path=str(shots / "join-used-link.png"), full_page=True)

    # The patient leaves; the clinician's call goes back to waiting for someone.
    guest.get_by_role("button", name="Leave").click()
    expect(guest.get_by_role("heading", name="You have left")).to_be_visible()
    expect(room.locator("#in-call-list")).not_to_contain_text("Alex Test")


def test_guest_key_on_the_room_page(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    meeting = in_user_rooms(demo)[1]
    guest_context = devices.new()
    phone = devices.new(width=390, height=844)
    page = console.watch(guest_context.new_page(), "key-guest")
    # Route the page's websockets through Playwright so the test can drop one.
    sockets: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        route.connect_to_server()
        sockets.append(route)

    page.route_web_socket("**/ws", through)
    page.goto(f"/r/{meeting['room']}")
    expect(page.locator("body")).to_have_attribute("data-view", "guest")
    expect(page.get_by_role("heading", name="Enter your guest key")).to_be_visible()

    # A wrong key gets the uniform error and the form stays usable.
    page.get_by_label("Guest key", exact=True).fill("ZZZZ-ZZZZ")
    page.get_by_label("Your name").fill("Jordan Test")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#alert")).to_contain_text(UNIFORM)
    page.screenshot(path=str(shots / "room-guest-wrong-key.png"), full_page=True)

    page.get_by_label("Guest key", exact=True).fill(meeting["guest_key"].lower().replace("-", " "))
    page.get_by_role("button", name="Continue").click()
    pass_check(page, shots, "room-guest")
    page.screenshot(path=str(shots / "room-guest-waiting.png"), full_page=True)

    # A dropped socket comes back with the resume secret and keeps the place in the queue.
    sockets[-1].close(code=4001, reason="dropped by the test")
    expect(page.locator("body")).to_have_attribute("data-socket", "reconnecting")
    expect(page.locator("body")).to_have_attribute("data-socket", "open")
    expect(page.locator("#status")).to_have_text("Reconnected.")
    expect(page.locator("body")).to_have_attribute("data-step", "waiting")

    # Phone width: the guest-key entry still reads well and nothing overflows sideways.
    small = console.watch(phone.new_page(), "phone")
    small.goto(f"/r/{meeting['room']}")
    expect(small.get_by_role("heading", name="Enter your guest key")).to_be_visible()
    overflow = small.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    small.screenshot(path=str(shots / "room-guest-phone.png"), full_page=True)


def test_static_pages_render(demo: dict[str, Any], devices: Any, shots: Path, console: Any) -> None:
    context = devices.new()
    page = console.watch(context.new_page(), "pages")
    page.goto("/")
    hero = page.get_by_role("heading", name="Video appointments, with a waiting room")
    expect(hero).to_be_visible()
    page.screenshot(path=str(shots / "index.png"), full_page=True)

    page.goto("/dashboard")
    page.wait_for_url("**/login?next=%2Fdashboard")
    page.get_by_label("Email").fill("nobody@example.org")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#alert")).to_contain_text("do not match")
    page.screenshot(path=str(shots / "login.png"), full_page=True)

    manager = next(s for s in demo["staff"] if s.get("role") == "manager")
    page.get_by_label("Email").fill(manager["email"])
    page.get_by_label("Password").fill(manager["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard")
    page.goto("/manage")
    expect(page.locator("#clients tr[data-client]").first).to_be_visible()
    page.screenshot(path=str(shots / "manage.png"), full_page=True)


def test_new_meeting_shows_its_credentials_once(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    page = overview_as_member(demo, devices, console, "new-meeting")

    page.get_by_label("Guest name").fill("Pat Browser")
    page.get_by_label("Guest email").fill("pat.browser@example.org")
    expect(page.locator("#nm-type option")).not_to_have_count(1)  # the team's types loaded
    page.get_by_role("button", name="Create meeting").click()
    expect(page.locator("#new-link")).to_contain_text("/join/")
    expect(page.locator("#new-key")).to_have_text(re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$"))
    expect(page.locator("#meetings tr", has_text="Pat Browser")).to_have_count(1)
    page.screenshot(path=str(shots / "dashboard-new-meeting.png"), full_page=True)
