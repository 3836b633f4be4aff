"""KeyedLocks: holds on keys, all at once or none."""

from __future__ import annotations

import asyncio

import pytest

from signalling.locks import KeyedLocks


def test_a_hold_waits_for_any_of_its_keys_and_others_go_on() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def scenario() -> None:
        first_in = asyncio.Event()
        let_go = asyncio.Event()

        async def first() -> None:
            async with locks.hold({"m1", "m2"}):
                order.append("first in")
                first_in.set()
                await let_go.wait()
                order.append("first out")

        async def overlapping() -> None:
            await first_in.wait()
            async with locks.hold({"m2", "m3"}):
                order.append("overlapping in")

        async def apart() -> None:
            await first_in.wait()
            async with locks.hold({"m4"}):
                order.append("apart in")
            let_go.set()

        await asyncio.wait_for(asyncio.gather(first(), overlapping(), apart()), 5)

    asyncio.run(scenario())
    assert order == ["first in", "apart in", "first out", "overlapping in"]
    assert not any(locks.held(k) for k in ("m1", "m2", "m3", "m4"))


async def _next_iteration() -> None:
    loop = asyncio.get_running_loop()
    turn: asyncio.Future[None] = loop.create_future()
    loop.call_soon(turn.set_result, None)
    await turn


def test_holds_taken_in_opposite_orders_do_not_deadlock() -> None:
    locks = KeyedLocks()
    inside = 0
    most = 0

    async def hold(keys: list[str]) -> None:
        nonlocal inside, most
        async with locks.hold(keys):
            inside += 1
            most = max(most, inside)
            await _next_iteration()  # let the other holds try meanwhile
            inside -= 1

    async def scenario() -> None:
        work = [hold(["a", "b"]) if i % 2 else hold(["b", "a"]) for i in range(50)]
        await asyncio.wait_for(asyncio.gather(*work), 5)

    asyncio.run(scenario())
    assert most == 1


def test_a_hold_is_released_when_its_block_raises() -> None:
    locks = KeyedLocks()

    async def scenario() -> None:
        with pytest.raises(RuntimeError):
            async with locks.hold(["m1"]):
                assert locks.held("m1")
                raise RuntimeError("the write failed")
        assert not locks.held("m1")
        async with locks.hold(["m1"]):  # taken again at once
            pass

    asyncio.run(scenario())
