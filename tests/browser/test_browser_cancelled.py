"""A patient waiting in real Chromium when the clinic cancels the meeting: the page
says the appointment was cancelled and keeps nothing of the visit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_browser_visit import pass_check, staff_for

pytestmark = pytest.mark.browser


def test_a_waiting_patient_sees_the_cancellation(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    meeting = next(
        m for m in sorted(demo["meetings"], key=lambda m: m["start"]) if m["room"] == "dr-ada-jones"
    )
    clinician = staff_for(demo, meeting, devices)
    context = devices.new()
    page = console.watch(context.new_page(), "patient")
    page.goto(f"/join/{meeting['token']}")
    page.get_by_label("Your name").fill("Avery Cancelled")
    page.get_by_role("button", name="Continue").click()
    pass_check(page, shots, "cancelled")

    # the clinic cancels (the overview's action, through the REST API, with its cookie)
    cancelled = clinician.request.post(f"/api/meetings/{meeting['id']}/cancel")
    assert cancelled.ok, cancelled.text()

    expect(page.get_by_role("heading", name="Your appointment was cancelled")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-error", "cancelled")
    page.screenshot(path=str(shots / "cancelled.png"), full_page=True)
    kept = page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
    assert meeting["token"] not in kept and "Avery Cancelled" not in json.dumps(kept)
