"""The JSON shapes of the REST API (docs/openapi.yaml names each one).

Meetings use the dashboard's shape (signalling.views.meeting_view) so that a
page sees the same object from a list and from the live feed, with the
meeting's current link, token and guest key opened from their sealed copies
(signalling.sealing): staff of the team can read a key to a patient again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from rooms.accounts import Group, StaffAccount, Team
from rooms.credentials import Credential
from rooms.meeting import Meeting, MeetingType
from rooms.outbox import OutboxMessage
from rooms.room import Room
from rooms.team_admin import state_of
from rooms.tokens import IssuedCredential, format_key
from signalling.keys import PRESENCE, SEALER, SETTINGS, STORE
from signalling.views import iso, meeting_view

Json = dict[str, Any]


def staff_json(account: StaffAccount) -> Json:
    return {
        "id": account.id,
        "name": account.name,
        "email": account.email,
        "role": str(account.role),
        "team": account.team_id,
        "title": account.title,
        "speciality": account.speciality,
        "contact": account.contact,
        "phone": account.phone,
        "admin": account.admin,
    }


def team_json(team: Team) -> Json:
    return {
        "id": team.id,
        "name": team.name,
        "reference": team.reference,
        "plan": str(team.plan),
        "email": team.email,
        "phone": team.phone,
        "disabled": team.disabled,
    }


def client_json(team: Team, appointments_this_month: int) -> Json:
    """A client account as its managing organisation lists it."""
    return {
        "id": team.id,
        "name": team.name,
        "reference": team.reference,
        "email": team.email,
        "signup_date": team.created_at.date().isoformat(),
        "phone": team.phone,
        "plan": str(team.plan),
        "disabled": team.disabled,
        "appointments_this_month": appointments_this_month,
    }


def room_json(room: Room) -> Json:
    return {
        "id": room.id,
        "slug": room.slug,
        "name": room.name,
        "kind": str(room.kind),
        "owner": room.owner_id,
        "shared": room.shared,
        "show_position": room.show_position,
        "capacity": room.capacity,
        "walk_ins": room.walk_ins,
        "archived": room.archived,
    }


def member_json(account: StaffAccount, room: Room | None) -> Json:
    return {
        "id": account.id,
        "name": account.name,
        "title": account.title,
        "speciality": account.speciality,
        "contact": account.contact,
        "phone": account.phone,
        "email": account.email,
        "room": None if room is None else room.slug,
        "admin": account.admin,
        "state": str(state_of(account)),
    }


def group_json(group: Group) -> Json:
    return {"id": group.id, "name": group.name, "members": sorted(group.member_ids)}


def meeting_type_json(mtype: MeetingType) -> Json:
    return {
        "id": mtype.id,
        "label": mtype.label,
        "duration": int(mtype.duration.total_seconds()),
        "colour": mtype.colour,
        "online_bookable": mtype.online_bookable,
        "known_patients_only": mtype.known_patients_only,
        "kinds": sorted(str(kind) for kind in mtype.kinds),
        "address": mtype.address,
        "instructions": mtype.instructions,
        "description": mtype.description,
        "retired": mtype.retired,
    }


class MeetingRenderer:
    """Renders meetings of one team: loads its rooms and meeting types once."""

    def __init__(
        self,
        app: web.Application,
        rooms: Mapping[str, Room],
        types: Mapping[str, MeetingType],
        now: datetime,
    ) -> None:
        self._app = app
        self._rooms = rooms
        self._types = types
        self._now = now
        #: meeting id -> its live credential (loaded by prime)
        self._credentials: dict[str, Credential] = {}

    @classmethod
    async def for_team(cls, app: web.Application, team_id: str, now: datetime) -> MeetingRenderer:
        store = app[STORE]
        rooms = {room.id: room for room in await store.list_rooms(team_id)}
        types = {mtype.id: mtype for mtype in await store.list_meeting_types(team_id)}
        return cls(app, rooms, types, now)

    async def prime(self, meetings: Sequence[Meeting]) -> None:
        """Load these meetings' stored presence facts, so that status and
        indicator are right on a node that has not seen them since it started."""
        ids = [meeting.id for meeting in meetings]
        await self._app[PRESENCE].prime(ids)
        self._credentials = await self._app[STORE].live_credentials(ids)

    def status(self, meeting: Meeting) -> str:
        return str(self._app[PRESENCE].status_of(meeting, self._now))

    def view(self, meeting: Meeting, issued: IssuedCredential | None = None) -> Json:
        """The staff view, with the meeting's current link, token and guest key
        (``issued``'s when just issued, else opened from the credential
        :meth:`prime` loaded; null when there is none, or it cannot be opened)."""
        presence = self._app[PRESENCE]
        out = meeting_view(
            meeting,
            status=self.status(meeting),
            indicator=presence.indicator(meeting.id),
            rooms=self._rooms,
            types=self._types,
        )
        token, key = None, None
        if issued is not None:
            token, key = issued.link_token, issued.guest_key
        else:
            revealed = self._app[SEALER].reveal(self._credentials.get(meeting.id))
            if revealed is not None:
                token, key = revealed.link_token, revealed.guest_key
        base = self._app[SETTINGS].base_url
        out["link"] = None if token is None else f"{base}/join/{token}"
        out["token"] = token
        out["guest_key"] = None if key is None else format_key(key)
        return out

    def views(self, meetings: Sequence[Meeting]) -> list[Json]:
        return [self.view(meeting) for meeting in meetings]


def message_json(message: OutboxMessage) -> Json:
    """One entry of a meeting's communication history."""
    return {
        "id": message.id,
        "trigger": str(message.trigger),
        "recipient": message.recipient,
        "state": str(message.state),
        "due_at": iso(message.due_at),
        "sent_at": iso(message.sent_at),
        "attempts": message.attempts,
        "last_error": message.last_error,
        "offset": None if message.offset is None else int(message.offset.total_seconds()),
        "created_at": iso(message.created_at),
    }
