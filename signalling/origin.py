"""The Origin rule: which browser pages may act with a staff session cookie.

A browser names the page that opened a websocket, or sent a cross-site
request, in its ``Origin`` header. A cookie-authenticated websocket upgrade or
unsafe REST request counts only from the server's own origin: the origin of
its public URL when one is configured (else the request's own ``Host``, which
a page elsewhere cannot choose), or one listed in ``allowed_origins``. A
request with no ``Origin`` at all comes from something that is not a browser
page (a script holding the credential itself), which no other site can make a
browser send. ``Origin: null`` (sandboxed frames, files) is never the server's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from rooms.errors import ForeignOrigin
from signalling.settings import Settings
from signalling.staff_auth import COOKIE as SESSION_COOKIE

#: methods that change something; GET, HEAD and OPTIONS never do
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class OriginPolicy:
    """The one place the Origin rule lives (see the module docstring)."""

    __slots__ = ("_allowed", "_public")

    def __init__(self, settings: Settings) -> None:
        self._public = origin_of(settings.public_url) if settings.public_url else None
        self._allowed = frozenset(origin_of(o) for o in settings.allowed_origins)

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a request with this ``Origin`` (None: absent) and ``Host`` header
        may act with the session cookie."""
        if origin is None:
            return True
        if origin.strip().lower() == "null":
            return False
        try:
            given = origin_of(origin)
        except ValueError:  # a malformed port
            return False
        if given in self._allowed:
            return True
        if self._public is not None:
            return given == self._public
        if not host:
            return False
        scheme = given.split("://", 1)[0]
        try:
            return given == origin_of(f"{scheme}://{host}")
        except ValueError:
            return False

    def websocket_origin(self, host: str | None) -> str:
        """The server's own websocket origin (for the pages' CSP ``connect-src``)."""
        base = origin_of(self._public) if self._public else f"http://{host or 'localhost'}"
        scheme, rest = base.split("://", 1)
        return ("wss" if scheme == "https" else "ws") + "://" + rest


def rest_guard(policy: OriginPolicy) -> Middleware:
    """Middleware: a request under ``/api`` that changes something and acts with
    the session cookie (it carries the cookie and no ``Authorization`` header),
    or logs in to get one, is refused with 403 ``foreign_origin`` before any
    handler runs when its ``Origin`` is not the server's own. A request with a
    Bearer credential, or with no staff credential at all (the guest's review,
    which carries its own secret), is not covered: no other site can make a
    browser attach a credential it does not hold."""

    # A plain function handing back the handler's awaitable: a coroutine here would
    # keep a frame alive for as long as the handler runs (a websocket's lifetime).
    @web.middleware
    def guard(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        if (
            request.method in UNSAFE_METHODS
            and request.path.startswith("/api/")
            and _ambient(request)
            and not policy.allows(request.headers.get("Origin"), request.host)
        ):
            raise ForeignOrigin()
        return handler(request)

    return guard


def _ambient(request: web.Request) -> bool:
    """Whether the request acts with a credential the browser adds by itself."""
    if "Authorization" in request.headers:
        return False
    return request.path == "/api/login" or SESSION_COOKIE in request.cookies
