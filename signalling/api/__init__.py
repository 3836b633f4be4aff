"""The REST API under /api (docs/openapi.yaml describes every endpoint).

``setup(app)`` adds the routes; ``signalling.bootstrap.create_app`` calls it. One
module per concept: auth (login, logout, me, view-as), clients, team
(members, groups, API keys), team_rooms (rooms, meeting types), room_admin
(rename, settings and archive of a room), meetings
(list, read, book), meeting_changes (confirm, cancel, reschedule, reassign,
summary, re-issue), messaging (a team's reminders and templates),
slot_choice (the guest picks a proposed slot), reviews (the guest's review),
meeting_types (edit, retire, delete), working_hours (a member's hours for
online booking), booking (the public booking pages), members (inviting,
disabling, the admin flag, a member's room address) and invitations
(accepting one).
"""

from __future__ import annotations

from aiohttp import web

from signalling.api import (
    auth,
    booking,
    clients,
    invitations,
    meeting_changes,
    meeting_types,
    meetings,
    members,
    messaging,
    reviews,
    room_admin,
    slot_choice,
    team,
    team_rooms,
    working_hours,
)


def setup(app: web.Application) -> None:
    """Add the REST routes to ``app``."""
    for module in (
        auth,
        clients,
        team,
        team_rooms,
        room_admin,
        meetings,
        meeting_changes,
        messaging,
        slot_choice,
        reviews,
        members,
        invitations,
        meeting_types,
        working_hours,
        booking,
    ):
        module.setup(app)
