"""The browser pages (web/): static files, no build step.

Every page response carries headers that matter for links carrying tokens:
``Referrer-Policy: no-referrer`` (a join URL must never leak to another site
through the Referer header), ``Cache-Control: no-store`` on pages, a strict
Content-Security-Policy (scripts and styles from this origin only; websockets
to the server's own websocket origin only, signalling/origin.py), and
camera/microphone allowed for this origin only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from signalling.origin import OriginPolicy

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=()",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' {websocket}; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

PAGES = {
    "/": "index.html",
    "/login": "login.html",
    "/dashboard": "dashboard.html",
    "/manage": "manage.html",
    "/types": "types.html",
    "/book/{slug}": "book.html",
    "/manage/audit": "audit.html",
    "/team": "team.html",
    # an invited member chooses a password (the token stays in the address:
    # the page sends it once and the server spends it)
    "/welcome/{token}": "welcome.html",
    "/rooms": "rooms.html",
    "/join/{token}": "join.html",
    # the same page once it took the token out of the address bar (web/static/js/patient.js)
    "/join": "join.html",
    "/r/{slug}": "room.html",
    # the patient's link in the "proposed slots" message, then the cleaned address
    "/pick/{token}": "pick.html",
    "/pick": "pick.html",
    # the patient's link in the "review request" message, likewise
    "/review/{token}": "review.html",
    "/review": "review.html",
}


def _page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = WEB_ROOT / name

    async def handler(request: web.Request) -> web.StreamResponse:
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    return handler


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def security_headers(origins: OriginPolicy) -> Middleware:
    """The middleware that puts the security headers on every response."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:  # a websocket's headers went out long ago
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            csp = CSP.format(websocket=origins.websocket_origin(request.host))
            response.headers.setdefault("Content-Security-Policy", csp)
        return response

    return middleware


def setup(app: web.Application) -> None:
    for route, name in PAGES.items():
        app.router.add_get(route, _page(name))
    static = WEB_ROOT / "static"
    if static.is_dir():
        app.router.add_static("/static/", static, follow_symlinks=False)
