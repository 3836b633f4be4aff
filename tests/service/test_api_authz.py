"""The authorisation matrix of the REST API: every endpoint, every kind of caller.

Roles (tests/service/api_support.ROLES): anonymous; Sam, a member of team A;
Ada, team A's host of the meetings under test; Bob, of team B; org A's
manager without view-as, viewing as team A, and viewing as team B; an API key
of team A and one of team B. Each cell is the exact outcome: a 2xx status, or
(status, error code). Another team's meeting is 404, never 403. For callers of
another team that are allowed in, the answer must not mention team A's records.

Each endpoint is one test that walks all roles (a fresh meeting per role where
the call changes it) and reports every wrong cell at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.service.api_support import ADA, NOW, ROLES, SAM, TEAM_A, ZED, Api, make_api

Cell = int | tuple[int, str]
UNAUTH: Cell = (401, "unauthorized")
FORBIDDEN: Cell = (403, "forbidden")
NOT_HOST: Cell = (403, "not_host")
NOT_FOUND: Cell = (404, "not_found")
PLAN: Cell = (403, "plan_limit")
CONFLICT: Cell = (409, "conflict")
START = NOW + timedelta(hours=3)
TEAM_B_ROLES = ("other_member", "manager_as_other", "other_api_key")
#: who administers team B (and so sees no member of team A)
OTHER_ADMINS = ("other_member", "manager_as_other")


def iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def team_read(ok: int = 200) -> dict[str, Cell]:
    """A team endpoint: any principal acting in a team; a bare manager is refused."""
    cells: dict[str, Cell] = {role: ok for role in ROLES}
    cells.update(anonymous=UNAUTH, manager=FORBIDDEN)
    return cells


def administration(ok: Cell = 200) -> dict[str, Cell]:
    """Team administration: the team's administrators (Ada of team A, Bob of
    team B) and a manager viewing as a team; Sam, a bare manager and keys not."""
    cells = team_read(0)
    cells = {role: ok if cell == 0 else cell for role, cell in cells.items()}
    cells.update(member=FORBIDDEN, api_key=FORBIDDEN, other_api_key=FORBIDDEN)
    return cells


def one_meeting(ok: int = 200) -> dict[str, Cell]:
    """An endpoint on one of team A's meetings: team A's callers; others see nothing."""
    cells = team_read(ok)
    cells.update({role: NOT_FOUND for role in TEAM_B_ROLES})
    return cells


def managers_only(ok: int = 200) -> dict[str, Cell]:
    cells: dict[str, Cell] = {role: FORBIDDEN for role in ROLES}
    cells.update(anonymous=UNAUTH, manager=ok, manager_as_team=ok, manager_as_other=ok)
    return cells


Setup = Callable[[Api, str], Awaitable[tuple[str, Any]]]


def fixed(path: str, body: Any = None) -> Setup:
    async def setup(api: Api, role: str) -> tuple[str, Any]:
        return path, body

    return setup


def per_role(path: str, body: Callable[[str], Any]) -> Setup:
    """A body that differs per role (names that must be unique in a team)."""

    async def setup(api: Api, role: str) -> tuple[str, Any]:
        return path, body(role)

    return setup


def on_meeting(action: str, body: Any = None, *, planning: bool = False) -> Setup:
    """A fresh meeting of team A hosted by Ada, then ``/api/meetings/{id}/<action>``."""

    async def setup(api: Api, role: str) -> tuple[str, Any]:
        if planning:
            meeting, _ = await api.add_meeting(ADA, start=None, slots=(START, START + timedelta(1)))
        else:
            meeting, _ = await api.add_meeting(ADA, start=START)
        suffix = f"/{action}" if action else ""
        return f"/api/meetings/{meeting.id}{suffix}", body

    return setup


@dataclass(frozen=True)
class Endpoint:
    method: str
    name: str
    setup: Setup
    cells: dict[str, Cell]


def _with(cells: dict[str, Cell], **changes: Cell) -> dict[str, Cell]:
    return {**cells, **changes}


BOOKING = {
    "host": ADA,
    "guest": {"name": "Alex Morgan", "email": "alex@example.org"},
    "start": iso(START),
    "duration": 1800,
}
ENDPOINTS = [
    Endpoint("GET", "/api/me", fixed("/api/me"), _with(team_read(), manager=200)),
    Endpoint("POST", "/api/logout", fixed("/api/logout"), {role: 204 for role in ROLES}),
    Endpoint("GET", "/api/clients", fixed("/api/clients"), managers_only()),
    Endpoint(
        "POST",
        "/api/clients",
        per_role(
            "/api/clients",
            lambda role: {
                "name": "Dr New",
                "email": f"client-{role.replace('_', '-')}@example.org",
                "password": "long enough",
            },
        ),
        managers_only(201),
    ),
    Endpoint(
        "POST",
        "/api/view-as",
        fixed("/api/view-as", {"team": TEAM_A}),
        managers_only(),
    ),
    Endpoint("DELETE", "/api/view-as", fixed("/api/view-as"), managers_only()),
    Endpoint("GET", "/api/members", fixed("/api/members"), team_read()),
    Endpoint("GET", "/api/groups", fixed("/api/groups"), team_read()),
    Endpoint(
        "POST",
        "/api/groups",
        per_role("/api/groups", lambda role: {"name": f"Desk {role}"}),
        team_read(201),
    ),
    Endpoint("GET", "/api/rooms", fixed("/api/rooms"), team_read()),
    Endpoint(
        "POST",
        "/api/rooms",
        fixed("/api/rooms", {"name": "Gym", "kind": "custom"}),
        # team B is on the starter plan: no custom rooms
        _with(team_read(201), **{role: PLAN for role in TEAM_B_ROLES}),
    ),
    Endpoint("GET", "/api/meeting-types", fixed("/api/meeting-types"), team_read()),
    Endpoint(
        "POST",
        "/api/meeting-types",
        fixed("/api/meeting-types", {"label": "Check-up", "duration": 900}),
        team_read(201),
    ),
    Endpoint(
        "POST",
        "/api/api-keys",
        fixed("/api/api-keys", {"label": "Site"}),
        _with(team_read(201), api_key=FORBIDDEN, other_api_key=FORBIDDEN),
    ),
    Endpoint("GET", "/api/meetings", fixed("/api/meetings?scope=everyone"), team_read()),
    Endpoint(
        "POST",
        "/api/meetings",
        fixed("/api/meetings", BOOKING),
        # Ada is no member of team B: naming her is naming nobody
        _with(team_read(201), **{role: NOT_FOUND for role in TEAM_B_ROLES}),
    ),
    Endpoint("GET", "/api/meetings/{id}", on_meeting(""), one_meeting()),
    Endpoint(
        "POST",
        "/api/meetings/{id}/confirm",
        on_meeting("confirm", {"slot": iso(START)}, planning=True),
        one_meeting(),
    ),
    Endpoint("POST", "/api/meetings/{id}/cancel", on_meeting("cancel"), one_meeting()),
    Endpoint(
        "POST",
        "/api/meetings/{id}/reschedule",
        on_meeting("reschedule", {"start": iso(START + timedelta(days=1))}),
        one_meeting(),
    ),
    Endpoint(
        "POST",
        "/api/meetings/{id}/reassign",
        on_meeting("reassign", {"host": SAM}),
        # any member of the team may hand a colleague's meeting on (receptionists do)
        one_meeting(),
    ),
    Endpoint(
        "POST",
        "/api/meetings/{id}/summary",
        on_meeting("summary", {"text": "All well."}),
        _with(one_meeting(), member=NOT_HOST, manager_as_team=NOT_HOST, api_key=NOT_HOST),
    ),
    Endpoint(
        "POST",
        "/api/meetings/{id}/review",
        on_meeting("review", {"rating": 5}),
        # staff credentials are no guest's: only the rejoin secret counts
        {role: UNAUTH for role in ROLES},
    ),
    Endpoint(
        "POST",
        "/api/members",
        per_role(
            "/api/members",
            lambda role: {"name": "Dr New", "email": f"new-{role.replace('_', '-')}@example.org"},
        ),
        # administrators (Ada of A, Bob of B) and managers viewing as; never a key
        administration(201),
    ),
    Endpoint(
        "PATCH",
        "/api/members/{id}",
        fixed(f"/api/members/{ZED}", {"title": "Dr"}),
        _with(
            administration(), **{role: NOT_FOUND for role in ("other_member", "manager_as_other")}
        ),
    ),
    Endpoint(
        "POST",
        "/api/members/{id}/enable",
        fixed(f"/api/members/{ZED}/enable"),
        _with(
            administration(CONFLICT),  # Zed is not disabled
            **{role: NOT_FOUND for role in OTHER_ADMINS},
        ),
    ),
    Endpoint(
        "POST",
        "/api/members/{id}/invitation",
        fixed(f"/api/members/{ZED}/invitation"),
        _with(
            administration(CONFLICT),  # Zed chose a password long ago
            **{role: NOT_FOUND for role in OTHER_ADMINS},
        ),
    ),
    Endpoint(
        "PUT",
        "/api/members/{id}/room",
        per_role(
            f"/api/members/{ZED}/room", lambda role: {"slug": f"zed-{role.replace('_', '-')}"}
        ),
        _with(administration(), **{role: NOT_FOUND for role in TEAM_B_ROLES}),
    ),
    Endpoint(
        "PATCH",
        "/api/groups/{id}",
        per_role("/api/groups/clinicians", lambda role: {"name": f"Clinicians {role}"}),
        _with(team_read(), **{role: NOT_FOUND for role in TEAM_B_ROLES}),
    ),
    Endpoint(
        "GET",
        "/api/invitations/{token}",
        fixed("/api/invitations/no-such-invitation-token-at-all"),
        {role: (401, "token_invalid") for role in ROLES},
    ),
    Endpoint(
        "PATCH",
        "/api/clients/{id}",
        fixed(f"/api/clients/{TEAM_A}", {"reference": "R"}),
        managers_only(),
    ),
    Endpoint(
        "PUT",
        "/api/clients/{id}/plan",
        fixed(f"/api/clients/{TEAM_A}/plan", {"plan": "clinic"}),
        managers_only(),
    ),
    Endpoint("GET", "/api/audit", fixed("/api/audit"), managers_only()),
]


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


def test_the_matrix_covers_every_role_of_every_endpoint() -> None:
    for endpoint in ENDPOINTS:
        assert set(endpoint.cells) == set(ROLES), endpoint.name


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.name}")
async def test_authorisation(api: Api, endpoint: Endpoint) -> None:
    team_a_ids = {f'"{ADA}"', f'"{SAM}"', f'"{TEAM_A}"'}
    wrong: list[str] = []
    for role in ROLES:
        path, body = await endpoint.setup(api, role)
        reply = await api.call(endpoint.method, path, role=role, json=body)
        got: Cell = reply.status if reply.status < 300 else (reply.status, reply.code or "")
        expected = endpoint.cells[role]
        if got != expected:
            wrong.append(f"{role}: expected {expected}, got {got} {reply.body}")
        elif role in TEAM_B_ROLES and reply.status < 300 and reply.body is not None:
            text = orjson.dumps(reply.body).decode()
            leaked = [name for name in team_a_ids if name in text]
            # a manager's own endpoints are about the organisation's client teams
            managers = ("/api/clients", "/api/view-as", "/api/audit")
            if leaked and not endpoint.name.startswith(managers):
                wrong.append(f"{role}: answer mentions team A's {leaked}")
    assert not wrong, f"{endpoint.method} {endpoint.name}:\n" + "\n".join(wrong)
