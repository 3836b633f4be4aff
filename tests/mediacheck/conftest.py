"""Helpers for the media-check integration tests: real aiortc clients, real workers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mediacheck.service import CheckHandle, MediaCheckService
from mediacheck.synthetic import SyntheticClient

#: Generous bound for anything awaited in these tests (a check takes ~2-3 s here).
WAIT = 20.0


@dataclass
class Run:
    """One check driven from a synthetic client, with the progress it reported."""

    client: SyntheticClient
    handle: CheckHandle
    phases: list[str] = field(default_factory=list)
    receiving: asyncio.Event = field(default_factory=asyncio.Event)


async def begin_check(
    service: MediaCheckService, check_id: str, client: SyntheticClient, accept: bool = True
) -> Run:
    """Offer from ``client``, hand the answer back (unless ``accept`` is False)."""
    phases: list[str] = []
    receiving = asyncio.Event()

    def on_progress(progress: object) -> None:
        phase = str(getattr(progress, "phase", ""))
        phases.append(phase)
        if phase == "receiving":
            receiving.set()

    offer = await client.offer()
    handle = await asyncio.wait_for(service.begin(check_id, offer, on_progress=on_progress), WAIT)
    if accept:
        await client.accept(handle.answer_sdp, handle.answer_type)
    return Run(client, handle, phases, receiving)
