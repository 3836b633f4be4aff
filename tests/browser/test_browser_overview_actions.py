"""The meetings overview's actions in Chromium: sortable columns, reschedule,
assign to a colleague and cancel, each through the page, checked against the REST
API and kept live on the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_browser_visit import overview_as_member

pytestmark = pytest.mark.browser


def _guests(page: Page) -> list[str]:
    names: list[str] = page.eval_on_selector_all(
        "#meetings tr[data-meeting] td:nth-child(3)",
        "cells => cells.map(c => c.firstChild.textContent)",
    )
    return names


def test_sort_reschedule_assign_and_cancel(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    page = overview_as_member(demo, devices, console, "overview")
    rows = page.locator("#meetings tr[data-meeting]")
    expect(rows.first).to_be_visible()

    # most recent first by default; Guest sorts by name, and again reverses
    time = page.locator('th[data-sort="time"]')
    expect(time).to_have_attribute("aria-sort", "descending")
    guest = page.locator('th[data-sort="guest"]')
    guest.get_by_role("button").click()
    expect(guest).to_have_attribute("aria-sort", "ascending")
    names = _guests(page)
    assert names == sorted(names) and len(names) >= 2, names
    guest.get_by_role("button").click()
    expect(guest).to_have_attribute("aria-sort", "descending")
    assert _guests(page) == sorted(names, reverse=True)
    expect(time).not_to_have_attribute("aria-sort", "descending")

    me = page.request.get("/api/me").json()["staff"]["id"]
    meeting = max((m for m in demo["meetings"] if m["host"] == me), key=lambda m: m["start"])
    row = page.locator(f'tr[data-meeting="{meeting["id"]}"]')
    row.get_by_role("button", name=re.compile("Show the details")).click()
    details = page.locator(f'tr[data-details="{meeting["id"]}"]')

    # reschedule to the day after tomorrow, 10:00 in the page's time zone
    when = page.evaluate(
        """() => { const d = new Date(Date.now() + 2 * 86400000);
                   const p = (n) => String(n).padStart(2, "0");
                   return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T10:00`; }"""
    )
    details.get_by_label("New date and time").fill(when)
    details.get_by_role("button", name="Reschedule").click()
    expect(page.locator("#status")).to_have_text("Rescheduled: a new link was issued.")
    moved = page.request.get(f"/api/meetings/{meeting['id']}").json()["meeting"]
    local = page.evaluate(f"new Date('{when}').toISOString()")
    assert moved["start"] == local.replace(".000Z", "Z"), (moved["start"], local)

    # assign to a colleague
    colleague = details.get_by_label("Colleague")
    options = colleague.locator("option").all_inner_texts()
    other = next(o for o in options if o and o != colleague.locator("option:checked").inner_text())
    colleague.select_option(label=other)
    # a live change to another meeting (its host writes a summary) re-renders the
    # overview before the click: the colleague chosen, not yet assigned, stays chosen
    colleague.evaluate("el => { el.dataset.rendered = 'before'; }")
    elsewhere = next(m for m in demo["meetings"] if m["host"] == me and m["id"] != meeting["id"])
    written = page.request.post(
        f"/api/meetings/{elsewhere['id']}/summary",
        data={"text": "Rest the knee."},
        headers={"Origin": demo["url"]},
    )
    assert written.ok, written.text()
    expect(details.locator('select[data-rendered="before"]')).to_have_count(0)
    expect(colleague.locator("option:checked")).to_have_text(other)
    details.get_by_role("button", name="Assign").click()
    expect(page.locator("#status")).to_have_text("Assigned.")
    assert page.request.get(f"/api/meetings/{meeting['id']}").json()["meeting"]["host"] != me

    # cancel, after the confirmation: the row shows it at once
    page.once("dialog", lambda dialog: dialog.accept())
    details.get_by_role("button", name="Cancel meeting").click()
    expect(row).to_have_attribute("data-status", "cancelled")
    assert page.request.get(f"/api/meetings/{meeting['id']}").json()["meeting"]["status"] == (
        "cancelled"
    )
    page.screenshot(path=str(shots / "overview-actions.png"), full_page=True)
