"""Organisations, teams (client accounts), staff accounts and groups.

An organisation (a practice, or a secretarial service managing client
accounts) holds teams; each team has a plan, members and groups. A *manager*
account belongs to the organisation and may "view as" any of its teams.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Plan(enum.StrEnum):
    STARTER = "starter"
    PROFESSIONAL = "professional"
    CLINIC = "clinic"


class StaffRole(enum.StrEnum):
    #: a clinician or other member of one team
    MEMBER = "member"
    #: a managing account of an organisation (acts inside client teams via "view as")
    MANAGER = "manager"


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Team:
    """A clinic account: the unit of scoping for rooms, meetings and presence."""

    id: str
    org_id: str
    name: str
    reference: str
    plan: Plan
    email: str
    phone: str
    created_at: datetime
    #: a disabled client account: its members cannot log in
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class StaffAccount:
    """A person who logs in: a team member (clinician) or an organisation manager.

    ``password_hash`` is an encoded scrypt hash (see :mod:`rooms.passwords`),
    never the password itself. ``team_id`` is None for managers.
    """

    id: str
    org_id: str
    team_id: str | None
    role: StaffRole
    email: str
    name: str
    password_hash: str
    title: str = ""
    speciality: str = ""
    contact: str = ""
    phone: str = ""
    created_at: datetime | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    #: a team administrator manages the team's members, groups and rooms
    admin: bool = False
    #: a disabled account cannot log in; its sessions are ended
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of members of one team; "Everyone" on the dashboard means
    the members of the groups the viewer belongs to."""

    id: str
    team_id: str
    name: str
    member_ids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A REST API key of a team; only its SHA-256 digest is stored."""

    id: str
    team_id: str
    label: str
    digest: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What a staff account did, recorded as that account (a manager acting
    "as" a client team is recorded as the manager, with the team acted in)."""

    id: str
    at: datetime
    actor_id: str
    org_id: str
    team_id: str | None
    action: str
    target: str = ""
