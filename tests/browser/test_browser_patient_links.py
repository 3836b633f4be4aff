"""Patients act from what they receive, in Chromium, against the demo server
sending real mail to an SMTP server (aiosmtpd) the test reads:

- a clinician books a meeting with times to choose from on the overview; the
  guest's message carries the pick link; the guest opens it, the token leaves
  the address bar, they pick a time, and the confirmation with the join link
  and the calendar file arrives; the overview's details show the history;
- a join link opened hours before its window says when it opens;
- a manager viewing as a client account sees its meetings live and books one
  for a clinician they pick.
"""

from __future__ import annotations

import email
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from playwright.sync_api import Page, expect

from tests.browser.conftest import _free_port, serve_demo
from tests.browser.test_browser_visit import overview_as_member

#: how long a message may take to arrive (the outbox sends as soon as it is scheduled)
MAIL_WAIT = 20.0


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every message; tests wait on a condition."""

    messages: list[EmailMessage] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content
        assert isinstance(raw, bytes)
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.changed:
            self.messages.append(parsed)
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, to: str, subject: str) -> EmailMessage:
        """The first message to ``to`` whose subject starts with ``subject``."""

        def found() -> EmailMessage | None:
            for message in self.messages:
                if message["To"] == to and str(message["Subject"]).startswith(subject):
                    return message
            return None

        with self.changed:
            assert self.changed.wait_for(lambda: found() is not None, MAIL_WAIT), (
                f"no {subject!r} to {to}: {[str(m['Subject']) for m in self.messages]}"
            )
            message = found()
        assert message is not None
        return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


@dataclass
class Mail:
    inbox: Inbox
    port: int


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
def demo(mail: Mail, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo server, its messages to guests sent to the inbox."""
    smtp = f"smtp://127.0.0.1:{mail.port}?starttls=0"
    with serve_demo(tmp_path_factory.mktemp("demo-mail"), "--smtp-url", smtp) as summary:
        yield summary


def test_a_guest_picks_a_proposed_time_from_their_message(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any, inbox: Inbox
) -> None:
    page = overview_as_member(demo, devices, console, "overview")
    guest = "pat.choice@example.org"
    page.get_by_label("Guest name").fill("Pat Choice")
    page.get_by_label("Guest email").fill(guest)
    page.get_by_label("Time", exact=True).select_option("slots")
    expect(page.locator("#nm-slot-list input")).to_have_count(2)
    page.get_by_role("button", name="Add a time").click()
    slots = page.locator("#nm-slot-list input")
    expect(slots).to_have_count(3)
    offered = [slots.nth(i).input_value() for i in range(3)]
    page.get_by_role("button", name="Create meeting").click()
    expect(page.locator("#new-credentials")).to_contain_text("times to choose from")
    row = page.locator("#meetings tr[data-meeting]", has_text="Pat Choice")
    expect(row).to_have_attribute("data-status", "planning")

    # the message: the times, and the pick link (no join link yet)
    offer = inbox.wait_for(guest, "Choose a time")
    body = text_of(offer)
    assert "/join/" not in body
    (link,) = re.findall(re.escape(demo["url"]) + r"/pick/[A-Za-z0-9_.-]+", body)

    # the guest's own device: the token leaves the address bar at once
    patient: Page = console.watch(devices.new(420, 860).new_page(), "patient")
    patient.goto(link)
    expect(patient.locator("body")).to_have_attribute("data-state", "offer")
    assert patient.url == f"{demo['url']}/pick"
    choices = patient.get_by_role("radio")
    expect(choices).to_have_count(3)
    patient.screenshot(path=str(shots / "pick-slots.png"), full_page=True)
    choices.nth(1).check()
    chosen_label = patient.locator("label.choice").nth(1).inner_text().strip()
    patient.get_by_role("button", name="Book this time").click()
    expect(patient.locator("body")).to_have_attribute("data-state", "chosen")
    expect(patient.locator("#chosen")).to_contain_text(chosen_label)
    patient.screenshot(path=str(shots / "pick-booked.png"), full_page=True)

    # the confirmation: the chosen time in the calendar file, with the join link
    confirmation = inbox.wait_for(guest, "Your video appointment")
    (join,) = re.findall(re.escape(demo["url"]) + r"/join/[A-Za-z0-9_-]+", text_of(confirmation))
    (attachment,) = [
        part
        for part in confirmation.iter_attachments()
        if part.get_content_type() == "text/calendar"
    ]
    calendar = icalendar.Calendar.from_ical(attachment.get_payload(decode=True))
    (event,) = calendar.walk("VEVENT")
    assert str(event["url"]) == join
    start = event.decoded("dtstart")
    assert isinstance(start, datetime)
    # the browser's local time of the second slot is the event's start
    picked = page.evaluate("(value) => new Date(value).toISOString()", offered[1])
    assert start.isoformat().replace("+00:00", ".000Z") == picked

    # a reload shows the time set; nothing is offered any more
    patient.reload()
    expect(patient.get_by_role("heading", name="A time is already set")).to_be_visible()
    expect(patient.locator("#chosen")).to_contain_text(chosen_label)
    expect(patient.get_by_role("radio")).to_have_count(0)

    # the overview: scheduled, and the history of what the guest was sent
    expect(row).to_have_attribute("data-status", "scheduled")
    row.get_by_role("button", name=re.compile("Show the details")).click()
    meeting_id = row.get_attribute("data-meeting")
    details = page.locator(f'tr[data-details="{meeting_id}"]')
    history = details.locator("table.history tbody tr")
    expect(details.locator('tr[data-trigger="proposed_slots"]')).to_have_attribute(
        "data-state", "sent"
    )
    expect(details.locator('tr[data-trigger="confirmation"]')).to_have_attribute(
        "data-state", "sent"
    )
    expect(history.filter(has_text="Times to choose from")).to_have_count(1)
    expect(details.locator(".meeting-link")).to_have_text(join)
    page.screenshot(path=str(shots / "overview-history.png"), full_page=True)


