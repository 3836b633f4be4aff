"""The rules of the links a patient acts from: pick a proposed slot, review."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rooms.errors import SlotAlreadyChosen, SlotNotOffered, TokenInvalid
from rooms.meeting import Guest, Meeting
from rooms.patient_links import (
    REVIEW_DELAY,
    REVIEW_WINDOW,
    check_review_link,
    offered_slots,
    pick_slot,
    review_request_due,
)
from rooms.presence import MeetingChange

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
SLOTS = (NOW + 24 * H, NOW + 48 * H, NOW + 72 * H)


def planning(**changes: object) -> Meeting:
    values: dict[str, object] = {
        "id": "m1",
        "team_id": "t",
        "host_id": "h",
        "room_id": "r",
        "type_id": None,
        "guest": Guest("Pat", "pat@example.org"),
        "duration": timedelta(minutes=30),
        "created_at": NOW,
        "proposed_slots": SLOTS,
    }
    values.update(changes)
    return Meeting(**values)  # type: ignore[arg-type]


def test_a_pick_sets_the_start_and_releases_the_other_slots() -> None:
    chosen, change = pick_slot(planning(), SLOTS[1], NOW)
    assert (chosen.start, chosen.proposed_slots, change) == (
        SLOTS[1],
        (),
        MeetingChange.SLOT_CHOSEN,
    )


def test_a_second_pick_a_slot_not_offered_and_a_cancelled_meeting_are_refused() -> None:
    chosen, _ = pick_slot(planning(), SLOTS[0], NOW)
    with pytest.raises(SlotAlreadyChosen):
        pick_slot(chosen, SLOTS[1], NOW)
    with pytest.raises(SlotNotOffered):
        pick_slot(planning(), NOW + 5 * H, NOW)  # never proposed
    with pytest.raises(SlotNotOffered):
        pick_slot(planning(), SLOTS[0], SLOTS[0])  # begun: no longer offered
    with pytest.raises(TokenInvalid):
        pick_slot(planning(cancelled_at=NOW, cancelled_by="h"), SLOTS[0], NOW)
    assert offered_slots(planning(), SLOTS[0]) == SLOTS[1:]


def test_a_review_link_works_from_the_start_until_the_window_closes() -> None:
    held = replace(planning(), start=NOW, proposed_slots=())
    assert held.end is not None
    check_review_link(held, NOW)
    check_review_link(held, held.end + REVIEW_WINDOW - timedelta(seconds=1))
    for at in (NOW - H, held.end + REVIEW_WINDOW):
        with pytest.raises(TokenInvalid):
            check_review_link(held, at)
    with pytest.raises(TokenInvalid):
        check_review_link(planning(), NOW)
    with pytest.raises(TokenInvalid):
        check_review_link(replace(held, cancelled_at=NOW, cancelled_by="h"), NOW)


def test_the_review_request_waits_for_the_end_and_is_not_sent_twice() -> None:
    held = replace(planning(), start=NOW, proposed_slots=())
    assert held.end is not None
    assert review_request_due(held, NOW + 10 * timedelta(minutes=1)) == held.end + REVIEW_DELAY
    assert review_request_due(held, held.end + H) == held.end + H + REVIEW_DELAY
    assert review_request_due(replace(held, review_rating=4), held.end) is None
    assert review_request_due(planning(), NOW) is None
    assert review_request_due(held, held.end + REVIEW_WINDOW) is None
