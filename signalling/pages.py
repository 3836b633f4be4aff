"""The browser pages (web/): static files, no build step.

Every page response carries headers that matter for links carrying tokens:
``Referrer-Policy: no-referrer`` (a join URL must never leak to another site
through the Referer header), ``Cache-Control: no-store`` on pages, a strict
Content-Security-Policy (scripts and styles from this origin only; websockets
to this origin), and camera/microphone allowed for this origin only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=()",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}

PAGES = {
    "/": "index.html",
    "/login": "login.html",
    "/dashboard": "dashboard.html",
    "/manage": "manage.html",
    "/join/{token}": "join.html",
    "/r/{slug}": "room.html",
}


def _page(name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = WEB_ROOT / name

    async def handler(request: web.Request) -> web.StreamResponse:
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})

    return handler


@web.middleware
async def _security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:  # a websocket's headers went out long ago
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def setup(app: web.Application) -> None:
    for route, name in PAGES.items():
        app.router.add_get(route, _page(name))
    static = WEB_ROOT / "static"
    if static.is_dir():
        app.router.add_static("/static/", static, follow_symlinks=False)
    app.middlewares.append(_security_headers)
