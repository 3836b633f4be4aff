"""The typed ``web.AppKey``s under which the app keeps its components.

A module of its own, so that the REST handlers and the bootstrap can both
import the keys without importing each other.
"""

from __future__ import annotations

from aiohttp import web

from signalling.bus import Bus
from signalling.clock import Clock
from signalling.dashboard import Dashboard
from signalling.endpoint import Heartbeat
from signalling.hub import Hub
from signalling.metrics import Metrics
from signalling.outbox import Outbox
from signalling.presence import PresenceLog
from signalling.room_changes import RoomChanges
from signalling.room_commands import RoomCommands
from signalling.scheduler import StatusScheduler
from signalling.sealing import Sealer
from signalling.settings import Settings
from signalling.staff_sockets import StaffSockets
from signalling.store.base import Store
from signalling.throttle import WindowLimiter
from signalling.webhooks import WebhookSender

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
BUS = web.AppKey("bus", Bus)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
PRESENCE = web.AppKey("presence", PresenceLog)
HUB = web.AppKey("hub", Hub)
ROOMS = web.AppKey("rooms", RoomCommands)
#: a changed room reaches its live room on every node
ROOM_CHANGES = web.AppKey("room_changes", RoomChanges)
DASHBOARD = web.AppKey("dashboard", Dashboard)
HEARTBEAT = web.AppKey("heartbeat", Heartbeat)
SCHEDULER = web.AppKey("scheduler", StatusScheduler)
#: present only when webhook URLs are configured
WEBHOOKS = web.AppKey("webhooks", WebhookSender)
LOGIN_LIMITER = web.AppKey("login_limiter", WindowLimiter)
#: attempts with patient links (pick a slot, review) per client address
PATIENT_LINK_LIMITER = web.AppKey("patient_link_limiter", WindowLimiter)


class Readiness:
    """Whether the node may be sent traffic (``/readyz``): a start-up step that
    runs after the socket listens (seeding the demo) holds it until done."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        #: what start-up still does, by name; ready when empty
        self.pending: set[str] = set()


READINESS = web.AppKey("readiness", Readiness)
#: seals and opens guest links and keys at rest (the data key)
SEALER = web.AppKey("sealer", Sealer)
#: messages to guests: scheduling on booking and change, and their delivery
OUTBOX = web.AppKey("outbox", Outbox)
STAFF_SOCKETS = web.AppKey("staff_sockets", StaffSockets)
