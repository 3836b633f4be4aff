"""Team administration in real Chromium: an administrator invites a clinician
from the team page, the invitation mail reaches a real SMTP server (aiosmtpd),
the clinician opens its link, chooses a password and lands in their own room
as its host. Then the managing account's pages: the client list with plans,
editing a client account, and the audit of a view-as."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import Devices, serve_demo

pytestmark = pytest.mark.browser

WELCOME = re.compile(r"https?://[^/\s]+(/welcome/[A-Za-z0-9_-]{20,})")
MAIL_WAIT = 30.0


class Mailbox:
    """An aiosmtpd handler keeping every accepted message; tests wait on an event."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content
        assert isinstance(raw, bytes)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.arrived.set()
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(_free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[dict[str, Any]]:
    """The demo server sending its mail to ``mailbox``."""
    env = {"VESTIBULE_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}?starttls=0"}
    with serve_demo(tmp_path_factory.mktemp("demo-team"), env=env) as summary:
        yield summary


def logged_in(demo: dict[str, Any], devices: Devices, role: str) -> BrowserContext:
    staff = next(s for s in demo["staff"] if s.get("role", "member") == role)
    context = devices.new()
    response = context.request.post(
        "/api/login", data={"email": staff["email"], "password": staff["password"]}
    )
    assert response.ok, response.text()
    return context


def test_an_invited_clinician_sets_a_password_and_hosts_their_room(
    demo: dict[str, Any], devices: Devices, mailbox: Mailbox, shots: Path, console: Any
) -> None:
    admin = console.watch(logged_in(demo, devices, "member").new_page(), "admin")
    admin.goto("/dashboard")
    admin.get_by_role("navigation", name="Staff").get_by_role("link", name="Team").click()
    expect(admin.locator("body")).to_have_attribute("data-admin", "yes")
    expect(admin.locator("#members tr")).to_have_count(2)

    admin.fill("#inv-title", "Dr")
    admin.fill("#inv-name", "Lin Park")
    admin.fill("#inv-email", "lin.park@demo.vestibule.test")
    admin.fill("#inv-speciality", "Dermatology")
    admin.get_by_role("button", name="Send invitation").click()
    expect(admin.locator("#status")).to_have_text(
        "Invitation sent to lin.park@demo.vestibule.test."
    )
    invited = admin.locator("#members tr", has_text="Lin Park")
    expect(invited).to_have_attribute("data-state", "invited")
    admin.screenshot(path=str(shots / "team.png"), full_page=True)

    assert mailbox.arrived.wait(MAIL_WAIT), "no invitation mail arrived"
    mail = mailbox.messages[-1]
    assert mail["To"] == "lin.park@demo.vestibule.test"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    match = WELCOME.search(str(body.get_content()))
    assert match is not None, "the invitation carries no link"

    clinician = console.watch(devices.new().new_page(), "clinician")
    clinician.goto(match.group(1))
    expect(clinician.locator("#welcome-title")).to_have_text("Welcome, Lin Park")
    clinician.fill("#password", "lins own password")
    clinician.fill("#password-again", "lins own password")
    clinician.screenshot(path=str(shots / "welcome.png"))
    clinician.get_by_role("button", name="Set password and open my room").click()
    expect(clinician).to_have_url(re.compile(r"/r/lin-park$"))
    expect(clinician.locator("body")).to_have_attribute("data-role", "host", timeout=20_000)

    admin.reload()
    expect(admin.locator("#members tr", has_text="Lin Park")).to_have_attribute(
        "data-state", "active"
    )
    # the link was single use
    again = devices.new().new_page()
    again.goto(match.group(1))
    expect(again.locator("#welcome-title")).to_have_text("This link does not work")


def test_the_managing_account_edits_a_client_and_reads_the_audit(
    demo: dict[str, Any], devices: Devices, shots: Path, console: Any
) -> None:
    page = console.watch(logged_in(demo, devices, "manager").new_page(), "manager")
    page.goto("/manage")
    row = page.locator("#clients tr").first
    expect(row).to_contain_text("Clinic")
    page.screenshot(path=str(shots / "manage-clients.png"), full_page=True)

    row.get_by_role("button", name=re.compile("^Edit ")).click()
    expect(page.locator("#edit")).to_be_visible()
    page.fill("#ec-reference", "HP-2027")
    page.locator("#edit").screenshot(path=str(shots / "manage-edit.png"))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#status")).to_contain_text("saved")
    expect(row).to_contain_text("HP-2027")

    row.get_by_role("button", name=re.compile("^View as ")).click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("region", name="Viewing as")).to_be_visible()
    # the client's working overview, fed live over /ws/dashboard
    expect(page.locator("#meetings tr[data-meeting]").first).to_be_visible()
    page.get_by_role("button", name="End viewing as").click()
    expect(page.get_by_role("region", name="Viewing as")).to_have_count(0)

    page.goto("/manage/audit")
    entries = page.locator("#entries tr")
    expect(entries.first).to_have_attribute("data-action", "view_as.end")
    expect(page.locator('#entries tr[data-action="client.edit"]')).to_have_count(1)
    page.screenshot(path=str(shots / "manage-audit.png"), full_page=True)
