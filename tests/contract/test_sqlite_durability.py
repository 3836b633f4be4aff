"""A SQLiteStore writer killed with SIGKILL loses nothing it reported committed.

This is what synchronous=NORMAL with WAL promises (see signalling/store/sqlite.py):
a commit is in the WAL file when COMMIT returns, so only an OS crash, not a
process crash, can lose it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from signalling.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[2]

#: the child: commits an organisation and a log entry per round, then says so
CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from rooms.accounts import Organisation
from signalling.store.sqlite import SQLiteStore

async def main(path: str) -> None:
    store = SQLiteStore(path)
    await store.open()
    n = 0
    while True:
        await store.add_organisation(Organisation(f"o{n}", "Practice", datetime.now(UTC)))
        await store.append_log("team1", datetime.now(UTC), "presence", "entered", None, {"n": n})
        print(f"committed {n}", flush=True)
        n += 1

asyncio.run(main(sys.argv[1]))
"""

#: rounds to see before the kill: enough that the WAL holds many commits
ROUNDS = 40


async def test_every_reported_commit_survives_sigkill(tmp_path: Path) -> None:
    path = str(tmp_path / "durable.sqlite3")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        path,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    last = -1
    try:
        while last < ROUNDS:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line.startswith(b"committed "), f"child said {line!r}"
            last = int(line.split()[1])
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 30)
        await child.stdout.read()
    assert child.returncode == -signal.SIGKILL

    store = SQLiteStore(path)
    await store.open()
    try:
        for n in range(last + 1):
            assert (await store.get_organisation(f"o{n}")).id == f"o{n}"
        lowest, highest = await store.log_bounds("team1")
        assert lowest == 1 and highest >= last + 1
        logged = await store.log_since("team1", 0, limit=last + 1)
        assert [e.data["n"] for e in logged] == list(range(last + 1))
    finally:
        await store.close()
