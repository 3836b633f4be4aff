"""Guest credentials at hello: single use, rejoin, revocation, validity window,
one uniform error, throttled guest-key guessing per address and the alarm per room."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from rooms.tokens import issue_credential
from signalling.keys import STORE
from tests.service.conftest import ADA, World
from tests.service.ws_support import add_meeting, assert_served, refused


async def _refusal(world: World, hello: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of a refused hello, after checking it closes 1008."""
    peer = await world.connect(hello)
    body = await refused(peer, "token_invalid")
    return body["code"], body["message"]


async def test_a_used_link_is_refused_to_another_device(world: World) -> None:
    first = await world.guest(0)
    assert first.welcome["rejoin"]
    assert await _refusal(world, {"token": world.meeting(0)["token"]}) == (
        "token_invalid",
        "this link or key is not valid",
    )
    # the redeeming device is not disturbed
    await first.send({"type": "ping", "ref": 1})
    await first.expect("pong", ref=1)


async def test_the_redeeming_device_rejoins_and_keeps_its_place(world: World) -> None:
    host = await world.host(ADA)
    ahead = await world.guest(0)
    invite = await add_meeting(world, ADA, world.room_of(ADA), "Behind Guest")
    behind = await world.enter({"token": invite.token})
    await behind.send({"type": "join"})
    await behind.expect("waiting", position=2)
    await ahead.ws.close()  # the browser went away without leaving
    back = await world.enter(
        {"token": world.meeting(0)["token"], "rejoin": ahead.welcome["rejoin"]}
    )
    assert back.pid == ahead.pid
    assert "rejoin" not in back.welcome  # the device keeps its secret
    assert (await back.expect("waiting"))["position"] == 1
    await host.send({"type": "admit", "participant": back.pid})
    await back.expect("admitted")
    # the same device may come back again while the other tab is still open
    again = await world.enter(
        {"token": world.meeting(0)["token"], "rejoin": ahead.welcome["rejoin"]}
    )
    await back.expect("goaway", reason="replaced")
    joined = await again.expect("joined")
    assert [p["id"] for p in joined["participants"]] == [host.pid]


async def test_a_device_that_used_the_key_rejoins_with_the_key(world: World) -> None:
    hello = {"guest_key": world.meeting(0)["guest_key"], "room": world.room_of(ADA)}
    first = await world.enter(hello)
    await first.send({"type": "join"})
    await first.expect("waiting", position=1)
    await first.ws.close()
    back = await world.enter({**hello, "rejoin": first.welcome["rejoin"]})
    assert back.pid == first.pid
    assert (await back.expect("waiting"))["position"] == 1
    # the rejoin secret belongs to this credential only
    await _refusal(
        world,
        {
            "guest_key": world.meeting(2)["guest_key"],
            "room": world.meeting(2)["room"],
            "rejoin": first.welcome["rejoin"],
        },
    )


async def test_rejoin_with_a_wrong_secret_is_refused(world: World) -> None:
    await world.guest(0)
    await _refusal(world, {"token": world.meeting(0)["token"], "rejoin": "j_" + "x" * 30})


async def test_the_guest_key_is_used_up_by_the_link(world: World) -> None:
    await world.guest(0)
    await _refusal(world, {"guest_key": world.meeting(0)["guest_key"], "room": world.room_of(ADA)})


async def test_the_link_is_used_up_by_the_guest_key(world: World) -> None:
    keyed = await world.enter(
        {"guest_key": world.meeting(0)["guest_key"].lower(), "room": world.room_of(ADA)}
    )
    assert keyed.welcome["meeting"] == world.meeting(0)["id"]
    await _refusal(world, {"token": world.meeting(0)["token"]})


async def test_cancelled_and_rescheduled_links_are_refused(world: World) -> None:
    store = world.app[STORE]
    now = datetime.now(UTC)
    cancelled, rescheduled = world.meeting(0), world.meeting(1)
    await store.replace_credential(cancelled["id"], None, now)
    meeting = await store.get_meeting(rescheduled["id"])
    issued = issue_credential(
        meeting,
        now,
        new_id=lambda: secrets.token_hex(8),
        before=world.settings.link_before,
        grace=world.settings.link_grace,
    )
    await store.replace_credential(meeting.id, issued.credential, now)

    await _refusal(world, {"token": cancelled["token"]})
    await _refusal(world, {"guest_key": cancelled["guest_key"], "room": cancelled["room"]})
    await _refusal(world, {"token": rescheduled["token"]})
    fresh = await world.enter({"token": issued.link_token})
    assert fresh.welcome["meeting"] == meeting.id


