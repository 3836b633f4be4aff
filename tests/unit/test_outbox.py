"""The outbox rules (rooms.outbox): what a booking and a change schedule, and
what a failed attempt leads to."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rooms.errors import Invalid
from rooms.meeting import Guest, Meeting
from rooms.outbox import (
    DEFAULT_REMINDER_OFFSETS,
    FIRST_BACKOFF,
    LONGEST_BACKOFF,
    MessageState,
    Trigger,
    after_failure,
    after_success,
    backoff,
    check_offsets,
    check_templates,
    plan_booking,
    plan_change,
    plan_review_request,
    review_request_id,
)

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def ids() -> object:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def meeting(n: int = 0, start: datetime | None = NOW + 48 * H, **changes: object) -> Meeting:
    values: dict[str, object] = {
        "id": f"m{n}",
        "team_id": "t",
        "host_id": "h",
        "room_id": "r",
        "type_id": None,
        "guest": Guest("Pat", "pat@example.org"),
        "duration": timedelta(minutes=30),
        "created_at": NOW,
        "start": start,
        "series_id": None,
    }
    values.update(changes)
    return Meeting(**values)  # type: ignore[arg-type]


def test_one_booking_confirms_now_and_reminds_at_each_offset() -> None:
    m = meeting()
    planned = plan_booking([m], DEFAULT_REMINDER_OFFSETS, NOW, ids())  # type: ignore[arg-type]
    assert [(p.trigger, p.due_at, p.offset) for p in planned] == [
        (Trigger.CONFIRMATION, NOW, None),
        (Trigger.REMINDER, NOW + 24 * H, 24 * H),
        (Trigger.REMINDER, NOW + 47 * H, H),
    ]
    assert {p.recipient for p in planned} == {"pat@example.org"}
    assert all(p.state is MessageState.SCHEDULED and p.attempts == 0 for p in planned)
    assert len({p.id for p in planned}) == 3


def test_a_series_confirms_once_on_its_first_session_and_reminds_each() -> None:
    sessions = [meeting(n, NOW + (48 + 168 * n) * H, series_id="s") for n in (2, 0, 1)]
    planned = plan_booking(sessions, DEFAULT_REMINDER_OFFSETS, NOW, ids())  # type: ignore[arg-type]
    assert (planned[0].trigger, planned[0].meeting_id) == (Trigger.SERIES_CONFIRMATION, "m0")
    reminders = [(p.meeting_id, p.offset) for p in planned[1:]]
    assert sorted(reminders) == sorted(
        (f"m{n}", offset) for n in range(3) for offset in DEFAULT_REMINDER_OFFSETS
    )


def test_reminders_already_past_are_not_planned() -> None:
    soon = meeting(start=NOW + 2 * H)
    planned = plan_booking([soon], DEFAULT_REMINDER_OFFSETS, NOW, ids())  # type: ignore[arg-type]
    assert [p.offset for p in planned] == [None, H]


def test_planning_sends_the_proposed_slots_now_and_nothing_else() -> None:
    slots = (NOW + 24 * H, NOW + 48 * H)
    planning = meeting(start=None, proposed_slots=slots)
    planned = plan_booking([planning], DEFAULT_REMINDER_OFFSETS, NOW, ids())  # type: ignore[arg-type]
    assert [(p.trigger, p.due_at, p.meeting_id) for p in planned] == [
        (Trigger.PROPOSED_SLOTS, NOW, "m0")
    ]
    assert plan_booking([meeting(start=None)], DEFAULT_REMINDER_OFFSETS, NOW, ids()) == []  # type: ignore[arg-type]


def test_a_review_request_goes_at_its_due_time() -> None:
    request = plan_review_request(meeting(), NOW + 3 * H, NOW)
    assert (request.trigger, request.due_at, request.recipient) == (
        Trigger.REVIEW_REQUEST,
        NOW + 3 * H,
        "pat@example.org",
    )


def test_a_review_request_has_the_same_id_wherever_it_is_planned() -> None:
    """Two nodes planning the request of one meeting make the same id (the
    store then takes one of them), and another meeting's request differs."""
    first = plan_review_request(meeting(), NOW + 3 * H, NOW)
    second = plan_review_request(meeting(), NOW + 4 * H, NOW + H)
    assert first.id == second.id == review_request_id("m0")
    assert review_request_id("m1") != first.id


def test_a_change_sends_its_message_and_a_cancellation_no_reminders() -> None:
    m = meeting()
    moved = plan_change(m, Trigger.RESCHEDULE, (H,), NOW, ids())  # type: ignore[arg-type]
    assert [p.trigger for p in moved] == [Trigger.RESCHEDULE, Trigger.REMINDER]
    gone = replace(m, cancelled_at=NOW)
    cancelled = plan_change(gone, Trigger.CANCELLATION, (H,), NOW, ids())  # type: ignore[arg-type]
    assert [p.trigger for p in cancelled] == [Trigger.CANCELLATION]


def test_backoff_doubles_up_to_its_ceiling() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [FIRST_BACKOFF, 2 * FIRST_BACKOFF, 4 * FIRST_BACKOFF]
    assert backoff(50) == LONGEST_BACKOFF


def test_a_failed_attempt_is_retried_until_the_last_then_failed() -> None:
    (first,) = plan_booking([meeting(start=None), meeting()], (), NOW, ids())  # type: ignore[arg-type]
    claimed = replace(first, attempts=1, claimed_by="n", claimed_until=NOW + H)
    retry = after_failure(claimed, "SMTPDataError 451", NOW, max_attempts=3)
    assert (retry.state, retry.due_at, retry.last_error) == (
        MessageState.SCHEDULED,
        NOW + FIRST_BACKOFF,
        "SMTPDataError 451",
    )
    assert (retry.claimed_by, retry.claimed_until) == (None, None)
    last = after_failure(replace(claimed, attempts=3), "OSError", NOW, max_attempts=3)
    assert last.state is MessageState.FAILED
    sent = after_success(claimed, NOW)
    assert (sent.state, sent.sent_at, sent.claimed_by) == (MessageState.SENT, NOW, None)


def test_offsets_and_templates_are_checked() -> None:
    assert check_offsets([H, 24 * H, H]) == (24 * H, H)
    assert check_offsets([]) == ()
    for bad in ([timedelta(0)], [timedelta(days=15)], [H * n for n in range(1, 7)]):
        with pytest.raises(Invalid):
            check_offsets(bad)
    assert check_templates({"reminder": {"text": "hi"}}) == {"reminder": {"text": "hi"}}
    for bad_templates in (
        {"birthday": {"text": "hi"}},
        {"reminder": {"body": "hi"}},
        {"reminder": {"text": 3}},
        {"reminder": "hi"},
    ):
        with pytest.raises(Invalid):
            check_templates(bad_templates)
