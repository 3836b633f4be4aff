"""Scripts called by their hash, many in one round trip (signalling/store/scripts.py),
on a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from signalling.store.scripts import evalsha_all

_ECHO = """
if ARGV[1] == 'bad' then return redis.error_reply('refused ' .. KEYS[1]) end
redis.call('RPUSH', KEYS[1], ARGV[1])
return ARGV[1]
"""


@pytest.fixture
async def client(redis_server: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_server)
    await c.delete("scripts:a", "scripts:b", "scripts:c")
    try:
        yield c
    finally:
        await c.aclose()


async def test_each_call_gets_its_own_answer_or_error_and_the_others_run(
    client: aioredis.Redis,
) -> None:
    script = client.register_script(_ECHO)
    await client.script_flush()  # a restart: Redis has forgotten every script
    calls = [(["scripts:a"], ["one"]), (["scripts:b"], ["bad"]), (["scripts:c"], ["three"])]
    answers = await evalsha_all(client, script, calls, raise_on_error=False)
    assert answers[0] == b"one" and answers[2] == b"three"
    assert isinstance(answers[1], ResponseError) and "refused scripts:b" in str(answers[1])
    assert await client.lrange("scripts:a", 0, -1) == [b"one"]
    assert await client.lrange("scripts:c", 0, -1) == [b"three"]
    with pytest.raises(ResponseError):
        await evalsha_all(client, script, calls)
    alone = await evalsha_all(client, script, [(["scripts:b"], ["bad"])], raise_on_error=False)
    assert isinstance(alone[0], ResponseError)


async def test_a_batch_sends_evalsha_alone_never_script_exists(client: aioredis.Redis) -> None:
    script = client.register_script(_ECHO)
    await evalsha_all(client, script, [(["scripts:a"], ["warm"])])  # loaded
    await client.config_resetstat()
    calls = [([f"scripts:{k}"], [str(n)]) for n in range(20) for k in "abc"]
    answers = await asyncio.wait_for(evalsha_all(client, script, calls), 10)
    assert answers == [str(n).encode() for n in range(20) for _ in "abc"]
    stats = await client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 60
    assert "cmdstat_script|exists" not in stats