async def test_a_link_hours_before_its_meeting_says_when_it_opens(world: World) -> None:
    later = world.meeting(3)  # three hours away: outside the 15 minutes before the start
    meeting = await world.app[STORE].get_meeting(later["id"])
    assert meeting.start is not None
    opens = meeting.start - world.settings.link_before
    peer = await world.connect({"token": later["token"]})
    body = await refused(peer, "link_not_open")
    assert body["opens_at"] == opens.isoformat().replace("+00:00", "Z")
    assert body["message"] == f"This link opens at {opens:%H:%M} UTC on {opens:%d %B %Y}."
    # nothing was spent: the link is still good (not used), and says the same again
    body = await refused(await world.connect({"token": later["token"]}), "link_not_open")
    assert body["opens_at"] == opens.isoformat().replace("+00:00", "Z")
    # a guest key is typed, and guessable: it keeps the uniform answer
    await _refusal(world, {"guest_key": later["guest_key"], "room": later["room"]})


async def test_an_early_link_that_was_revoked_keeps_the_uniform_answer(world: World) -> None:
    later = world.meeting(3)
    await world.app[STORE].replace_credential(later["id"], None, datetime.now(UTC))
    await _refusal(world, {"token": later["token"]})


async def test_every_credential_failure_looks_the_same(world: World) -> None:
    store = world.app[STORE]
    await world.guest(0)  # meeting 0's link is used
    await store.replace_credential(world.meeting(1)["id"], None, datetime.now(UTC))
    hellos: list[dict[str, Any]] = [
        {"token": world.meeting(0)["token"]},  # used
        {"token": world.meeting(1)["token"]},  # revoked
        {"guest_key": world.meeting(3)["guest_key"], "room": world.meeting(3)["room"]},  # early
        {"token": secrets.token_urlsafe(32)},  # never issued
        {"guest_key": world.meeting(0)["guest_key"], "room": world.room_of(ADA)},  # used
        {"guest_key": "ABCD-EFGH", "room": world.room_of(ADA)},  # wrong
        {"guest_key": world.meeting(2)["guest_key"], "room": "no-such-room"},
        {"guest_key": "!!", "room": world.room_of(ADA)},  # not even a key
        {"resume": "r_" + "y" * 30},  # unknown resume secret
    ]
    answers = {await _refusal(world, hello) for hello in hellos}
    assert answers == {("token_invalid", "this link or key is not valid")}


async def test_guest_key_guessing_is_throttled_per_address(make_world: Any) -> None:
    world = await make_world(key_attempts_per_address=4, key_attempts_per_room=100)
    # spread over rooms, so only the per-address budget can run out
    rooms = [r["slug"] for r in world.demo.rooms]
    for attempt in range(4):
        await _refusal(world, {"guest_key": "WRNG-KEY1", "room": rooms[attempt % len(rooms)]})
    limited = await world.connect(
        {"guest_key": world.meeting(2)["guest_key"], "room": world.meeting(2)["room"]}
    )
    body = await refused(limited, "rate_limited")
    assert body["retry_after"] > 0
    # links are not keys: a guest with a link still gets in, and others are served
    await world.guest(0)
    await assert_served(world)


async def test_wrong_keys_for_a_room_raise_the_alarm_and_lock_nobody_out(
    make_world: Any,
) -> None:
    # Wrong keys from other clients must not cost a patient with the right key
    # their way in: the room's threshold raises an alarm and refuses no one.
    world = await make_world(key_attempts_per_address=100, key_attempts_per_room=3)
    room = world.room_of(ADA)
    assert await _alarms(world) == 0
    for _ in range(5):
        await _refusal(world, {"guest_key": "WRNG-KEY1", "room": room})
    assert await _alarms(world) == 1  # once per window, not once per wrong key
    welcome = await world.enter({"guest_key": world.meeting(0)["guest_key"], "room": room})
    assert welcome.welcome["meeting"] == world.meeting(0)["id"]
    await assert_served(world)


async def _alarms(world: World) -> float:
    text = await (await world.client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith("vestibule_guest_key_alarms_total "):
            return float(line.split()[1])
    raise AssertionError("vestibule_guest_key_alarms_total is not exported")


async def test_default_key_budget_per_address(world: World) -> None:
    budget = world.settings.key_attempts_per_address
    rooms = [r["slug"] for r in world.demo.rooms]
    for attempt in range(budget):
        await _refusal(world, {"guest_key": "WRNG-KEY1", "room": rooms[attempt % len(rooms)]})
    limited = await world.connect({"guest_key": "WRNG-KEY1", "room": rooms[0]})
    await refused(limited, "rate_limited")
