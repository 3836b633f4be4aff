"""A dashboard that accounts for every seq of its scope (docs/protocol.md, the
``watermark``).

A dashboard receives only the entries its scope includes, in increasing seq
order, and a ``watermark`` N whenever entries it was not sent came after the
last thing it was told. So once it has been told N (an entry's seq or a
watermark), every entry up to N of a meeting in its scope must have arrived:
the ledger checks that against the team's log in the store. Its scope's
meetings are those of its snapshot and of the entries it received.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from signalling.store.redis import RedisStore
from tests.multinode.conftest import Cluster, Node
from tests.multinode.wire import WAIT, Peer


@dataclass
class Ledger:
    peer: Peer
    #: the highest seq it has been told (an entry's or a watermark's)
    last: int
    meetings: set[str]
    entries: list[dict[str, Any]] = field(default_factory=list)
    #: (seq told before, seq) for each entry or watermark that did not go forward
    disorder: list[tuple[int, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Read the dashboard until cancelled (a closed socket fails the task)."""
        while True:
            msg = await self.peer.next(3600)
            if msg["type"] == "watermark":
                seq = int(msg["seq"])
                if seq < self.last:
                    self.disorder.append((self.last, seq))
                self.last = max(self.last, seq)
            elif msg["type"] in ("presence", "meeting") and "seq" in msg:
                seq = int(msg["seq"])
                if seq <= self.last:
                    self.disorder.append((self.last, seq))
                self.last = max(self.last, seq)
                self.entries.append(msg)
                if msg.get("meeting"):
                    self.meetings.add(str(msg["meeting"]))
            self.changed.set()

    def left(self, pids: set[str]) -> list[dict[str, Any]]:
        """The ``left`` entries about these participants."""
        return [e for e in self.entries if e.get("kind") == "left" and e.get("participant") in pids]

    async def until(self, kind: str, pid: str, wait: float = WAIT) -> None:
        """Wait for the entry ``kind`` about ``pid``."""
        await self._until(
            lambda: any(
                e.get("kind") == kind and e.get("participant") == pid for e in self.entries
            ),
            wait,
        )

    async def told(self, seq: int, wait: float = WAIT) -> None:
        """Wait until it has been told ``seq`` (an entry or a watermark)."""
        await self._until(lambda: self.last >= seq, wait)

    async def _until(self, done: Any, wait: float) -> None:
        async with asyncio.timeout(wait):
            while not done():
                self.changed.clear()
                await self.changed.wait()

    def missing(self, log: list[tuple[int, str | None]]) -> list[int]:
        """The seqs of ``log`` ((seq, meeting) of the team's entries) in scope and
        up to what it was told that it never received."""
        got = {int(e["seq"]) for e in self.entries}
        return [
            seq
            for seq, meeting in log
            if meeting in self.meetings and seq <= self.last and seq not in got
        ]


async def dashboard(http: aiohttp.ClientSession, cluster: Cluster, node: Node, host: str) -> Ledger:
    """The host's dashboard on ``node``, scope ``everyone``, counting from its snapshot."""
    board = await http.ws_connect(node.dashboard)
    await board.send_json({"type": "hello", "jwt": cluster.mint_jwt(host)})
    await board.send_json({"type": "subscribe", "scope": "everyone"})
    peer = Peer(board, node.dashboard)
    snapshot = await peer.expect("snapshot")
    meetings = {str(m["id"]) for m in snapshot["meetings"]}
    return Ledger(peer, int(snapshot["seq"]), meetings)


async def no_seq_missing(
    ledgers: list[Ledger], counting: list[asyncio.Task[None]], redis_url: str, team: str
) -> None:
    """Every ledger, told up to the end of the team's log, received every entry of
    its scope, in order, and is still counting (nothing failed or closed)."""
    store = RedisStore(redis_url)
    await store.open()
    try:
        entries = await store.log_since(team, 0, 100_000)
    finally:
        await store.close()
    log = [(e.seq, e.meeting_id) for e in entries]
    high = max((seq for seq, _ in log), default=0)
    for ledger in ledgers:
        await ledger.told(high)
    for task in counting:
        assert not task.done(), task
        task.cancel()
    assert [ledger.missing(log) for ledger in ledgers] == [[] for _ in ledgers]
    assert [ledger.disorder for ledger in ledgers] == [[] for _ in ledgers]
    assert all(ledger.meetings for ledger in ledgers)
