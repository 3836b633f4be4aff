"""The patient page leaves no credential behind, in real Chromium.

A shared computer: the link token leaves the address bar as soon as the page
loads, what a reload needs lives in the tab's sessionStorage (a reload keeps the
place in the waiting room), nothing lives in localStorage, and when the visit is
over (the patient left, or the host closed their place) the storage is empty and
the same browser opening the page again puts nobody in the waiting room.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_browser_visit import pass_check, staff_for

pytestmark = pytest.mark.browser

UNIFORM = "This link or key cannot be used"


def joinable(demo: dict[str, Any]) -> list[dict[str, Any]]:
    """The demo's meetings whose links work now, soonest first; each test takes its own."""
    return sorted(demo["meetings"], key=lambda m: m["start"])[:3]


def storage(page: Page) -> dict[str, dict[str, str]]:
    """Everything the page's origin keeps in localStorage and sessionStorage."""
    dump: dict[str, dict[str, str]] = page.evaluate(
        """() => {
             const all = (s) => Object.fromEntries(Object.keys(s).map((k) => [k, s.getItem(k)]));
             return { local: all(localStorage), session: all(sessionStorage) };
           }"""
    )
    return dump


def visit(page: Page) -> dict[str, Any]:
    stored = storage(page)["session"].get("vestibule.visit")
    assert stored, storage(page)
    value: dict[str, Any] = json.loads(stored)
    return value


def assert_nothing_kept(page: Page, *secrets: str) -> None:
    dump = storage(page)
    assert dump["local"] == {}, dump
    assert "vestibule.visit" not in dump["session"], dump
    assert "vestibule.resume" not in dump["session"], dump
    text = json.dumps(dump)
    for secret in secrets:
        assert secret not in text, dump


def test_link_token_leaves_the_address_bar_a_reload_resumes_and_leaving_forgets(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    meeting = joinable(demo)[2]
    context = devices.new()
    page = console.watch(context.new_page(), "patient")
    page.goto(f"/join/{meeting['token']}")
    expect(page.locator("body")).to_have_attribute("data-step", "name")
    assert page.url == f"{demo['url']}/join", page.url
    assert meeting["token"] not in page.evaluate("location.href + history.state")
    assert visit(page) == {"mode": "link", "token": meeting["token"]}
    assert storage(page)["local"] == {}

    page.get_by_label("Your name").fill("Casey Storage")
    page.get_by_role("button", name="Continue").click()
    pass_check(page, shots, "storage-link")
    stored = visit(page)
    assert stored["token"] == meeting["token"] and stored["name"] == "Casey Storage"
    rejoin = stored["rejoin"]
    assert rejoin and storage(page)["local"] == {}

    # A reload of the cleaned address comes back to the same place, without the form.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-step", "waiting")
    expect(page.get_by_role("heading", name="You are in the waiting room")).to_be_visible()
    assert page.url == f"{demo['url']}/join"
    assert visit(page)["rejoin"] == rejoin

    page.get_by_role("button", name="Leave the waiting room").click()
    expect(page.get_by_role("heading", name="You have left")).to_be_visible()
    assert_nothing_kept(page, meeting["token"], rejoin, "Casey Storage")

    # The next person at this computer: the cleaned address opens nothing...
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-error", "no_link")
    expect(page.locator("body")).to_have_attribute("data-step", "ended")
    # ...and the link from the history is a used link, not this patient's place.
    again = console.watch(context.new_page(), "next-person")
    again.goto(f"/join/{meeting['token']}")
    expect(again.locator("body")).to_have_attribute("data-step", "name")
    expect(again.locator("#status")).to_have_text("")  # not "Reconnecting…"
    again.get_by_label("Your name").fill("Someone Else")
    again.get_by_role("button", name="Continue").click()
    expect(again.locator("body")).to_have_attribute("data-error", "token_invalid")
    expect(again.locator("#ended-text")).to_contain_text(UNIFORM)
    assert_nothing_kept(again, meeting["token"], rejoin, "Casey Storage")
    again.screenshot(path=str(shots / "storage-link-reopened.png"), full_page=True)


def test_the_host_closing_the_place_clears_the_storage(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    meeting = next(m for m in joinable(demo) if m["room"] == "dr-ada-jones")
    clinician = staff_for(demo, meeting, devices)
    room = console.watch(clinician.new_page(), "clinician")
    room.goto(f"/r/{meeting['room']}")
    expect(room.locator("body")).to_have_attribute("data-role", "host")

    context = devices.new()
    page = console.watch(context.new_page(), "patient")
    page.goto(f"/join/{meeting['token']}")
    page.get_by_label("Your name").fill("Robin Denied")
    page.get_by_role("button", name="Continue").click()
    pass_check(page, shots, "storage-denied")
    rejoin = visit(page)["rejoin"]

    room.on("dialog", lambda dialog: dialog.accept())
    waiting = room.locator("#lobby-list li.lobby-guest", has_text="Robin Denied")
    waiting.get_by_role("button", name="Deny Robin Denied").click()
    expect(page.get_by_role("heading", name="Your visit has ended")).to_be_visible()
    assert_nothing_kept(page, meeting["token"], rejoin, "Robin Denied")
    expect(page.locator("#rejoin")).to_have_count(0)

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-error", "no_link")


def test_guest_key_visit_lives_in_the_tab_only(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    meeting = next(m for m in joinable(demo) if m["room"] == "dr-sam-smith")
    context = devices.new()
    page = console.watch(context.new_page(), "key-guest")
    page.goto(f"/r/{meeting['room']}")
    expect(page.get_by_role("heading", name="Enter your guest key")).to_be_visible()
    # What an earlier version of the page left on this computer is removed at load.
    page.evaluate("localStorage.setItem('vestibule.rejoin.key.x.Y', '{\"name\": \"Old\"}')")
    page.reload()
    expect(page.get_by_role("heading", name="Enter your guest key")).to_be_visible()
    assert storage(page)["local"] == {}

    page.get_by_label("Guest key", exact=True).fill(meeting["guest_key"])
    page.get_by_label("Your name").fill("Jamie Key")
    page.get_by_role("button", name="Continue").click()
    pass_check(page, shots, "storage-key")
    stored = visit(page)
    assert stored["mode"] == "key" and stored["room"] == meeting["room"]
    rejoin = stored["rejoin"]
    assert storage(page)["local"] == {}

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-step", "waiting")

    page.get_by_role("button", name="Leave the waiting room").click()
    expect(page.get_by_role("heading", name="You have left")).to_be_visible()
    key = meeting["guest_key"].replace("-", "")
    assert_nothing_kept(page, key, meeting["guest_key"], rejoin, "Jamie Key")

    # Left by mistake: "Rejoin" on this page comes back (the check had passed)...
    page.get_by_role("button", name="Rejoin").click()
    expect(page.locator("body")).to_have_attribute("data-step", "waiting")
    assert visit(page)["rejoin"] == rejoin
    # ...and leaving again forgets it again.
    page.get_by_role("button", name="Leave the waiting room").click()
    expect(page.get_by_role("heading", name="You have left")).to_be_visible()
    assert_nothing_kept(page, key, meeting["guest_key"], rejoin, "Jamie Key")

    page.reload()
    expect(page.get_by_role("heading", name="Enter your guest key")).to_be_visible()
    expect(page.locator("#status")).to_have_text("")
    expect(page.locator("body")).to_have_attribute("data-step", "name")
