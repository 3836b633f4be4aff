"""A guest's review of a meeting, authenticated by the rejoin secret, or by
the link in the "review request" message.

The guest has no account: the device that redeemed the meeting's link holds
the rejoin secret the server gave it, and sends it in ``X-Vestibule-Rejoin``.
A secret that matches nothing, or another meeting, gets the uniform
``token_invalid`` (it reveals nothing about the meeting). The secret is good
until the credential's end (meeting end plus grace), so reviews are left
then: the page offers the form when the call ends.

The review request sent after a completed meeting links to the review page
(``/review/<token>``, rooms.patient_links): the page reads the meeting with
``GET /api/review`` and stores the review with ``POST /api/review``, the token
in ``X-Vestibule-Link`` instead of the rejoin secret; the link works from the
start until 30 days after the end. Either way a meeting is reviewed once: the
store writes a review only if the meeting has none (Store.store_review), so of
two reviews sent at the same moment the first is kept and the second gets 409
``conflict``.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from rooms.errors import Conflict, Invalid, TokenInvalid, Unauthorized
from rooms.meeting import Meeting
from rooms.patient_links import Purpose, check_review_link
from rooms.schedule import leave_review
from rooms.tokens import digest_secret, digests_equal
from signalling.api.body import integer, read_json, text
from signalling.api.patient_access import appointment, linked_meeting
from signalling.api.scope import now_of
from signalling.keys import PRESENCE, STORE

REJOIN_HEADER = "X-Vestibule-Rejoin"


def setup(app: web.Application) -> None:
    app.router.add_post("/api/meetings/{id}/review", review)
    app.router.add_get("/api/review", show_by_link)
    app.router.add_post("/api/review", review_by_link)


async def review(request: web.Request) -> web.Response:
    """POST /api/meetings/{id}/review {rating, text} with the rejoin secret header."""
    secret = request.headers.get(REJOIN_HEADER, "").strip()
    if not secret:
        raise Unauthorized("the rejoin secret is required")
    now = now_of(request)
    store = request.app[STORE]
    credential = await store.find_by_device(digest_secret(secret), now)
    if credential is None or not digests_equal(credential.meeting_id, request.match_info["id"]):
        raise TokenInvalid()
    return await _store_review(request, await store.get_meeting(credential.meeting_id), now)


async def _store_review(request: web.Request, meeting: Meeting, now: datetime) -> web.Response:
    body = await read_json(request)
    rating = integer(body, "rating")
    if rating is None:
        raise Invalid("rating is required")
    reviewed, change = leave_review(meeting, rating, text(body, "text"), now)
    # Conditional: of two reviews sent at the same moment (both read the
    # meeting unreviewed), the store keeps the first and the second is refused.
    stored = await request.app[STORE].store_review(reviewed)
    if stored is None:
        raise Conflict("this meeting has already been reviewed")
    await request.app[PRESENCE].meeting_changed(stored, change, now)
    return web.json_response({"review": {"rating": rating, "text": stored.review or ""}})


async def show_by_link(request: web.Request) -> web.Response:
    """GET /api/review: the meeting the review link is about, and whether it
    was reviewed already."""
    meeting = await linked_meeting(request, Purpose.REVIEW)
    now = now_of(request)
    check_review_link(meeting, now)
    shown = await appointment(request, meeting, now)
    shown["reviewed"] = meeting.review_rating is not None
    return web.json_response({"appointment": shown})


async def review_by_link(request: web.Request) -> web.Response:
    """POST /api/review {rating, text} with the review link's token."""
    meeting = await linked_meeting(request, Purpose.REVIEW)
    now = now_of(request)
    check_review_link(meeting, now)
    return await _store_review(request, meeting, now)
