"""RedisBus: the event bus over Redis pub/sub, for several nodes sharing Redis.

Every team has one channel, ``vst:team:<team_id>``; a log entry travels on it
as msgpack, tagged with the id of the node that published it. A node hands
its own entries to its own listeners directly (no round trip through Redis)
and drops them when Redis echoes them back, so no listener ever sees an entry
twice and a node never pays for decoding its own publications (docs/architecture.md, "The
hot path").

**Meeting changes.** Besides its team's channel, each meeting entry (a change
to the record, or to its status) puts ``<node_id>|<meeting_id>`` on the one
channel ``vst:meetings`` that every node subscribes to, so every node drops its
copy of that meeting (signalling.presence) whatever teams it follows.

**Announcements.** A node tells the others that a record changed
(signalling.bus, ``announce``) on one channel per topic, ``vst:rooms``,
``vst:accounts`` and ``vst:queues``, as ``<node_id>|<id>``; every node subscribes to them at
start and ignores its own.

**Unreliable on purpose.** Pub/sub delivers at most once: a node that is
disconnected, or subscribes a moment after an entry was published, misses it.
Nothing here retries, because the listeners do not need it: every entry is
already in the store's per-team log, by sequence number, before it is
published (signalling.presence), and the dashboard feed sends a subscriber
whose next entry is not ``last + 1`` back to the store to catch up
(signalling.dashboard). When the subscriber connection comes back after it
was lost, the listeners are told (``on_reconnect``) and catch up from the
store at once; a missed entry is therefore delayed, never lost.

Subscriptions follow the listeners: a node subscribes to a team's channel
while it has at least one listener for that team and unsubscribes after the
last one leaves, so a node only receives the teams its dashboards watch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from rooms.presence import LogEntry
from signalling.bus import TOPICS, Listener
from signalling.store import codec

if TYPE_CHECKING:
    from signalling.bus import Bus

log = structlog.get_logger("vestibule.bus")

#: pause before retrying after Redis dropped the subscriber connection: long
#: enough not to spin while Redis restarts, short enough that dashboards are
#: live again within a second of it being back
RETRY_DELAY = 0.5


def team_channel(team_id: str, prefix: str = "vst:") -> str:
    """The pub/sub channel of one team's log entries."""
    return f"{prefix}team:{team_id}"


def meetings_channel(prefix: str = "vst:") -> str:
    """The pub/sub channel of every changed meeting's id (``<node_id>|<meeting_id>``)."""
    return f"{prefix}meetings"


def topic_channel(topic: str, prefix: str = "vst:") -> str:
    """The pub/sub channel of a topic's announcements (``<node_id>|<id>``)."""
    return f"{prefix}{topic}"


def encode(entry: LogEntry, node_id: str) -> bytes:
    """An entry as it travels on the bus (msgpack, tagged with its node)."""
    return codec.pack_value(
        {
            "n": node_id,
            "s": entry.seq,
            "t": entry.team_id,
            "a": codec.micros(entry.at),
            "p": entry.topic,
            "k": entry.kind,
            "m": entry.meeting_id,
            "d": entry.data,
        }
    )


def decode(blob: bytes) -> tuple[str, LogEntry]:
    """(publishing node id, entry) of a bus message; ValueError if malformed."""
    try:
        raw: Any = codec.unpack_value(blob)
        entry = LogEntry(
            seq=int(raw["s"]),
            team_id=str(raw["t"]),
            at=codec.from_micros(raw["a"]),
            topic=str(raw["p"]),
            kind=str(raw["k"]),
            meeting_id=None if raw["m"] is None else str(raw["m"]),
            data=dict(raw["d"]),
        )
        return str(raw["n"]), entry
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed bus message: {err}") from None


