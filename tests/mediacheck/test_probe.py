"""The probe run in this process: round-trip time from the return stream, the hard cap."""

from __future__ import annotations

import asyncio

from aiortc import RTCSessionDescription

from mediacheck.peer import ProbeSettings, run_check
from mediacheck.result import Progress
from mediacheck.synthetic import PatternVideoTrack, SyntheticClient, ToneAudioTrack
from tests.mediacheck.conftest import WAIT


async def test_sendrecv_offer_gets_a_round_trip_time() -> None:
    # 3.5 s: aiortc sends its first sender report 0.5-1.5 s after starting and the client
    # answers with a receiver report 0.5-1.5 s later; RTT exists only after both.
    settings = ProbeSettings(window=3.5, hard_cap=10.0)
    client = SyntheticClient(PatternVideoTrack(), ToneAudioTrack())
    answered: asyncio.Future[RTCSessionDescription] = asyncio.get_running_loop().create_future()
    progress: list[Progress] = []
    try:
        check = asyncio.create_task(
            run_check(await client.offer(), "offer", settings, answered.set_result, progress.append)
        )
        answer = await asyncio.wait_for(answered, WAIT)
        assert "a=sendrecv" in answer.sdp  # the return stream is negotiated
        await client.accept(answer.sdp, answer.type)
        result = await asyncio.wait_for(check, WAIT)
    finally:
        await client.close()
    assert result.verdict == "passed", result.to_dict()
    rtt = result.figures["rtt_ms"]
    # Its presence is the point (it comes only from the return stream); its size on a
    # loaded machine is a benchmark's business, not a test's.
    assert isinstance(rtt, float) and rtt >= 0
    assert progress[-1].phase == "analysing"


async def test_hard_cap_ends_the_check_with_timeout() -> None:
    # The cap (1 s) strikes before the connect budget (5 s) of a client that never answers.
    settings = ProbeSettings(connect_timeout=5.0, hard_cap=1.0)
    client = SyntheticClient(PatternVideoTrack(), ToneAudioTrack())
    answered: asyncio.Future[RTCSessionDescription] = asyncio.get_running_loop().create_future()
    try:
        result = await asyncio.wait_for(
            run_check(await client.offer(), "offer", settings, answered.set_result, lambda _: None),
            WAIT,
        )
    finally:
        await client.close()
    assert answered.done()
    assert [f.code for f in result.reasons] == ["timeout"]
    assert 1.0 <= result.elapsed < settings.connect_timeout  # the cap struck first
