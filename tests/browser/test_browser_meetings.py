"""The meetings overview in Chromium: the guest key shown again, a row's details
(link, copy, the history of messages to the guest), the calendar file downloaded
and parsed, and a re-issue that replaces the key and link."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import icalendar
from playwright.sync_api import expect

from tests.browser.test_browser_visit import overview_as_member

KEY = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$")


def test_overview_details_calendar_and_reissue(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any, tmp_path: Path
) -> None:
    page = overview_as_member(demo, devices, console, "overview")

    page.get_by_label("Guest name").fill("Pat Overview")
    page.get_by_label("Guest email").fill("pat.overview@example.org")
    page.get_by_label("Guest phone (optional)").fill("+44 20 7946 0999")
    page.get_by_role("button", name="Create meeting").click()
    expect(page.locator("#new-key")).to_have_text(KEY)
    key = page.locator("#new-key").inner_text()
    link = page.locator("#new-link").inner_text()
    row = page.locator("#meetings tr[data-meeting]", has_text="Pat Overview")
    # the key is in the overview, and stays after a reload (sealed at rest, shown again)
    expect(row.locator(".guest-key")).to_have_text(key)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "true")
    expect(row.locator(".guest-key")).to_have_text(key)
    meeting_id = row.get_attribute("data-meeting")
    assert meeting_id

    # the plus sign: phone, link, and the history (no SMTP in the demo: scheduled)
    row.get_by_role("button", name=re.compile("Show the details")).click()
    details = page.locator(f'tr[data-details="{meeting_id}"]')
    expect(details.locator(".meeting-link")).to_have_text(link)
    expect(details).to_contain_text("+44 20 7946 0999")
    history = details.locator("table.history tbody tr")
    expect(history.first).to_have_attribute("data-trigger", "confirmation")
    expect(history.first).to_have_attribute("data-state", "scheduled")
    expect(history.first).to_contain_text("pat.overview@example.org")
    page.screenshot(path=str(shots / "overview-details.png"), full_page=True)

    # the calendar file, as a browser downloads it
    with page.expect_download() as download:
        details.get_by_role("link", name="Add to calendar (.ics)").click()
    saved = tmp_path / "meeting.ics"
    download.value.save_as(saved)
    calendar = icalendar.Calendar.from_ical(saved.read_bytes())
    (event,) = calendar.walk("VEVENT")
    assert str(event["url"]) == link
    assert str(event["uid"]) == f"{meeting_id}@vestibule"

    # re-issue: a new key and link replace the old ones in the row and the details
    page.once("dialog", lambda dialog: dialog.accept())
    details.get_by_role("button", name="Re-issue link and key").click()
    expect(row.locator(".guest-key")).not_to_have_text(key)
    expect(row.locator(".guest-key")).to_have_text(KEY)
    expect(details.locator(".meeting-link")).not_to_have_text(link)
    expect(details.locator(".meeting-link")).to_contain_text("/join/")

    # the demo's own meetings (the member's) show their keys too
    me = page.request.get("/api/me").json()["staff"]["id"]
    hosted = [m for m in demo["meetings"] if m["host"] == me]
    assert hosted
    for meeting in hosted:
        shown = page.locator(f'tr[data-meeting="{meeting["id"]}"] .guest-key')
        expect(shown).to_have_text(meeting["guest_key"])
