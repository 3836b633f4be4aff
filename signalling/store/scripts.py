"""Lua scripts called by their hash, many in one round trip.

redis-py's ``Script`` loads a script Redis does not know and retries, but in a
pipeline it first asks ``SCRIPT EXISTS`` of every script it holds: a round trip
more on every pipeline. These helpers send ``EVALSHA`` alone and fall back on
the ``Script`` only for a call Redis answered ``NOSCRIPT`` (it forgot the
script: a restart, a ``SCRIPT FLUSH``), which ran nothing.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

__all__ = ["ScriptCall", "evalsha_all"]

#: (keys, args) of one script call
ScriptCall = tuple[list[str], list[Any]]


async def evalsha_all(
    client: Redis, script: AsyncScript, calls: list[ScriptCall], *, raise_on_error: bool = True
) -> list[Any]:
    """Run ``script`` once per (keys, args) in one pipeline of EVALSHA, without
    the SCRIPT EXISTS round trip redis-py adds to every pipeline that holds a
    Script: a call Redis answers NOSCRIPT (it forgot the script: a restart, a
    SCRIPT FLUSH) ran nothing, and is made again through the Script, which loads
    it. The answers in order; the first other error is raised, or with
    ``raise_on_error=False`` returned in its call's place (the other calls ran:
    each script runs on its own)."""
    if not calls:
        return []
    if len(calls) == 1:
        answers: list[Any] = [NoScriptError()]  # made through the Script below
    else:
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        answers = await pipe.execute(raise_on_error=False)
    for i, answer in enumerate(answers):
        if isinstance(answer, NoScriptError):
            keys, args = calls[i]
            try:
                answers[i] = await script(keys=keys, args=args)
            except ResponseError as exc:
                answers[i] = exc
        if isinstance(answers[i], Exception) and raise_on_error:
            raise answers[i]
    return answers
