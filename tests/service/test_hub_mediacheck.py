"""The media check through /ws: a real aiortc client, real worker processes.

One good check drives the whole path: answer, progress, result, the
``checked`` presence event, and the host's lobby indicator turning green.
"""

from __future__ import annotations

from mediacheck.synthetic import PatternVideoTrack, SyntheticClient, ToneAudioTrack
from signalling.keys import STORE
from tests.service.conftest import ADA, World, WorldFactory


async def test_media_check_result_reaches_guest_log_and_host(make_world: WorldFactory) -> None:
    world: World = await make_world(mediacheck=True, mediacheck_workers=1)
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect(
        "lobby", where=lambda m: m["waiting"] and m["waiting"][0]["indicator"] == "entered"
    )
    client = SyntheticClient(video=PatternVideoTrack(), audio=ToneAudioTrack())
    try:
        await guest.send({"type": "mediacheck.offer", "sdp": await client.offer(), "ref": 9})
        answer = await guest.expect("mediacheck.answer", timeout=60)
        assert answer["ref"] == 9
        await client.accept(answer["sdp"])
        progress = await guest.expect("mediacheck.progress", timeout=20)
        assert progress["check"] == answer["check"]
        result = await guest.expect("mediacheck.result", timeout=30)
    finally:
        await client.close()
    assert result["verdict"] == "passed", result
    assert result["check"] == answer["check"]
    assert result["figures"]["fps"] > 5
    lobby = await host.expect(
        "lobby", where=lambda m: m["waiting"][0]["indicator"] == "check_passed"
    )
    assert lobby["waiting"][0]["id"] == guest.pid
    await world.flush()
    entries = await world.app[STORE].log_since("demo-team", 0)
    checked = [e for e in entries if e.kind == "checked"]
    assert checked and checked[-1].data["detail"]["verdict"] == "passed"
    assert checked[-1].meeting_id == world.meeting(0)["id"]
