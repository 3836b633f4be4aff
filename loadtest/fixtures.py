"""What a run needs on the deployment, made through its REST API with an API key.

An API key acts as its team (docs/openapi.yaml): the harness lists the team's members
(the hosts), makes sure the team has its load-test rooms (shared *custom* rooms named
``Load test 001``, ``Load test 002``, ...: rooms cannot be deleted, so a run reuses the
ones an earlier run made), and books one meeting per guest it will send, starting now,
each with its single-use link token. At the end every meeting it booked is cancelled,
which revokes its link. Guest names and emails are synthetic
(``Load test guest N``, ``loadtest+N@example.invalid``).

Hosts say ``hello`` with a staff JWT (``jwt`` + ``room``): an API key cannot host, so
scenarios with hosts need the deployment's ``jwt_secret`` (``--jwt-secret``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt

from loadtest.wire import tls_context

ROOM_PREFIX = "Load test "
#: meetings are booked for an hour from in two minutes (links work 15 minutes before)
MEETING_SECONDS = 3600
#: REST calls in flight while provisioning
CONCURRENCY = 8


class ProvisionError(RuntimeError):
    """The REST API refused or failed what the harness needs."""


@dataclass(frozen=True, slots=True)
class Host:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Booking:
    """A meeting booked for one guest: its id, room slug, host id and link token."""

    id: str
    room: str
    host: str
    token: str
    guest_key: str


@dataclass(slots=True)
class Fixtures:
    team_hosts: list[Host]
    rooms: list[str]
    bookings: list[Booking] = field(default_factory=list)


#: a staff JWT's life: within the server's default ``jwt_max_lifetime`` (an hour),
#: with a margin for clocks that disagree by a minute or two
JWT_SECONDS = 3600 - 120


def mint_jwt(secret: str, staff_id: str, seconds: int = JWT_SECONDS) -> str:
    """A staff JWT (HS256, ``sub`` and ``exp``) the deployment accepts."""
    claims = {"sub": staff_id, "exp": int(time.time()) + seconds}
    return jwt.encode(claims, secret, algorithm="HS256")


class Provisioner:
    """REST calls on one target (any node of a cluster: they share the store)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._session: aiohttp.ClientSession | None = None
        self.booked: list[str] = []

    async def __aenter__(self) -> Provisioner:
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(ssl=tls_context()),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        assert self._session is not None
        async with self._session.request(method, self.base + path, json=body) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                error = (payload or {}).get("error", {}) if isinstance(payload, dict) else {}
                raise ProvisionError(
                    f"{method} {path}: {response.status} {error.get('code', '')} "
                    f"{error.get('message', '')}".rstrip()
                )
            return payload

    async def hosts(self) -> list[Host]:
        body = await self._call("GET", "/api/members")
        hosts = [Host(str(m["id"]), str(m["name"])) for m in body["members"]]
        if not hosts:
            raise ProvisionError("the API key's team has no members to host meetings")
        return hosts

    async def rooms(self, count: int) -> list[str]:
        """Slugs of ``count`` load-test rooms, made now where an earlier run did not."""
        body = await self._call("GET", "/api/rooms")
        by_name = {str(r["name"]): str(r["slug"]) for r in body["rooms"]}
        slugs = []
        for index in range(1, count + 1):
            name = f"{ROOM_PREFIX}{index:03d}"
            slug = by_name.get(name)
            if slug is None:
                made = await self._call("POST", "/api/rooms", {"name": name, "kind": "custom"})
                slug = str(made["room"]["slug"])
            slugs.append(slug)
        return slugs

    async def book(self, plan: list[tuple[str, str]], first_index: int = 0) -> list[Booking]:
        """One meeting per (room, host) of ``plan``, starting now; their link tokens."""
        # a start in the past is refused; links work from 15 minutes before the start
        soon = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=2)
        start = soon.isoformat().replace("+00:00", "Z")
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(index: int, room: str, host: str) -> Booking:
            body = {
                "room": room,
                "host": host,
                "start": start,
                "duration": MEETING_SECONDS,
                "guest": {
                    "name": f"Load test guest {index}",
                    "email": f"loadtest+{index}@example.invalid",
                },
            }
            async with gate:
                made = await self._call("POST", "/api/meetings", body)
            meeting = made["meetings"][0]
            self.booked.append(str(meeting["id"]))
            return Booking(
                str(meeting["id"]),
                room,
                host,
                str(meeting["token"]),
                str(meeting.get("guest_key") or ""),
            )

        return list(
            await asyncio.gather(
                *(one(first_index + i, room, host) for i, (room, host) in enumerate(plan))
            )
        )

    async def cancel_all(self) -> tuple[int, list[str]]:
        """Cancel every meeting booked here; (cancelled, failures)."""
        gate = asyncio.Semaphore(CONCURRENCY)
        failures: list[str] = []

        async def one(meeting_id: str) -> bool:
            async with gate:
                try:
                    await self._call("POST", f"/api/meetings/{meeting_id}/cancel")
                except (ProvisionError, aiohttp.ClientError, TimeoutError) as exc:
                    failures.append(str(exc))
                    return False
            return True

        done = await asyncio.gather(*(one(m) for m in self.booked))
        return sum(done), failures


class SeedProvisioner:
    """The fixtures of a seed file instead of the REST API (``--seed-file``).

    The file is JSON, made by the SRE for a deployment where the harness gets no
    API key: ``{"hosts": [{"id": ..., "name": ...}], "rooms": [{"slug": ...,
    "tokens": [link token, ...]}]}``. Every listed host may host every listed room
    (shared rooms of one team). Each link token is used once; a run that needs more
    than a room holds stops before it starts. Nothing is booked, so nothing is
    cancelled at the end: the links it used are spent (docs/loadtest.md)."""

    def __init__(self, seed: dict[str, Any]) -> None:
        try:
            self._hosts = [Host(str(h["id"]), str(h.get("name", h["id"]))) for h in seed["hosts"]]
            self._tokens = {str(r["slug"]): [str(t) for t in r["tokens"]] for r in seed["rooms"]}
        except (KeyError, TypeError) as exc:
            raise ProvisionError(f"the seed file lacks {exc}: see docs/loadtest.md") from None
        if not self._hosts or not self._tokens:
            raise ProvisionError("the seed file needs at least one host and one room")
        self.booked: list[str] = []

    @classmethod
    def from_path(cls, path: str) -> SeedProvisioner:
        try:
            with open(path, encoding="utf-8") as handle:
                seed = json.load(handle)
        except (OSError, ValueError) as exc:
            raise ProvisionError(f"cannot read the seed file: {exc}") from None
        if not isinstance(seed, dict):
            raise ProvisionError("the seed file must hold a JSON object")
        return cls(seed)

    async def __aenter__(self) -> SeedProvisioner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def hosts(self) -> list[Host]:
        return list(self._hosts)

    async def rooms(self, count: int) -> list[str]:
        """``count`` rooms of the seed, reused in turn when it lists fewer."""
        slugs = list(self._tokens)
        return [slugs[i % len(slugs)] for i in range(count)]

    async def book(self, plan: list[tuple[str, str]], first_index: int = 0) -> list[Booking]:
        made: list[Booking] = []
        for room, host in plan:
            tokens = self._tokens[room]
            if not tokens:
                raise ProvisionError(f"the seed file has too few links for room {room}")
            made.append(Booking(f"seed-{first_index + len(made)}", room, host, tokens.pop(0), ""))
        return made

    async def cancel_all(self) -> tuple[int, list[str]]:
        return 0, []
