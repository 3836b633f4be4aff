"""The worker pool under stress: full capacity, ICE that never completes, dead and hung workers."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from mediacheck.service import MediaCheckService, MediaCheckSettings
from mediacheck.synthetic import PatternVideoTrack, SyntheticClient, ToneAudioTrack
from rooms.errors import BadMessage, Busy
from tests.mediacheck.conftest import WAIT, Run, begin_check

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

#: One worker, one slot, one queue place: capacity 1 + 1 waiting, the third is refused.
SETTINGS = MediaCheckSettings(
    workers=1,
    per_worker=1,
    queue=1,
    window=1.5,
    connect_timeout=2.0,
    hard_cap=10.0,
    heartbeat=0.25,
    heartbeat_timeout=1.5,
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def service() -> AsyncIterator[MediaCheckService]:
    svc = MediaCheckService(SETTINGS)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()
        assert svc.stats()["workers"] == 0


def client() -> SyntheticClient:
    return SyntheticClient(PatternVideoTrack(), ToneAudioTrack())


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds: no timed sleep, bounded by WAIT."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 - state of the service, no event to wait on
            await asyncio.sleep(0)


async def finish(run: Run) -> None:
    await run.client.close()


async def test_workers_yield_the_cpu_to_signalling(service: MediaCheckService) -> None:
    pids = service.stats()["worker_pids"]
    assert pids
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    for pid in pids:
        assert os.getpriority(os.PRIO_PROCESS, pid) == mine + SETTINGS.niceness


async def test_a_good_check_passes_on_the_pool(service: MediaCheckService) -> None:
    run = await begin_check(service, "warmup", client())
    try:
        result = await asyncio.wait_for(run.handle.result(), WAIT)
    finally:
        await finish(run)
    assert result.verdict == "passed", result.to_dict()
    assert service.stats()["in_flight"] == 0


async def test_unparseable_offer_is_bad_message(service: MediaCheckService) -> None:
    offer = "v=0\r\nm=video x UDP 96\r\na=ice-pwd:hunter2hunter2\r\n"
    with pytest.raises(BadMessage) as bad:
        await asyncio.wait_for(service.begin("bad-sdp", offer), WAIT)
    assert "hunter2" not in bad.value.message  # never echoes SDP (it holds ICE secrets)
    with pytest.raises(BadMessage):
        await service.begin("huge", "v=0\r\n" + "a=x\r\n" * 20_000)
    assert service.stats()["in_flight"] == 0


async def test_beyond_capacity_and_queue_is_busy(service: MediaCheckService) -> None:
    first = await begin_check(service, "holder", client())
    waiting_client = client()
    queued = asyncio.create_task(begin_check(service, "queued", waiting_client))
    try:
        await until(lambda: service.stats()["queued"] == 1)
        assert service.stats()["in_flight"] == 1
        refused_client = client()
        try:
            with pytest.raises(Busy) as refused:
                await service.begin("refused", await refused_client.offer())
        finally:
            await refused_client.close()
        assert refused.value.retry_after > 0
        assert refused.value.code == "busy"
        # The slot frees when the first check is cancelled: the queued one starts.
        await first.handle.cancel()
        cancelled = await asyncio.wait_for(first.handle.result(), WAIT)
        assert [f.code for f in cancelled.reasons] == ["cancelled"]
        second = await asyncio.wait_for(queued, WAIT)
        result = await asyncio.wait_for(second.handle.result(), WAIT)
        assert result.verdict == "passed", result.to_dict()
    finally:
        if not queued.done():
            queued.cancel()
        await asyncio.gather(queued, return_exceptions=True)
        await finish(first)
        await waiting_client.close()


async def test_client_that_never_completes_ice_fails_in_budget(service: MediaCheckService) -> None:
    # The client gets its answer and disappears: no connectivity check ever succeeds.
    run = await begin_check(service, "vanished", client(), accept=False)
    await run.client.close()
    result = await asyncio.wait_for(run.handle.result(), WAIT)
    assert [f.code for f in result.reasons] == ["ice_failed"]
    # failed by the connect budget, well before the hard cap
    assert result.elapsed < SETTINGS.hard_cap
    assert run.phases[0] == "connecting" and "receiving" not in run.phases


async def test_killed_worker_fails_its_check_and_is_replaced(service: MediaCheckService) -> None:
    run = await begin_check(service, "doomed", client())
    try:
        await asyncio.wait_for(run.receiving.wait(), WAIT)
        pid = run.handle.stats()["worker_pid"]
        os.kill(pid, signal.SIGKILL)
        result = await asyncio.wait_for(run.handle.result(), WAIT)
    finally:
        await finish(run)
    assert [f.code for f in result.reasons] == ["worker_failed"]
    # The next check waits for the replacement worker and passes.
    nxt = await begin_check(service, "after-kill", client())
    try:
        result = await asyncio.wait_for(nxt.handle.result(), WAIT)
    finally:
        await finish(nxt)
    assert result.verdict == "passed", result.to_dict()
    assert pid not in service.stats()["worker_pids"]
    assert service.stats()["workers_alive"] == 1


async def test_hung_worker_is_killed_by_the_watchdog(service: MediaCheckService) -> None:
    run = await begin_check(service, "frozen-worker", client())
    try:
        await asyncio.wait_for(run.receiving.wait(), WAIT)
        pid = run.handle.stats()["worker_pid"]
        os.kill(pid, signal.SIGSTOP)  # alive but silent: no heartbeat, no result
        result = await asyncio.wait_for(run.handle.result(), WAIT)
    finally:
        await finish(run)
    assert [f.code for f in result.reasons] == ["worker_failed"]
    await until(lambda: service.stats()["workers_alive"] == 1)
    assert pid not in service.stats()["worker_pids"]
