"""Opening 1:1 rooms: two clients that may signal each other, on either target.

On the bare relay a pair is two connections to ``/ws?room=R&id=P``. On the hub it is
the real sequence of a call (docs/protocol.md): the host says ``hello`` with a staff
JWT and ``join``\\s; the guest says ``hello`` with the meeting's link token and
``join``\\s, and waits; the host sees the guest in its ``lobby`` and ``admit``\\s them;
the pair is ready when the guest got ``admitted`` and ``joined`` and the host was told
the guest ``came``. On PeerJS server a pair is two clients registered with their ids
(``OPEN`` received), signalling in PeerJS's own format (loadtest/peerjs.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from loadtest import peerjs
from loadtest.driver import Pair, WorkerState
from loadtest.wsclient import WsClient, WsError

#: pairs set up at once per worker: the hub's joins are the slow part and 20 in flight
#: keep it busy without queuing hundreds of upgrades behind each other
SETUP_CONCURRENCY = 20
STEP_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class BarePairSpec:
    room: str
    a_id: str
    b_id: str


@dataclass(frozen=True, slots=True)
class HubPairSpec:
    slug: str
    host_jwt: str
    guest_token: str


@dataclass(frozen=True, slots=True)
class PeerJsPairSpec:
    a_id: str
    b_id: str


PairSpec = BarePairSpec | HubPairSpec | PeerJsPairSpec


async def open_bare_pair(host: str, port: int, spec: BarePairSpec) -> Pair:
    a = await WsClient.connect(host, port, f"/ws?room={spec.room}&id={spec.a_id}")
    b = await WsClient.connect(host, port, f"/ws?room={spec.room}&id={spec.b_id}")
    return Pair(a=a, a_id=spec.a_id, b=b, b_id=spec.b_id)


async def open_peerjs(host: str, port: int, peer_id: str) -> WsClient:
    """A PeerJS client registered as ``peer_id`` (its ``OPEN`` received)."""
    client = await WsClient.connect(host, port, peerjs.path(peer_id), wait=STEP_TIMEOUT)
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            while True:
                body = orjson.loads(await client.recv(STEP_TIMEOUT))
                kind = body.get("type") if isinstance(body, dict) else None
                if kind == "OPEN":
                    return client
                if kind in ("ERROR", "ID-TAKEN"):
                    raise WsError(f"PeerJS refused {peer_id}: {body.get('payload')}")
    except BaseException:
        client.close()
        raise


async def open_peerjs_pair(host: str, port: int, spec: PeerJsPairSpec) -> Pair:
    a = await open_peerjs(host, port, spec.a_id)
    b = await open_peerjs(host, port, spec.b_id)
    return Pair(a=a, a_id=spec.a_id, b=b, b_id=spec.b_id, dialect="peerjs")


def _lists(guest: str) -> Any:
    return lambda body: any(w.get("id") == guest for w in body.get("waiting") or ())


async def open_hub_pair(host: str, port: int, spec: HubPairSpec) -> Pair:
    staff = await WsClient.connect(host, port, "/ws")
    staff.send_json({"type": "hello", "jwt": spec.host_jwt, "room": spec.slug})
    host_id = str((await staff.expect("welcome", wait=STEP_TIMEOUT))["participant"])
    staff.send_json({"type": "join"})
    await staff.expect("joined", wait=STEP_TIMEOUT)

    guest = await WsClient.connect(host, port, "/ws")
    guest.send_json({"type": "hello", "token": spec.guest_token, "name": "Load"})
    guest_id = str((await guest.expect("welcome", wait=STEP_TIMEOUT))["participant"])
    guest.send_json({"type": "join"})
    await guest.expect("waiting", wait=STEP_TIMEOUT)

    await staff.expect("lobby", wait=STEP_TIMEOUT, where=_lists(guest_id))
    staff.send_json({"type": "admit", "participant": guest_id})
    await guest.expect("admitted", wait=STEP_TIMEOUT)
    await guest.expect("joined", wait=STEP_TIMEOUT)
    await staff.expect(
        "participant",
        wait=STEP_TIMEOUT,
        where=lambda body: body.get("event") == "came" and body.get("id") == guest_id,
    )
    return Pair(a=staff, a_id=host_id, b=guest, b_id=guest_id)


async def open_pairs(state: WorkerState, host: str, port: int, specs: list[PairSpec]) -> int:
    """Worker call: open every pair of ``specs`` and keep them in ``state``."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(spec: PairSpec) -> Pair:
        async with gate:
            if isinstance(spec, BarePairSpec):
                return await open_bare_pair(host, port, spec)
            if isinstance(spec, PeerJsPairSpec):
                return await open_peerjs_pair(host, port, spec)
            return await open_hub_pair(host, port, spec)

    state.pairs.extend(await asyncio.gather(*(one(spec) for spec in specs)))
    for pair in state.pairs:
        pair.a.drop_queued()
        pair.b.drop_queued()
    return len(state.pairs)