def test_a_join_link_opened_early_says_when_it_opens(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    later = max(demo["meetings"], key=lambda m: m["start"])  # hours away
    opens = datetime.fromisoformat(later["start"]) - timedelta(minutes=15)
    patient: Page = console.watch(devices.new(420, 860).new_page(), "early")
    patient.goto(later["link"])
    patient.get_by_label("Your name").fill("Sasha")
    patient.get_by_role("button", name="Continue").click()
    expect(patient.locator("body")).to_have_attribute("data-error", "link_not_open")
    expect(
        patient.get_by_role("heading", name="Your appointment has not opened yet")
    ).to_be_visible()
    shown = patient.evaluate(
        """(iso) => new Date(iso).toLocaleString(undefined, {weekday: "long", day: "numeric",
        month: "long", hour: "2-digit", minute: "2-digit", timeZoneName: "short"})""",
        opens.isoformat(),
    )
    expect(patient.locator("#ended-text")).to_have_text(
        f"This link opens at {shown}. Please come back then."
    )
    patient.screenshot(path=str(shots / "join-not-open.png"), full_page=True)
    # nothing was spent: the visit is kept for a reload, and the link still says the same
    patient.reload()
    patient.get_by_label("Your name").fill("Sasha")
    patient.get_by_role("button", name="Continue").click()
    expect(patient.locator("body")).to_have_attribute("data-error", "link_not_open")


def test_a_manager_viewing_as_books_for_a_clinician_of_the_account(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    manager = next(s for s in demo["staff"] if s.get("role") == "manager")
    page: Page = console.watch(devices.new().new_page(), "manager")
    page.goto("/login")
    page.get_by_label("Email").fill(manager["email"])
    page.get_by_label("Password").fill(manager["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard")
    page.goto("/manage")
    team = next(s["team"] for s in demo["staff"] if s.get("role") == "member")
    account = next(c for c in page.request.get("/api/clients").json()["clients"] if c["id"] == team)
    page.get_by_role("button", name=f"View as {account['name']}").click()
    page.wait_for_url("**/dashboard")
    expect(page.locator("body")).to_have_attribute("data-live", "true")
    expect(page.get_by_role("region", name="Viewing as")).to_contain_text(account["name"])
    # the account's meetings, every clinician's
    for meeting in demo["meetings"]:
        expect(page.locator(f'tr[data-meeting="{meeting["id"]}"]')).to_have_count(1)

    members = page.request.get("/api/members").json()["members"]
    clinician = members[-1]
    page.get_by_label("Guest name").fill("Kim Managed")
    page.get_by_label("Guest email").fill("kim.managed@example.org")
    page.get_by_label("Clinician").select_option(clinician["id"])
    page.get_by_role("button", name="Create meeting").click()
    expect(page.locator("#new-key")).to_have_text(re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$"))
    row = page.locator("#meetings tr[data-meeting]", has_text="Kim Managed")
    expect(row).to_have_count(1)
    meeting_id = row.get_attribute("data-meeting")
    booked = page.request.get(f"/api/meetings/{meeting_id}").json()["meeting"]
    assert booked["host"] == clinician["id"]
    page.screenshot(path=str(shots / "overview-view-as.png"), full_page=True)
