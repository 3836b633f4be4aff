"""What a patient does from a message: pick one of the proposed slots, or
review a meeting that took place.

Each message carries a link whose token names its meeting and its purpose
(the shell makes and checks the token, signalling.patient_links). Whether a
link still does anything is decided here, from the meeting and the time
alone, so a link needs no record of its own:

- a **pick** link works while the meeting is in planning; once a time is set
  (picked through the link, confirmed or rescheduled by the clinic) it answers
  :class:`~rooms.errors.SlotAlreadyChosen`;
- a **review** link works from the meeting's start until
  :data:`REVIEW_WINDOW` after its end; a second review is refused by
  rooms.schedule.leave_review;
- a cancelled meeting's links are revoked: like an unknown link they get the
  uniform :class:`~rooms.errors.TokenInvalid`.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from rooms.errors import SlotAlreadyChosen, SlotNotOffered, TokenInvalid
from rooms.meeting import Meeting
from rooms.presence import MeetingChange
from rooms.schedule import choose_slot
from rooms.validate import check_aware


class Purpose(enum.StrEnum):
    """What a patient link is for; a token made for one purpose opens no other."""

    PICK = "pick"
    REVIEW = "review"


#: a review link works this long after the meeting's planned end
REVIEW_WINDOW = timedelta(days=30)
#: the review request goes this long after the later of the planned end and
#: the moment the meeting was first seen completed (a call that overruns, or a
#: host who drops out and comes back, is not asked about mid-call)
REVIEW_DELAY = timedelta(minutes=30)


def offered_slots(meeting: Meeting, now: datetime) -> tuple[datetime, ...]:
    """The proposed slots a patient may still pick: those not yet begun."""
    return tuple(slot for slot in meeting.proposed_slots if slot > now)


def check_pick_link(meeting: Meeting) -> None:
    """Raise unless the meeting's pick link still leads somewhere: TokenInvalid
    for a cancelled meeting, SlotAlreadyChosen once it has a time."""
    if meeting.cancelled:
        raise TokenInvalid()
    if meeting.start is not None:
        raise SlotAlreadyChosen()


def pick_slot(meeting: Meeting, slot: datetime, now: datetime) -> tuple[Meeting, MeetingChange]:
    """The patient's pick: planning -> scheduled at ``slot``, the other
    proposals released. The caller stores it only if the stored meeting is
    still in planning (Store.store_chosen_slot), so of two picks one wins."""
    check_aware(now, field="now")
    check_aware(slot, field="slot")
    check_pick_link(meeting)
    if slot not in offered_slots(meeting, now):
        raise SlotNotOffered()
    return choose_slot(meeting, slot, now)


def check_review_link(meeting: Meeting, now: datetime) -> None:
    """Raise TokenInvalid unless the meeting's review link works at ``now``:
    not cancelled, dated, started, and within REVIEW_WINDOW of its end."""
    check_aware(now, field="now")
    if meeting.cancelled or meeting.start is None or meeting.end is None:
        raise TokenInvalid()
    if not meeting.start <= now < meeting.end + REVIEW_WINDOW:
        raise TokenInvalid()


def review_request_due(meeting: Meeting, now: datetime) -> datetime | None:
    """When to ask for a review of a meeting seen completed at ``now``; None
    when there is nothing to ask (not dated, cancelled, already reviewed, or
    the review link would have lapsed)."""
    if meeting.cancelled or meeting.end is None or meeting.review_rating is not None:
        return None
    due = max(now, meeting.end) + REVIEW_DELAY
    if due >= meeting.end + REVIEW_WINDOW:
        return None
    return due
