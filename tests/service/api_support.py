"""Fixtures of the REST API service tests (tests/service/test_api_*.py).

``make_api`` starts the real app (SQLite file on tmp_path, a FixedClock) behind
aiohttp's test server and seeds, through the store, a small world of known
ids: organisation ``org-a`` with a clinic-plan team A (host Ada, its
administrator; member Sam,
member Zed outside the group) and a starter-plan team B (Bob), a manager of
``org-a``, and ``org-c`` with team C. Every password is one scrypt hash made
once per session (scrypt is slow on purpose).

``Api.call`` sends a request as one of the ROLES and checks the response
against docs/openapi.yaml (status documented, body valid); a 2xx answer to a
JSON request also checks the request against the documented request body, so
the document can neither omit an accepted field's shape nor a response.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import jwt
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from rooms.accounts import ApiKey, Group, Organisation, Plan, StaffAccount, StaffRole, Team
from rooms.meeting import Guest, Meeting, MeetingType
from rooms.passwords import hash_password
from rooms.plans import default_shared_rooms, user_room_for
from rooms.room import Room, RoomKind
from rooms.schedule import create_meeting
from rooms.tokens import IssuedCredential, issue_credential
from signalling.bootstrap import create_app
from signalling.bus import Bus
from signalling.clock import FixedClock
from signalling.keys import PRESENCE, STORE
from signalling.settings import Settings
from signalling.staff_auth import COOKIE, issue_session, new_api_key
from signalling.store.base import Store

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
#: Tuesday 14 January 2025, 09:00 UTC: "now" in every API test. In the past on
#: purpose: PyJWT checks a token's `iat` against the real clock (not the app's),
#: so sessions issued at a future "now" would be refused (see the report).
NOW = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
SECRET = "api-test-session-secret-0123456789abcdef"
JWT_SECRET = "api-test-jwt-secret-0123456789abcdef"
BASE_URL = "http://vestibule.test"

ADA, SAM, ZED, BOB, CAROL, MANAGER = "ada", "sam", "zed", "bob", "carol", "manager"
#: each team's administrator (Sam and Zed are members without the flag)
ADMINS = frozenset({ADA, BOB, CAROL})
TEAM_A, TEAM_B, TEAM_C = "team-a", "team-b", "team-c"
EMAILS = {
    ADA: "ada@a.example.org",
    SAM: "sam@a.example.org",
    ZED: "zed@a.example.org",
    BOB: "bob@b.example.org",
    CAROL: "carol@c.example.org",
    MANAGER: "office@a.example.org",
}

#: every caller the authorisation matrix knows
ROLES = (
    "anonymous",
    "member",  # Sam: a member of team A, not the meeting's host
    "host",  # Ada: team A, hosts the meetings under test
    "other_member",  # Bob: team B
    "manager",  # org A's manager, not viewing as anyone
    "manager_as_team",  # org A's manager viewing as team A
    "manager_as_other",  # org A's manager viewing as team B
    "api_key",  # an API key of team A
    "other_api_key",  # an API key of team B
)


def _new_id() -> str:
    return secrets.token_hex(8)


@functools.cache
def password_hash() -> str:
    """One hash for every seeded account (the production cost, made once)."""
    return hash_password(PASSWORD)


# -- the OpenAPI document as a validator ------------------------------------------


@functools.cache
def openapi() -> dict[str, Any]:
    with OPENAPI_PATH.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


def resolve(node: Any, document: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` ("#/a/b") replaced by what it points to."""
    if isinstance(node, list):
        return [resolve(item, document, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/"):
            raise AssertionError(f"only local references are supported: {ref}")
        if ref in seen:
            raise AssertionError(f"circular reference {ref}")
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        resolved = resolve(target, document, (*seen, ref))
        return {**resolved, **resolve(siblings, document, seen)} if siblings else resolved
    return {key: resolve(value, document, seen) for key, value in node.items()}


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in openapi()["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        out.append((re.compile(f"^{pattern}$"), template))
    return out


def template_of(path: str) -> str:
    """The documented path template matching ``path`` (AssertionError if none)."""
    bare = path.split("?", 1)[0]
    for pattern, template in _templates():
        if pattern.match(bare):
            return template
    raise AssertionError(f"{bare} is not documented in docs/openapi.yaml")


def operation(method: str, path: str) -> dict[str, Any]:
    ops = openapi()["paths"][template_of(path)]
    op = ops.get(method.lower())
    assert op is not None, f"{method} {template_of(path)} is not documented"
    resolved: dict[str, Any] = resolve(op, openapi())
    return resolved


def check_response(method: str, path: str, status: int, body: Any) -> None:
    """Fail unless ``status`` is documented for the operation and ``body`` fits it."""
    responses = operation(method, path)["responses"]
    documented = responses.get(str(status))
    assert documented is not None, (
        f"{method} {template_of(path)} answered {status}, which is not documented"
    )
    content = documented.get("content")
    if content is None:
        assert body is None, f"{method} {path} {status} documents no body, got {body!r}"
        return
    if "application/json" in content:
        jsonschema.validate(body, content["application/json"]["schema"])
    else:
        assert isinstance(body, str)


def check_request(method: str, path: str, body: Any) -> None:
    """Fail unless ``body`` fits the operation's documented request body."""
    request_body = operation(method, path).get("requestBody")
    assert request_body is not None, f"{method} {path} accepted a body it does not document"
    jsonschema.validate(body, request_body["content"]["application/json"]["schema"])


# -- the world ----------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"]["code"])
        return None


@dataclass
class Api:
    """The running app, its store and clock, and the seeded ids."""

    client: TestClient[Any, Any]
    settings: Settings
    clock: FixedClock
    staff: dict[str, StaffAccount] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)  # by slug
    keys: dict[str, str] = field(default_factory=dict)  # team id -> clear API key
    consult: MeetingType | None = None

    @property
    def app(self) -> web.Application:
        app = self.client.app
        assert isinstance(app, web.Application)
        return app

    @property
    def store(self) -> Store:
        store: Store = self.app[STORE]
        return store

    def own_room(self, staff_id: str) -> Room:
        return next(r for r in self.rooms.values() if r.owner_id == staff_id)

    def shared_room(self, team_id: str, kind: RoomKind) -> Room:
        return next(r for r in self.rooms.values() if r.team_id == team_id and r.kind is kind)

    def cookie(self, staff_id: str, acting_as: str | None = None) -> dict[str, str]:
        token = issue_session(self.settings, self.staff[staff_id], NOW, acting_as=acting_as)
        return {"Cookie": f"{COOKIE}={token}"}

    def jwt(self, staff_id: str) -> dict[str, str]:
        exp = int((NOW + timedelta(minutes=10)).timestamp())
        token = jwt.encode({"sub": staff_id, "exp": exp}, JWT_SECRET, algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    def headers(self, role: str) -> dict[str, str]:
        """Request headers that authenticate as ``role`` (one of ROLES)."""
        match role:
            case "anonymous":
                return {}
            case "member":
                return self.cookie(SAM)
            case "host":
                return self.cookie(ADA)
            case "other_member":
                return self.cookie(BOB)
            case "manager":
                return self.cookie(MANAGER)
            case "manager_as_team":
                return self.cookie(MANAGER, acting_as=TEAM_A)
            case "manager_as_other":
                return self.cookie(MANAGER, acting_as=TEAM_B)
            case "api_key":
                return {"Authorization": f"Bearer {self.keys[TEAM_A]}"}
            case "other_api_key":
                return {"Authorization": f"Bearer {self.keys[TEAM_B]}"}
        raise AssertionError(f"unknown role {role}")

    async def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: str | bytes | None = None,
    ) -> Reply:
        """One request, its response checked against docs/openapi.yaml."""
        sent = dict(self.headers(role) if role is not None else {})
        if data is not None:
            # raw bodies are malformed JSON on purpose; say they are JSON
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        response = await self.client.request(method, path, headers=sent, json=json, data=data)
        raw = await response.read()
        kind = response.headers.get("Content-Type", "")
        body: Any = None
        if raw:
            body = await response.json() if kind.startswith("application/json") else raw.decode()
        check_response(method, path, response.status, body)
        if 200 <= response.status < 300 and json is not None:
            check_request(method, path, json)
        return Reply(response.status, body, dict(response.headers))

    async def add_meeting(
        self,
        host_id: str = ADA,
        *,
        room: Room | None = None,
        start: datetime | None = NOW + timedelta(hours=3),
        slots: tuple[datetime, ...] = (),
        guest: str = "Alex Morgan",
    ) -> tuple[Meeting, IssuedCredential | None]:
        """A meeting booked straight into the store (with its credential), as a
        fixture for the endpoints that change meetings."""
        host = self.staff[host_id]
        assert host.team_id is not None
        team = await self.store.get_team(host.team_id)
        meeting, _ = create_meeting(
            team,
            host,
            room or self.own_room(host_id),
            None,
            Guest(guest, "alex.morgan@example.org"),
            "",
            start,
            timedelta(minutes=30),
            slots,
            NOW,
            _new_id,
        )
        issued = (
            issue_credential(
                meeting,
                NOW,
                new_id=_new_id,
                before=self.settings.link_before,
                grace=self.settings.link_grace,
            )
            if start is not None
            else None
        )
        await self.store.add_meetings([meeting], [issued.credential] if issued else [])
        return meeting, issued

    async def flush(self) -> None:
        await self.app[PRESENCE].flush()


async def make_api(aiohttp_client: Any, tmp_path: Path, *, bus: Bus | None = None) -> Api:
    """Start the app on a fresh SQLite file (with ``bus``, else its own
    in-process one) and seed the world described above."""
    settings = Settings(
        db_path=str(tmp_path / "api.sqlite3"),
        secret=SECRET,
        jwt_secret=JWT_SECRET,
        public_url=BASE_URL,
        mediacheck=False,
    )
    clock = FixedClock(NOW)
    app = create_app(settings, clock=clock, bus=bus)
    client = await aiohttp_client(app)
    api = Api(client, settings, clock)
    await _seed(api)
    return api


async def _seed(api: Api) -> None:
    store = api.store
    created = NOW - timedelta(days=90)
    await store.add_organisation(Organisation("org-a", "Harbour Practice", created))
    await store.add_organisation(Organisation("org-c", "Elsewhere Health", created))
    teams = (
        Team(
            TEAM_A, "org-a", "Harbour Clinic", "HC-1", Plan.CLINIC, "a@a.example.org", "", created
        ),
        Team(TEAM_B, "org-a", "Bay Physio", "BP-2", Plan.STARTER, "b@b.example.org", "", created),
        Team(TEAM_C, "org-c", "Far Clinic", "FC-3", Plan.STARTER, "c@c.example.org", "", created),
    )
    taken: set[str] = set()
    for team in teams:
        await store.add_team(team)
        for room in default_shared_rooms(team, _new_id, taken_slugs=taken):
            await _add_room(api, room, taken)
    people = [
        (ADA, TEAM_A, "Ada Jones"),
        (SAM, TEAM_A, "Sam Smith"),
        (ZED, TEAM_A, "Zed Ward"),
        (BOB, TEAM_B, "Bob Brown"),
        (CAROL, TEAM_C, "Carol King"),
    ]
    by_team = {team.id: team for team in teams}
    for staff_id, team_id, name in people:
        team = by_team[team_id]
        account = StaffAccount(
            staff_id, team.org_id, team_id, StaffRole.MEMBER, EMAILS[staff_id], name,
            password_hash(), title="Dr", speciality="GP", created_at=created,
            admin=staff_id in ADMINS,
        )  # fmt: skip
        await store.add_staff(account)
        api.staff[staff_id] = account
        await _add_room(api, user_room_for(account, team, _new_id, taken_slugs=taken), taken)
    manager = StaffAccount(
        MANAGER, "org-a", None, StaffRole.MANAGER, EMAILS[MANAGER], "Practice Office",
        password_hash(), created_at=created,
    )  # fmt: skip
    await store.add_staff(manager)
    api.staff[MANAGER] = manager
    # Ada and Sam share a group; Zed is in none ("everyone" for Ada excludes Zed).
    await store.add_group(Group("clinicians", TEAM_A, "Clinicians", frozenset({ADA, SAM})))
    api.consult = MeetingType("consult", TEAM_A, "Consultation", timedelta(minutes=30))
    await store.add_meeting_type(api.consult)
    await store.add_meeting_type(MeetingType("b-consult", TEAM_B, "B visit", timedelta(minutes=20)))
    for team_id in (TEAM_A, TEAM_B):
        key, digest = new_api_key()
        await store.add_api_key(ApiKey(f"key-{team_id}", team_id, "booking system", digest, NOW))
        api.keys[team_id] = key


async def _add_room(api: Api, room: Room, taken: set[str]) -> None:
    await api.store.add_room(room)
    api.rooms[room.slug] = room
    taken.add(room.slug)
