"""The REST API under /api (docs/openapi.yaml describes every endpoint).

``setup(app)`` adds the routes; ``signalling.app.create_app`` calls it. One
module per concept: auth (login, logout, me, view-as), clients, team
(members, groups, API keys), team_rooms (rooms, meeting types), room_admin
(rename, settings and archive of a room), meetings
(list, read, book), meeting_changes (confirm, cancel, reschedule, reassign,
summary, re-issue), messaging (a team's reminders and templates) and
reviews (the guest's review).
"""

from __future__ import annotations

from aiohttp import web

from signalling.api import (
    auth,
    clients,
    meeting_changes,
    meetings,
    messaging,
    reviews,
    room_admin,
    team,
    team_rooms,
)


def setup(app: web.Application) -> None:
    """Add the REST routes to ``app``."""
    modules = (auth, clients, team, team_rooms, room_admin, meetings, meeting_changes, messaging)
    for module in (*modules, reviews):
        module.setup(app)
