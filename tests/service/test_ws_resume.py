"""Resume: a dropped socket keeps its session for the window; after it, the
participant has left and the resume secret is refused."""

from __future__ import annotations

from typing import Any

from tests.service.conftest import ADA, Peer, World
from tests.service.ws_support import detached, probe, quiet, refused, until


async def _admitted(world: World, host: Peer) -> Peer:
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    await host.send({"type": "admit", "participant": guest.pid})
    await guest.expect("joined")
    await host.expect("participant", event="came")
    await quiet(host, guest)
    return guest


async def _resume(world: World, old: Peer) -> Peer:
    peer = await world.enter({"resume": old.welcome["resume"]})
    assert peer.welcome["resumed"] is True
    assert (peer.welcome["participant"], peer.welcome["session"]) == (
        old.pid,
        old.welcome["session"],
    )
    return peer


async def test_a_waiting_guest_resumes_its_place_and_gets_what_was_said(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    await guest.ws.close()  # dropped, no leave
    await until(detached(world, guest))
    await host.send({"type": "say", "text": "Back in two minutes"})
    await quiet(host)
    back = await _resume(world, guest)
    replayed = await back.expect("waiting")
    assert replayed == {
        "type": "waiting",
        "position": 1,
        "message": "Back in two minutes",
        "on_hold": False,
    }
    # still in the queue: the host can admit them
    await host.send({"type": "admit", "participant": back.pid})
    await back.expect("admitted")


async def test_a_guest_in_the_call_resumes_and_gets_the_signals_sent_meanwhile(
    world: World,
) -> None:
    host = await world.host(ADA)
    guest = await _admitted(world, host)
    await guest.ws.close()
    await until(detached(world, guest))
    await host.send({"type": "signal", "to": guest.pid, "kind": "offer", "sdp": "v=0 queued"})
    await host.send({"type": "signal", "to": guest.pid, "kind": "ice-restart"})
    assert await probe(host) == []  # relayed without error while the guest was away
    back = await _resume(world, guest)
    first = await back.recv()
    second = await back.recv()
    assert [first.get("sdp"), second["kind"]] == ["v=0 queued", "ice-restart"]
    await back.send({"type": "signal", "to": host.pid, "kind": "answer", "sdp": "v=0 answer"})
    assert (await host.expect("signal"))["from"] == guest.pid
    assert not [m for m in host.seen if m["type"] == "participant" and m["event"] == "went"]


async def test_after_the_window_the_participant_has_left(make_world: Any) -> None:
    world = await make_world(resume_window=0.3)
    host = await world.host(ADA)
    guest = await _admitted(world, host)
    await guest.ws.close()
    went = await host.expect("participant", event="went")
    assert went["id"] == guest.pid
    late = await world.connect({"resume": guest.welcome["resume"]})
    await refused(late, "token_invalid")


async def test_after_the_window_a_waiting_guest_leaves_the_queue(make_world: Any) -> None:
    world = await make_world(resume_window=0.3)
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    await guest.ws.close()
    await host.expect("lobby", waiting=[])
    late = await world.connect({"resume": guest.welcome["resume"]})
    await refused(late, "token_invalid")


async def test_a_resume_secret_is_not_a_link(world: World) -> None:
    guest = await world.guest(0)
    # a resume secret works only as resume, and a link token is not a resume secret
    wrong = await world.connect({"resume": world.meeting(0)["token"]})
    await refused(wrong, "token_invalid")
    await guest.send({"type": "ping", "ref": 1})
    await guest.expect("pong", ref=1)
