"""A team's messaging choices: when reminders go, and its own templates.

``GET /api/messaging`` shows the reminder offsets and, for every trigger, the
template sources in use (the team's own part where it gave one, else the
shipped one) so that a page can offer them for editing; ``PUT`` replaces the
offsets and the overrides (a part left out, or given as null, is the shipped
one). Templates are checked to compile in the sandbox before they are stored.
Any member of the team, an API key of the team, or a manager viewing as it
may change them; the audit trail records who did.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from rooms.errors import Invalid
from rooms.outbox import TEMPLATE_PARTS, TeamMessaging, Trigger, check_offsets, check_templates
from signalling.api.body import obj, read_json
from signalling.api.scope import audit_actor, team_actor
from signalling.keys import OUTBOX, STORE
from signalling.outbox import Outbox


def setup(app: web.Application) -> None:
    app.router.add_get("/api/messaging", get_messaging)
    app.router.add_put("/api/messaging", put_messaging)


def _json(outbox: Outbox, messaging: TeamMessaging) -> dict[str, Any]:
    templates: dict[str, Any] = {}
    for trigger in Trigger:
        own = messaging.templates.get(str(trigger)) or {}
        templates[str(trigger)] = {
            part: {"source": own.get(part) or outbox.templates.shipped(trigger, part),
                   "own": part in own}
            for part in TEMPLATE_PARTS
        }  # fmt: skip
    return {
        "reminder_offsets": [int(o.total_seconds()) for o in messaging.reminder_offsets],
        "templates": templates,
    }


async def get_messaging(request: web.Request) -> web.Response:
    actor = await team_actor(request)
    outbox = request.app[OUTBOX]
    return web.json_response(_json(outbox, await outbox.messaging(actor.team.id)))


async def put_messaging(request: web.Request) -> web.Response:
    """PUT /api/messaging {reminder_offsets: [seconds], templates: {trigger: {part: source}}}"""
    actor = await team_actor(request)
    body = await read_json(request)
    raw_offsets = body.get("reminder_offsets", [])
    if not isinstance(raw_offsets, list) or not all(
        isinstance(o, int) and not isinstance(o, bool) for o in raw_offsets
    ):
        raise Invalid("reminder_offsets must be a list of whole seconds")
    offsets = check_offsets([timedelta(seconds=o) for o in raw_offsets])
    raw_templates = obj(body, "templates") or {}
    if any(not isinstance(parts, dict) for parts in raw_templates.values()):
        raise Invalid("templates: each trigger's parts must be an object")
    cleaned = {
        name: {part: source for part, source in parts.items() if source is not None}
        for name, parts in raw_templates.items()
    }
    templates = {k: v for k, v in check_templates(cleaned).items() if v}
    outbox = request.app[OUTBOX]
    outbox.templates.check(templates)
    messaging = TeamMessaging(actor.team.id, offsets, templates)
    await request.app[STORE].put_messaging(messaging)
    await audit_actor(request, actor, "team.messaging")
    return web.json_response(_json(outbox, messaging))
