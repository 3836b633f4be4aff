"""Staff credentials: session cookies, JWTs from integrating systems, API keys.

The session cookie is itself a short JWT (HS256, PyJWT) signed with the
server's secret, so any node can check it, HttpOnly and SameSite=Lax so page
scripts and other sites cannot use it. Each session has an id (``jti``); logout
records it in the store as ended, and every check of a cookie asks the store, so
a logged-out cookie is refused on every node at once; so is every credential
of a disabled account, or of a member (or API key) of a disabled client
account, since each check reads the account and its team. A manager's "view as" is a
claim in it (``act``). Integrating systems sign their own JWTs with the separate
API secret; those live at most ``jwt_max_lifetime`` seconds (an ``exp`` further
ahead, or further than that after ``iat``, is refused). API keys are random,
shown once, stored as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

from rooms.accounts import ApiKey, StaffAccount, StaffRole
from rooms.errors import NotFound, TokenInvalid, Unauthorized
from signalling.settings import Settings
from signalling.store.base import Store

COOKIE = "vestibule_session"
#: a working day plus margin; the page logs in again after that
SESSION_TTL = timedelta(hours=12)
_ALGORITHMS = ["HS256"]


@dataclass(frozen=True, slots=True)
class StaffPrincipal:
    """An authenticated staff account, and the team it acts in."""

    account: StaffAccount
    #: the team whose data this request may see: the member's own team, or the
    #: client team a manager is viewing as (None: a manager not viewing as anyone)
    team_id: str | None
    via: str  # "cookie" | "jwt" | "api_key"
    acting_as: str | None = None


def issue_session(
    settings: Settings, staff: StaffAccount, now: datetime, acting_as: str | None = None
) -> str:
    claims: dict[str, Any] = {
        "sub": staff.id,
        "iat": int(now.timestamp()),
        "exp": int((now + SESSION_TTL).timestamp()),
        "typ": "session",
        "jti": secrets.token_urlsafe(16),
    }
    if acting_as:
        claims["act"] = acting_as
    return jwt.encode(claims, settings.secret, algorithm="HS256")


def set_session_cookie(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=secure,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
    )


def _decode(
    token: str, secret: str, now: datetime, typ: str | None, max_lifetime: float | None = None
) -> dict[str, Any]:
    if not secret:
        raise TokenInvalid()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=_ALGORITHMS,
            # expiry is checked below against the server's (injectable) clock, so PyJWT
            # must not check exp or iat against its own
            options={"require": ["sub", "exp"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise TokenInvalid() from None
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= now.timestamp():
        raise TokenInvalid()
    if max_lifetime is not None:
        iat = claims.get("iat")
        if exp > now.timestamp() + max_lifetime:
            raise TokenInvalid()
        if iat is not None and (not isinstance(iat, int | float) or exp - iat > max_lifetime):
            raise TokenInvalid()
    if typ is not None and claims.get("typ") != typ:
        raise TokenInvalid()
    if not isinstance(claims.get("sub"), str):
        raise TokenInvalid()
    return claims


async def check_may_act(store: Store, account: StaffAccount) -> None:
    """TokenInvalid if ``account`` is disabled or a member of a disabled client
    account: every credential of it is refused from then on, on every node,
    since each check reads the account (and its team) from the store."""
    if account.disabled:
        raise TokenInvalid()
    if account.team_id is not None and account.role is StaffRole.MEMBER:
        await check_team_active(store, account.team_id)


async def check_team_active(store: Store, team_id: str) -> None:
    try:
        team = await store.get_team(team_id)
    except NotFound:
        raise TokenInvalid() from None
    if team.disabled:
        raise TokenInvalid()


async def _principal(store: Store, claims: dict[str, Any], via: str) -> StaffPrincipal:
    try:
        account = await store.get_staff(claims["sub"])
    except NotFound:
        raise TokenInvalid() from None
    await check_may_act(store, account)
    acting = claims.get("act") if account.team_id is None else None
    team_id = account.team_id or (acting if isinstance(acting, str) else None)
    return StaffPrincipal(account, team_id, via, acting_as=team_id if acting else None)


def _session_claims(settings: Settings, token: str, now: datetime) -> dict[str, Any]:
    claims = _decode(token, settings.secret, now, "session")
    if not isinstance(claims.get("jti"), str):
        raise TokenInvalid()
    return claims


async def from_session_cookie(
    store: Store, settings: Settings, token: str, now: datetime
) -> StaffPrincipal:
    """The staff behind a session cookie; TokenInvalid if it is forged, expired or
    was ended by logout (on any node)."""
    claims = _session_claims(settings, token, now)
    if await store.session_revoked(claims["jti"]):
        raise TokenInvalid()
    return await _principal(store, claims, "cookie")


async def end_session(store: Store, settings: Settings, token: str, now: datetime) -> bool:
    """Record the session of ``token`` as ended, so no node accepts it again.
    False (and nothing recorded) when the token is not a valid session anyway."""
    try:
        claims = _session_claims(settings, token, now)
    except TokenInvalid:
        return False
    until = datetime.fromtimestamp(claims["exp"], tz=UTC)
    await store.revoke_session(claims["jti"], until, now)
    return True


async def from_jwt(store: Store, settings: Settings, token: str, now: datetime) -> StaffPrincipal:
    """A staff JWT from an integrating system (HS256 with the API secret), living
    at most ``settings.jwt_max_lifetime`` seconds."""
    claims = _decode(token, settings.jwt_secret, now, None, settings.jwt_max_lifetime)
    return await _principal(store, claims, "jwt")


def new_api_key() -> tuple[str, str]:
    """(key shown once, its digest to store)."""
    key = "vk_" + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


async def from_api_key(store: Store, key: str) -> tuple[ApiKey, str]:
    record = await store.find_api_key(hashlib.sha256(key.encode()).hexdigest())
    if record is None or record.revoked_at is not None:
        raise TokenInvalid()
    await check_team_active(store, record.team_id)
    return record, record.team_id


async def authenticate_request(
    store: Store, settings: Settings, request: web.Request, now: datetime
) -> StaffPrincipal:
    """Staff behind an HTTP request: cookie, or Bearer JWT / API key. Unauthorized if none."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        credential = header[7:].strip()
        if credential.startswith("vk_"):
            record, team_id = await from_api_key(store, credential)
            # An API key acts as the team; it is attributed to no person, so REST
            # handlers that need a person (summary, reassign by "me") refuse it.
            account = StaffAccount(
                id=f"key:{record.id}",
                org_id="",
                team_id=team_id,
                role=StaffRole.MEMBER,
                email="",
                name=record.label,
                password_hash="",
            )
            return StaffPrincipal(account, team_id, "api_key")
        return await from_jwt(store, settings, credential, now)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return await from_session_cookie(store, settings, cookie, now)
    raise Unauthorized()
