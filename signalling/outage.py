"""What an exception that is not a Vestibule error means to a client.

A store that cannot be reached (Redis down or restarting, SQLite locked or
its disk gone) is an outage: the request did nothing and may be tried again,
so it is answered ``unavailable`` (REST 503 with ``Retry-After``, websocket
``error`` with ``retry_after``; a refused ``hello`` is closed 1013). Anything
else is a fault of ours, answered ``internal``. Both are logged by the caller.
"""

from __future__ import annotations

import sqlite3

from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rooms.errors import Internal, Unavailable, VestibuleError

#: the exceptions that mean "the store is not reachable right now"
OUTAGES: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionError,
    TimeoutError,
    sqlite3.OperationalError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the store cannot be reached (worth retrying)."""
    return isinstance(exc, OUTAGES)


def error_for(exc: BaseException) -> VestibuleError:
    """The error a client is answered for an exception that is not one of ours."""
    return Unavailable() if is_outage(exc) else Internal()
