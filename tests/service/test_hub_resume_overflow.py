"""A dropped session whose queue fills up ends, rather than silently losing messages."""

from __future__ import annotations

from tests.service.conftest import ADA, WorldFactory


async def test_a_full_queue_ends_the_dropped_session(make_world: WorldFactory) -> None:
    world = await make_world(send_queue=3, resume_window=600)
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: [w["id"] for w in m["waiting"]] == [guest.pid])
    resume = guest.welcome["resume"]
    await guest.ws.close()  # dropped, within a long resume window
    # each message to waiting guests queues one `waiting` for the dropped guest
    for n in range(5):
        await host.send({"type": "say", "text": f"update {n}"})
    # past three queued messages the guest's session ends and they leave the queue
    await host.expect("lobby", where=lambda m: m["waiting"] == [])
    late = await world.connect({"resume": resume})
    reply = await late.recv()
    assert (reply["type"], reply["code"]) == ("error", "token_invalid")


async def test_within_the_queue_a_dropped_session_keeps_everything(
    make_world: WorldFactory,
) -> None:
    world = await make_world(send_queue=3, resume_window=600)
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: [w["id"] for w in m["waiting"]] == [guest.pid])
    resume = guest.welcome["resume"]
    await guest.ws.close()
    await host.send({"type": "say", "text": "one"})
    await host.send({"type": "say", "text": "two"})
    await host.send({"type": "ping", "ref": "sync"})
    await host.expect("pong", ref="sync")
    back = await world.enter({"resume": resume})
    assert back.welcome["resumed"] is True
    assert (await back.expect("waiting"))["message"] == "one"
    assert (await back.expect("waiting"))["message"] == "two"
