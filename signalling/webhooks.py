"""Webhooks: every log entry this node appends, POSTed to integrating systems.

Each entry becomes one JSON body (``id`` = ``team:seq``, unique and stable, so
a receiver can drop a redelivery) signed with
``X-Vestibule-Signature: sha256=<hex HMAC-SHA256(webhook_secret, body)>``.
Bodies carry ids and states only, never a guest's name, email or a token.

A slow or dead endpoint never slows the hub: the presence log hands entries
over synchronously into a bounded queue, and one task delivers them in order,
to each URL in turn. A delivery that fails (an error status, a refused or
timed-out connection) is retried with exponential backoff, a bounded number of
times; then it is given up and counted in ``vestibule_webhook_dead_letters``.
When the queue is full the *oldest* waiting entry is dropped and counted the
same way (once per URL it will not reach): the newest state matters most to a
receiver catching up, and the log (``/ws/dashboard`` with ``since``) still has it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import deque

import aiohttp
import orjson
import structlog

from rooms.presence import LogEntry
from signalling.metrics import Metrics
from signalling.settings import Settings
from signalling.views import iso

log = structlog.get_logger("vestibule.webhooks")

SIGNATURE_HEADER = "X-Vestibule-Signature"
EVENT_HEADER = "X-Vestibule-Event"
#: per request: an endpoint that takes longer is treated as down (and retried)
REQUEST_TIMEOUT = 10.0
#: no single backoff wait longer than this, however many attempts are allowed
MAX_BACKOFF = 60.0


def body_of(entry: LogEntry) -> bytes:
    """The JSON body posted for ``entry``."""
    return orjson.dumps(
        {
            "id": f"{entry.team_id}:{entry.seq}",
            "team": entry.team_id,
            "seq": entry.seq,
            "at": iso(entry.at),
            "topic": entry.topic,
            "kind": entry.kind,
            "meeting": entry.meeting_id,
            "data": dict(entry.data),
        }
    )


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """A bounded queue of entries and the one task that posts them."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.urls = settings.webhook_urls
        self.secret = settings.webhook_secret
        self.attempts = max(1, settings.webhook_attempts)
        self.backoff = settings.webhook_backoff
        self.limit = max(1, settings.webhook_queue)
        self.metrics = metrics
        self.queue: deque[LogEntry] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.session: aiohttp.ClientSession | None = None

    def enqueue(self, entry: LogEntry) -> None:
        """Take an entry (an entry listener of the presence log; never blocks)."""
        if len(self.queue) >= self.limit:
            dropped = self.queue.popleft()
            self.metrics.webhook_dead_letters.inc(len(self.urls))
            log.warning(
                "webhook queue full, oldest entry dropped", team=dropped.team_id, seq=dropped.seq
            )
        self.queue.append(entry)
        self._idle.clear()
        self._wake.set()

    async def idle(self) -> None:
        """Wait until every queued entry was delivered or given up (tests, shutdown)."""
        await self._idle.wait()

    async def run(self) -> None:
        """Deliver queued entries in order, forever (owned by the app)."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.session = session
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self.queue:
                    entry = self.queue.popleft()
                    body = body_of(entry)
                    for url in self.urls:
                        await self._deliver(url, entry, body)
                self._idle.set()

    async def _deliver(self, url: str, entry: LogEntry, body: bytes) -> bool:
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: f"{entry.team_id}:{entry.seq}",
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            problem = await self._post(url, body, headers)
            if problem is None:
                return True
            log.info(
                "webhook delivery failed",
                team=entry.team_id,
                seq=entry.seq,
                attempt=attempt,
                problem=problem,
            )
            if attempt < self.attempts:
                await asyncio.sleep(min(delay, MAX_BACKOFF))
                delay *= 2
        self.metrics.webhook_dead_letters.inc()
        log.warning("webhook delivery given up", team=entry.team_id, seq=entry.seq)
        return False

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """None on a 2xx answer, else what went wrong."""
        assert self.session is not None
        try:
            async with self.session.post(url, data=body, headers=headers) as response:
                await response.read()
                return None if 200 <= response.status < 300 else f"status {response.status}"
        except (aiohttp.ClientError, TimeoutError) as err:
            return type(err).__name__
