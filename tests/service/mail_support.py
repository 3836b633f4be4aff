"""A real SMTP server for the mail tests, and the REST world with mail on.

``Inbox`` is an aiosmtpd handler served by aiosmtpd's own SMTP protocol on a
free loopback port, in the test's event loop: every message the server
accepts is parsed and kept, and tests wait on the count they expect (a
condition with a timeout), never on time. ``fail_with`` makes it answer DATA
with an SMTP error instead (e.g. ``451 4.3.0 try again later``).

``mail_api`` starts the real app as tests/service/api_support.make_api does
(the same seeded world, a FixedClock) with ``smtp_url`` pointing at an inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
from aiosmtpd.smtp import SMTP, Envelope, Session

from signalling.bootstrap import create_app
from signalling.clock import FixedClock
from signalling.keys import OUTBOX
from signalling.outbox import Outbox
from signalling.settings import Settings
from tests.service.api_support import BASE_URL, JWT_SECRET, NOW, SECRET, Api, _seed

WAIT = 5.0
LINK = re.compile(re.escape(BASE_URL) + r"/join/([A-Za-z0-9_-]{20,})")


@dataclass
class Received:
    envelope_to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None
        return str(part.get_content())

    def links(self) -> list[str]:
        """The link tokens in the text part, in order."""
        return LINK.findall(self.text)

    def calendar(self) -> icalendar.Calendar | None:
        for part in self.message.iter_attachments():
            if part.get_content_type() == "text/calendar":
                return icalendar.Calendar.from_ical(part.get_payload(decode=True))
        return None


@dataclass
class Inbox:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    #: DATA commands seen, accepted or not
    attempts: int = 0
    fail_with: str | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        async with self._changed:
            self.attempts += 1
            answer = self.fail_with
            if answer is None:
                raw = envelope.content
                assert isinstance(raw, bytes)
                parsed = email.message_from_bytes(raw, policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                self.received.append(Received(list(envelope.rcpt_tos), parsed))
            self._changed.notify_all()
        return answer or "250 OK"

    async def until(self, *, received: int | None = None, attempts: int | None = None) -> None:
        """Wait until at least so many messages were accepted (or attempted)."""

        def met() -> bool:
            return (received is None or len(self.received) >= received) and (
                attempts is None or self.attempts >= attempts
            )

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(met), WAIT)


@contextlib.asynccontextmanager
async def serving_inbox() -> AsyncIterator[Inbox]:
    """An Inbox behind aiosmtpd's SMTP protocol on a free loopback port."""
    box = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(box, hostname="mail.test", loop=loop), "127.0.0.1", 0
    )
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()


def mail_settings(tmp_path: Path, inbox: Inbox | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_path": str(tmp_path / "mail.sqlite3"),
        "secret": SECRET,
        "jwt_secret": JWT_SECRET,
        "public_url": BASE_URL,
        "mediacheck": False,
        "data_key": "q3VJ0tD1cO0m6b0lYcW3dFv8m2m9Xq2R8yqz7l4uV5Q=",
        "mail_from": "Harbour Clinic <desk@harbour.example>",
        "smtp_url": "" if inbox is None else f"smtp://127.0.0.1:{inbox.port}?starttls=0",
    }
    values.update(overrides)
    return Settings(**values)


async def mail_api(
    aiohttp_client: Any,
    settings: Settings,
    *,
    clock: FixedClock | None = None,
    seed: bool = True,
) -> Api:
    """The app on ``settings`` (the seeded world unless ``seed`` is False: a
    restart on a database that has it already)."""
    clock = clock or FixedClock(NOW)
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    api = Api(client, settings, clock)
    if seed:
        await _seed(api)
    else:
        from tests.service import api_support

        # the same ids as the first start: rebuild the lookups without writing
        fresh = Api(client, settings, clock)
        for staff_id in api_support.EMAILS:
            fresh.staff[staff_id] = await api.store.get_staff(staff_id)
        for team_id in (api_support.TEAM_A, api_support.TEAM_B, api_support.TEAM_C):
            for room in await api.store.list_rooms(team_id):
                fresh.rooms[room.slug] = room
        api = fresh
    return api


def outbox_of(api: Api) -> Outbox:
    outbox: Outbox = api.app[OUTBOX]
    return outbox
