"""The mail parts (signalling.mail): the SMTP URL, what a failure records, the
sandboxed templates and the From header."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiosmtplib
import pytest
from jinja2 import TemplateError

from rooms.errors import Invalid
from rooms.outbox import Trigger
from signalling.mail import (
    CONTEXT_NAMES,
    SmtpTarget,
    Templates,
    describe_failure,
    parse_smtp_url,
    sender_address,
    span,
    when,
)


def test_smtp_urls() -> None:
    assert parse_smtp_url("smtp://user:p%40ss@mail.example:2525?starttls=1") == SmtpTarget(
        "mail.example", 2525, "user", "p@ss", use_tls=False, start_tls=True
    )
    assert parse_smtp_url("smtp://mail.example") == SmtpTarget(
        "mail.example", 587, None, None, use_tls=False, start_tls=None
    )
    assert parse_smtp_url("smtp://mail.example?starttls=0").start_tls is False
    implicit = parse_smtp_url("smtps://mail.example")
    assert (implicit.port, implicit.use_tls, implicit.start_tls) == (465, True, False)
    for bad in ("http://mail.example", "smtp://", "smtp://h?starttls=maybe", "smtp://h:port"):
        with pytest.raises(Invalid):
            parse_smtp_url(bad)


def test_a_failure_is_recorded_without_its_text() -> None:
    answer = aiosmtplib.SMTPRecipientRefused(550, "<pat@example.org> unknown", "pat@example.org")
    assert describe_failure(answer) == "SMTPRecipientRefused 550"
    assert describe_failure(ConnectionRefusedError("refused pat@example.org")) == (
        "ConnectionRefusedError"
    )


def test_times_and_spans_as_a_guest_reads_them() -> None:
    assert when(datetime(2025, 1, 14, 9, 5, tzinfo=UTC)) == "Tuesday 14 January 2025, 09:05 UTC"
    assert when(None) == ""
    assert [span(timedelta(minutes=m)) for m in (1, 15, 60, 120, 1440, 2880)] == [
        "1 minute", "15 minutes", "1 hour", "2 hours", "24 hours", "2 days",
    ]  # fmt: skip


def sample() -> dict[str, object]:
    values: dict[str, object] = {name: f"<{name}>" for name in CONTEXT_NAMES}
    values["dates"] = ["one", "two"]
    values["duration_minutes"] = 30
    return values


def test_every_shipped_template_renders_and_the_html_is_escaped() -> None:
    templates = Templates()
    for trigger in Trigger:
        rendered = templates.render(trigger, sample())
        assert rendered.subject and "\n" not in rendered.subject
        assert "<guest_name>" in rendered.text  # the text part is not HTML: not escaped
        assert "&lt;guest_name&gt;" in rendered.html
        assert "<guest_name>" not in rendered.html


def test_the_sandbox_refuses_what_a_template_must_not_reach() -> None:
    templates = Templates()
    evil = {"reminder": {"text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}
    with pytest.raises(TemplateError):
        templates.render(Trigger.REMINDER, sample(), evil)
    with pytest.raises(Invalid):
        templates.check(evil)
    templates.check({"reminder": {"text": "Hi {{ guest_name }}, {{ dates|join(', ') }}"}})


def test_the_from_header() -> None:
    assert sender_address("desk@clinic.example", "Harbour Clinic") == (
        "Harbour Clinic <desk@clinic.example>"
    )
    assert sender_address("Front Desk <desk@clinic.example>", "Harbour") == (
        "Front Desk <desk@clinic.example>"
    )
