"""A guest's review of a meeting, authenticated by the rejoin secret.

The guest has no account: the device that redeemed the meeting's link holds
the rejoin secret the server gave it, and sends it in ``X-Vestibule-Rejoin``.
A secret that matches nothing, or another meeting, gets the uniform
``token_invalid`` (it reveals nothing about the meeting). The secret is good
until the credential's end (meeting end plus grace), so reviews are left
then: the page offers the form when the call ends.
"""

from __future__ import annotations

from aiohttp import web

from rooms.errors import Invalid, TokenInvalid, Unauthorized
from rooms.schedule import leave_review
from rooms.tokens import digest_secret, digests_equal
from signalling.api.body import integer, read_json, text
from signalling.api.scope import now_of
from signalling.keys import PRESENCE, STORE

REJOIN_HEADER = "X-Vestibule-Rejoin"


def setup(app: web.Application) -> None:
    app.router.add_post("/api/meetings/{id}/review", review)


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
    body = await read_json(request)
    rating = integer(body, "rating")
    if rating is None:
        raise Invalid("rating is required")
    meeting = await store.get_meeting(credential.meeting_id)
    reviewed, change = leave_review(meeting, rating, text(body, "text"), now)
    await store.update_meeting(reviewed)
    await request.app[PRESENCE].meeting_changed(reviewed, change, now)
    return web.json_response({"review": {"rating": rating, "text": reviewed.review or ""}})
