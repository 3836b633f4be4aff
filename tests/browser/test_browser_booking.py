"""Online booking in Chromium: a clinician offers a meeting type and sets their
working hours on the meeting types page; a patient books a free time on the
clinician's public page; the confirmation with the join link arrives at a real
SMTP server (aiosmtpd, in this process) that the demo server sends to."""

from __future__ import annotations

import email
import re
import threading
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from playwright.sync_api import expect

from tests.browser.conftest import _free_port, serve_demo
from tests.browser.test_browser_visit import overview_as_member

#: how long the confirmation may take to arrive (the sender wakes on booking)
MAIL_WAIT = 20.0


class Inbox:
    """An aiosmtpd handler keeping every message; tests wait on a condition."""

    def __init__(self) -> None:
        self.port = 0
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content
        assert isinstance(raw, bytes)
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.changed:
            self.received.append((list(envelope.rcpt_tos), parsed))
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.received) >= count, MAIL_WAIT)


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[dict[str, Any]]:
    """The demo server for this module, sending its mail to the inbox."""
    env = {"VESTIBULE_SMTP_URL": f"smtp://127.0.0.1:{inbox.port}?starttls=0"}
    with serve_demo(tmp_path_factory.mktemp("booking-demo"), env=env) as summary:
        yield summary


def test_a_patient_books_online_and_the_confirmation_arrives(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any, inbox: Inbox
) -> None:
    # the clinician: offer the Consultation online, with an address, and set hours
    clinician = overview_as_member(demo, devices, console, "clinician")
    clinician.get_by_role("link", name="Meeting types").click()
    clinician.wait_for_url("**/types")
    clinician.get_by_role("button", name="Edit Consultation").click()
    clinician.get_by_label("Patients may book it online").check()
    clinician.get_by_label("Address").fill("1 Quay Street, Harbour Town")
    clinician.get_by_role("button", name="Save changes").click()
    row = clinician.locator('#types tr[data-type="demo-consult"]')
    expect(row).to_contain_text("Yes")
    expect(row).to_contain_text("1 Quay Street, Harbour Town")
    clinician.get_by_label("Time zone").fill("UTC")
    for weekday in range(7):
        clinician.locator(f"#wh-{weekday}-on").check()
        clinician.locator(f"#wh-{weekday}-start").fill("06:00")
        clinician.locator(f"#wh-{weekday}-end").fill("22:00")
    clinician.get_by_role("button", name="Save working hours").click()
    expect(clinician.locator("#status")).to_have_text("Working hours saved.")
    booking_url = clinician.locator("#booking-link").get_attribute("href")
    assert booking_url and "/book/" in booking_url
    clinician.screenshot(path=str(shots / "meeting-types.png"), full_page=True)

    # the patient, on another device, with no login
    patient = console.watch(devices.new(width=480, height=900).new_page(), "patient")
    patient.goto(booking_url)
    expect(patient.locator("body")).to_have_attribute("data-step", "type")
    expect(patient.locator("#legal")).not_to_be_empty()
    patient.get_by_role("button", name="Choose Consultation").click()
    expect(patient.locator("body")).to_have_attribute("data-step", "slot")
    first = patient.locator("button.slot").first
    start = first.get_attribute("data-start")
    assert start
    patient.screenshot(path=str(shots / "booking-page.png"), full_page=True)
    first.click()
    patient.get_by_label("Your name").fill("Pat Online")
    patient.get_by_label("Your email").fill("pat.online@example.org")
    patient.get_by_label("Your phone (optional)").fill("+44 20 7946 0123")
    patient.get_by_role("button", name="Book this appointment").click()
    expect(patient.locator("body")).to_have_attribute("data-step", "booked")
    expect(patient.locator("#booked-summary")).to_contain_text("pat.online@example.org")
    expect(patient.locator("#booked-summary")).to_contain_text("1 Quay Street, Harbour Town")
    patient.screenshot(path=str(shots / "booking-done.png"), full_page=True)

    # the confirmation: to the patient, with the join link, the address and the .ics
    inbox.wait_for(1)
    recipients, message = inbox.received[0]
    assert recipients == ["pat.online@example.org"]
    text_part = message.get_body(preferencelist=("plain",))
    assert text_part is not None
    text = str(text_part.get_content())
    assert re.search(re.escape(demo["url"]) + r"/join/[A-Za-z0-9_-]{20,}", text), text
    assert "Address: 1 Quay Street, Harbour Town" in text
    kinds = [part.get_content_type() for part in message.iter_attachments()]
    assert "text/calendar" in kinds

    # the time is taken: the clinician's overview lists the booking, marked as booked
    # online (a meeting the practice booked is not)
    clinician.goto("/dashboard")
    booked_row = clinician.locator("#meetings tr[data-meeting]", has_text="Pat Online")
    expect(booked_row).to_be_visible()
    expect(booked_row.locator(".booked-online")).to_have_text("Booked online")
    practice_row = clinician.locator("#meetings tr[data-meeting]", has_text="Alex Morgan")
    expect(practice_row).to_be_visible()
    expect(practice_row.locator(".booked-online")).to_have_count(0)
    booked_row.get_by_role("button", name="Show the details").click()
    expect(clinician.locator("tr.details")).to_contain_text("Online, by the patient")
    clinician.screenshot(path=str(shots / "overview-booked-online.png"), full_page=True)

    # removing types: an unused one is deleted, the booked Consultation retired
    clinician.goto("/types")
    clinician.get_by_label("Label").fill("Spare slot")
    clinician.get_by_role("button", name="Create meeting type").click()
    expect(clinician.locator("#types tr", has_text="Spare slot")).to_be_visible()
    clinician.get_by_role("button", name="Remove Spare slot").click()
    expect(clinician.locator("#status")).to_have_text("Spare slot deleted.")
    expect(clinician.locator("#types tr", has_text="Spare slot")).to_have_count(0)
    clinician.get_by_role("button", name="Remove Consultation").click()
    expect(clinician.locator("#status")).to_contain_text("retired, not deleted")
    expect(row).to_have_attribute("data-retired", "true")
    # the page offers what is left: the demo's First visit, no longer the Consultation
    patient.goto(booking_url)
    expect(patient.locator("body")).to_have_attribute("data-step", "type")
    expect(patient.get_by_role("button", name="Choose First visit")).to_be_visible()
    expect(patient.get_by_role("button", name="Choose Consultation")).to_have_count(0)