class RedisBus:
    """The Bus protocol (signalling.bus) over Redis pub/sub; see the module docstring."""

    def __init__(self, url: str, node_id: str, *, prefix: str = "vst:") -> None:
        self.url = url
        self.node_id = node_id
        self.prefix = prefix
        self._listeners: dict[str, list[Listener]] = {}
        self._subscribed: set[str] = set()
        self._changed = asyncio.Event()
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnected: list[Callable[[], None]] = []
        self._meeting_listeners: list[Callable[[str], None]] = []
        self._meetings = meetings_channel(prefix).encode()
        self._topics = {topic_channel(t, prefix).encode(): t for t in TOPICS}
        self._announced: dict[str, list[Callable[[str], None]]] = {}

    # -- the Bus protocol ------------------------------------------------------------

    def subscribe(self, team_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for each entry of the team, from any node; returns unsubscribe."""
        self._listeners.setdefault(team_id, []).append(listener)
        if team_id not in self._subscribed:
            self._changed.set()

        def unsubscribe() -> None:
            listeners = self._listeners.get(team_id, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._listeners.pop(team_id, None)
                self._changed.set()

        return unsubscribe

    async def publish(self, entries: Sequence[LogEntry]) -> None:
        """Deliver to this node's listeners now, then to the other nodes through
        Redis: the batch's messages in one pipeline (one round trip, in order)."""
        for entry in entries:
            self._deliver(entry)
        if self._redis is None or not entries:
            return
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            pipe.publish(team_channel(entry.team_id, self.prefix), encode(entry, self.node_id))
            if entry.topic == "meeting" and entry.meeting_id is not None:
                pipe.publish(self._meetings, f"{self.node_id}|{entry.meeting_id}")
        try:
            await pipe.execute()
        except RedisError as err:
            # Other nodes' dashboards catch up from the store (module docstring).
            log.warning("bus publish failed", entries=len(entries), error=str(err))

    def on_meeting_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with each meeting id another node changed."""
        self._meeting_listeners.append(listener)

    async def announce(self, topic: str, subject: str) -> None:
        """Publish ``<node_id>|<subject>`` on the topic's channel."""
        if self._redis is None:
            return
        try:
            await self._redis.publish(
                topic_channel(topic, self.prefix), f"{self.node_id}|{subject}"
            )
        except RedisError as err:
            log.warning("bus announcement failed", topic=topic, error=str(err))

    def on_announcement(self, topic: str, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with each id another node announces on ``topic``."""
        self._announced.setdefault(topic, []).append(listener)

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the subscriber is back after a disconnection."""
        self._reconnected.append(listener)

    async def start(self) -> None:
        """Connect, and start the subscriber and subscription tasks."""
        self._redis = Redis.from_url(self.url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        # A node-private channel keeps the subscriber connection open (redis-py
        # refuses to read from a pub/sub with no subscription) before any team's.
        await self._pubsub.subscribe(
            f"{self.prefix}node:{self.node_id}", self._meetings, *self._topics
        )
        self._subscribed.clear()
        self._tasks = [
            asyncio.create_task(self._read(self._pubsub), name="bus-reader"),
            asyncio.create_task(self._follow_listeners(self._pubsub), name="bus-subscriptions"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # -- inside ----------------------------------------------------------------------

    def _deliver(self, entry: LogEntry) -> None:
        for listener in list(self._listeners.get(entry.team_id, ())):
            try:
                listener(entry)
            except Exception:  # one broken listener must not starve the others
                log.exception("bus listener failed", team=entry.team_id, seq=entry.seq)

    def _received(self, blob: bytes) -> None:
        try:
            node, entry = decode(blob)
        except ValueError as err:
            log.warning("bus message dropped", error=str(err))
            return
        if node == self.node_id:
            return  # ours, already delivered locally by publish()
        self._deliver(entry)

    async def _read(self, pubsub: PubSub) -> None:
        """Deliver every message from Redis, forever (owned by start/stop)."""
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except (RedisError, OSError) as err:
                log.warning("bus subscriber disconnected", error=str(err))
                await self._reconnect(pubsub)
                continue
            if message is not None and message.get("type") == "message":
                channel = message.get("channel")
                if channel == self._meetings:
                    self._meeting_changed(message["data"])
                elif channel in self._topics:
                    self._announcement(self._topics[channel], message["data"])
                else:
                    self._received(message["data"])

    def _meeting_changed(self, blob: bytes) -> None:
        node, _, meeting_id = blob.decode(errors="replace").partition("|")
        if node == self.node_id or not meeting_id:
            return  # ours: this node's copies are already fresh
        for listener in list(self._meeting_listeners):
            try:
                listener(meeting_id)
            except Exception:  # one broken listener must not starve the others
                log.exception("meeting change listener failed")

    def _announcement(self, topic: str, blob: bytes) -> None:
        node, _, subject = blob.decode(errors="replace").partition("|")
        if node == self.node_id or not subject:
            return  # ours: applied here before it was announced
        for listener in list(self._announced.get(topic, ())):
            try:
                listener(subject)
            except Exception:  # one broken listener must not starve the others
                log.exception("announcement listener failed", topic=topic)

    async def _reconnect(self, pubsub: PubSub) -> None:
        """Connect again (redis-py subscribes the channels again on connecting),
        then tell the listeners: what was published meanwhile is in the store, and
        they catch up now rather than at the team's next entry."""
        while True:
            await asyncio.sleep(RETRY_DELAY)
            try:
                await pubsub.ping()
            except (RedisError, OSError):
                continue
            break
        log.info("bus subscriber reconnected")
        for listener in list(self._reconnected):
            try:
                listener()
            except Exception:  # one broken listener must not starve the others
                log.exception("bus reconnect listener failed")

    async def _follow_listeners(self, pubsub: PubSub) -> None:
        """Keep the channels subscribed equal to the teams that have listeners.

        One task applies every change in order, so a subscribe and an
        unsubscribe of the same team can never overtake each other."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            wanted = set(self._listeners)
            add = sorted(wanted - self._subscribed)
            drop = sorted(self._subscribed - wanted)
            try:
                if add:
                    await pubsub.subscribe(*(team_channel(t, self.prefix) for t in add))
                    self._subscribed.update(add)
                if drop:
                    await pubsub.unsubscribe(*(team_channel(t, self.prefix) for t in drop))
                    self._subscribed.difference_update(drop)
            except (RedisError, OSError) as err:
                log.warning("bus subscription failed", error=str(err))
                self._changed.set()
                await asyncio.sleep(RETRY_DELAY)


if TYPE_CHECKING:  # mypy holds the class to the protocol it implements

    def _implements(bus: RedisBus) -> Bus:
        return bus
