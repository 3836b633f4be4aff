"""Messages to guests as email: templates, the calendar file, the SMTP transport.

- :class:`Templates` renders a trigger's subject, text and HTML parts with
  Jinja2 in a *sandboxed* environment (a team's own template can read the
  values it is given and nothing else: no attribute of Python objects, no
  file). The shipped defaults live in ``signalling/templates/mail``
  (``<trigger>.subject.txt``, ``.txt``, ``.html``); a team's override of a
  part (rooms.outbox.TeamMessaging) replaces that part only. The HTML part is
  autoescaped; the text part and the subject are not (they are not HTML).
- :func:`calendar` is the ``.ics`` (RFC 5545, the ``icalendar`` package) with
  the join link, attached to confirmations and reminders and served by
  ``GET /api/meetings/{id}/calendar.ics``.
- :class:`SmtpTransport` sends with ``aiosmtplib`` to the server named by the
  ``smtp_url`` setting.

Nothing here logs: a message, an address, a link or a name never reaches a
log line (signalling.outbox logs ids and error classes only).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import icalendar
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from rooms.errors import Invalid
from rooms.meeting import Meeting
from rooms.outbox import TEMPLATE_PARTS, Trigger

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "mail"

#: the values every template is given (docs/operations.md lists them)
CONTEXT_NAMES = (
    "guest_name",
    "team_name",
    "team_phone",
    "host_name",
    "start",
    "start_iso",
    "duration_minutes",
    "link",
    "guest_key",
    "room_url",
    "link_opens",
    "instructions",
    "address",
    "description",
    "meeting_type",
    "dates",
    "subject",
    "slots",
    "pick_link",
    "review_link",
)


def when(at: datetime | None) -> str:
    """A time as a guest reads it: ``Tuesday 14 January 2025, 09:00 UTC``."""
    if at is None:
        return ""
    return f"{at:%A} {at.day} {at:%B %Y, %H:%M} UTC"


def span(delta: timedelta) -> str:
    """``15 minutes``, ``1 hour``, ``24 hours``, ``2 days``."""
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0 and minutes >= 48 * 60:
        n, unit = minutes // (24 * 60), "day"
    elif minutes % 60 == 0 and minutes >= 60:
        n, unit = minutes // 60, "hour"
    else:
        n, unit = minutes, "minute"
    return f"{n} {unit}{'' if n == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """The shipped templates and the sandbox that renders them and a team's own."""

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self._dir = directory
        self._text = SandboxedEnvironment(
            loader=FileSystemLoader(str(directory)),
            autoescape=False,
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._html = SandboxedEnvironment(
            loader=FileSystemLoader(str(directory)),
            autoescape=True,
            undefined=StrictUndefined,
        )
        self._from_string = functools.lru_cache(maxsize=256)(self._compile)

    def _compile(self, part: str, source: str) -> Any:
        env = self._html if part == "html" else self._text
        return env.from_string(source)

    def shipped(self, trigger: Trigger, part: str) -> str:
        """The shipped source of one part of a trigger's message."""
        suffix = {"subject": ".subject.txt", "text": ".txt", "html": ".html"}[part]
        return (self._dir / f"{trigger}{suffix}").read_text(encoding="utf-8")

    def check(self, templates: Mapping[str, Mapping[str, str]]) -> None:
        """Raise Invalid unless every override compiles and renders with the
        values a message gives (an unknown name, or anything the sandbox
        refuses, is found now rather than when a message is due)."""
        sample: dict[str, Any] = {name: "x" for name in CONTEXT_NAMES}
        sample["duration_minutes"] = 30
        sample["dates"] = ["x", "y"]
        sample["slots"] = ["x", "y"]
        for name, parts in templates.items():
            for part, source in parts.items():
                try:
                    self._from_string(part, source).render(sample)
                except TemplateError as exc:
                    raise Invalid(f"templates.{name}.{part}: {exc}") from None

    def render(
        self,
        trigger: Trigger,
        context: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
    ) -> Rendered:
        """Subject, text and HTML of ``trigger``'s message; a team's override of
        a part replaces the shipped part. Raises jinja2's TemplateError (a team
        template that fails, e.g. on an unknown name)."""
        own = (overrides or {}).get(str(trigger)) or {}
        out: dict[str, str] = {}
        values = dict(context)
        for part in TEMPLATE_PARTS:
            source = own.get(part) if isinstance(own, Mapping) else None
            if source is None:
                source = self.shipped(trigger, part)
            rendered = self._from_string(part, source).render(values)
            if part == "subject":
                rendered = " ".join(rendered.split())  # one line, whatever the template did
                values["subject"] = rendered
            out[part] = rendered
        return Rendered(out["subject"], out["text"], out["html"])


def calendar(
    sessions: Sequence[tuple[Meeting, str | None]],
    *,
    team_name: str,
    host_name: str,
    stamp: datetime,
) -> bytes:
    """An iCalendar file with one event per (meeting, join link): the link is
    the event's URL and location and is in its description."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Vestibule//Video appointments//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    for meeting, link in sessions:
        if meeting.start is None or meeting.end is None:
            continue
        event = icalendar.Event()
        event.add("uid", f"{meeting.id}@vestibule")
        event.add("dtstamp", stamp)
        event.add("dtstart", meeting.start)
        event.add("dtend", meeting.end)
        event.add("summary", f"Video appointment: {team_name}")
        if link:
            event.add("url", link)
            event.add("location", link)
            event.add("description", f"With {host_name}. Join: {link}")
        else:
            event.add("description", f"With {host_name}. The join link comes in the reminder.")
        cal.add_component(event)
    data: bytes = cal.to_ical()
    return data


def build_email(
    *,
    message_id: str,
    sender: str,
    recipient: str,
    rendered: Rendered,
    ics: bytes | None,
) -> EmailMessage:
    """A multipart message: text and HTML alternatives, and the .ics if given."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = recipient
    email["Subject"] = rendered.subject
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "vestibule.invalid"
    # The outbox message's id: a message delivered twice (a node died between
    # the server's acceptance and recording it) carries the same Message-ID.
    email["Message-ID"] = f"<{message_id}@{domain}>"
    email.set_content(rendered.text)
    email.add_alternative(rendered.html, subtype="html")
    if ics is not None:
        email.add_attachment(
            ics,
            maintype="text",
            subtype="calendar",
            filename="appointment.ics",
            params={"method": "PUBLISH"},
        )
    return email


def sender_address(mail_from: str, team_name: str) -> str:
    """The From header: the configured address; its display name is the team's
    when the setting gives a bare address."""
    if "<" in mail_from:
        return mail_from
    return formataddr((team_name, mail_from.strip()))


class Transport(Protocol):
    async def send(self, email: EmailMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    #: True: STARTTLS required; False: never; None: when the server offers it
    start_tls: bool | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://[user:pass@]host[:port][?starttls=0|1]`` (port 587 by default)
    or ``smtps://...`` (implicit TLS, port 465). Raises Invalid."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise Invalid("smtp_url must be smtp://host[:port] or smtps://host[:port]")
    use_tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    start_tls: bool | None = None
    if "starttls" in query:
        flag = query["starttls"][-1].lower()
        if flag not in ("0", "1", "true", "false", "yes", "no"):
            raise Invalid("smtp_url: starttls must be 0 or 1")
        start_tls = flag in ("1", "true", "yes")
    if use_tls:
        start_tls = False
    try:
        port = parts.port or (465 if use_tls else 587)
    except ValueError:
        raise Invalid("smtp_url: the port is not a number") from None
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=use_tls,
        start_tls=start_tls,
    )


class SmtpTransport:
    """Sends one message per SMTP conversation (messages are few; a connection
    held open between them would only go stale)."""

    def __init__(self, target: SmtpTarget, *, timeout: float) -> None:
        self.target = target
        self.timeout = timeout

    async def send(self, email: EmailMessage) -> None:
        t = self.target
        await aiosmtplib.send(
            email,
            hostname=t.host,
            port=t.port,
            username=t.username,
            password=t.password,
            use_tls=t.use_tls,
            start_tls=t.start_tls,
            timeout=self.timeout,
        )


def describe_failure(exc: BaseException) -> str:
    """A failed attempt as the outbox records it: the error's class and, for an
    SMTP answer, its code; never its text (a server's answer may quote the
    recipient's address)."""
    code = getattr(exc, "code", None)
    name = type(exc).__name__
    return f"{name} {code}" if isinstance(code, int) else name
