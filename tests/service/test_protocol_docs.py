"""docs/protocol.md is executable: every JSON example in it is checked.

Each fenced block is tagged ```` ```json client ```` or ```` ```json server ````.
Client examples are read by the server's own parser (signalling.protocol);
server examples are validated against tests/service/wire_schema.py, which
every frame the service tests receive is validated against too. Every message
type in the code has an example, and every example's type is in the code.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from rooms.errors import ALL_ERRORS, BadMessage
from signalling import protocol as p
from tests.service.conftest import WAIT
from tests.service.dashboard_support import (
    dashboard,
    guest_enters,
    host_enters,
    meeting_of,
    start_server,
)
from tests.service.wire_schema import server_schemas, validate_server_message

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
INTEGRATING = PROTOCOL.with_name("integrating.md")
FENCE = re.compile(r"^```(\w*)[ \t]*(\w*)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def objects(text: str) -> list[Any]:
    """The JSON values written one after another in ``text``."""
    decoder = json.JSONDecoder()
    out = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return out
        value, index = decoder.raw_decode(text, index)
        out.append(value)


def examples(document: str) -> dict[str, list[Any]]:
    """Every JSON example of ``document``, by side (client, server)."""
    found: dict[str, list[Any]] = {"client": [], "server": []}
    for match in FENCE.finditer(document):
        language, side, body = match.groups()
        if language != "json":
            continue
        assert side in found, f"a json block must say client or server: {body[:60]!r}"
        found[side].extend(objects(body))
    return found


@pytest.fixture(scope="module")
def documented() -> dict[str, list[Any]]:
    return examples(PROTOCOL.read_text(encoding="utf-8"))


def test_every_client_example_is_read_by_the_server_parser(
    documented: dict[str, list[Any]],
) -> None:
    assert documented["client"]
    for example in documented["client"]:
        parsed = p.parse(json.dumps(example))
        assert p.type_name(parsed) == example["type"]


def test_every_server_example_is_valid(documented: dict[str, list[Any]]) -> None:
    assert documented["server"]
    for example in documented["server"]:
        validate_server_message(example)


def test_every_message_type_has_an_example_and_no_other(
    documented: dict[str, list[Any]],
) -> None:
    client = {example["type"] for example in documented["client"]}
    server = {example["type"] for example in documented["server"]}
    assert client == set(p.CLIENT_TYPES), "client types: code vs docs/protocol.md"
    assert server == set(p.SERVER_TYPES), "server types: code vs docs/protocol.md"
    assert set(server_schemas()) == set(p.SERVER_TYPES), "server types: code vs the schema"


def test_every_error_code_is_in_the_errors_tables() -> None:
    """protocol.md says when each code comes; integrating.md what to do with it."""
    # REST-only refusals
    websocket = {e.code for e in ALL_ERRORS} - {"plan_limit", "known_patients_only", "slot_taken"}
    for path, heading in ((PROTOCOL, "## Errors"), (INTEGRATING, "## 7. ")):
        text = path.read_text(encoding="utf-8").split(heading, 1)[1]
        table = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
        assert websocket <= table, f"{path.name} misses {sorted(websocket - table)}"


def test_the_checks_can_fail() -> None:
    """A wrong example is caught on either side, and untagged blocks are refused."""
    with pytest.raises(BadMessage):
        p.parse(json.dumps({"type": "admit"}))
    with pytest.raises(jsonschema.ValidationError):
        validate_server_message({"type": "waiting", "position": 1, "on_hold": False})
    with pytest.raises(jsonschema.ValidationError):  # an undocumented field
        validate_server_message({"type": "admitted", "extra": 1})
    with pytest.raises(AssertionError):
        validate_server_message({"type": "no_such_message"})
    with pytest.raises(AssertionError):
        examples('```json\n{"type": "join"}\n```\n')
    assert examples('```json client\n{"type": "join"}\n{"type": "leave"}\n```\n') == {
        "client": [{"type": "join"}, {"type": "leave"}],
        "server": [],
    }


async def test_a_dashboards_messages_are_as_documented(aiohttp_client: Any, tmp_path: Any) -> None:
    """Every frame of a real dashboard session (snapshot, presence and meeting
    events, pong) validates against the schema the examples validate against.
    (The /ws side: every frame a service test's ``Peer`` receives is checked.)"""
    server = await start_server(aiohttp_client, tmp_path)
    world = server.world
    meeting = meeting_of(world, world.ada)
    board, snapshot = await dashboard(server, world.ada, "my")
    validate_server_message(snapshot)
    assert snapshot["meetings"], "the snapshot shows the host's meetings"
    guest = await guest_enters(server, meeting)
    host = await host_enters(server, world.ada)
    await guest.send_json({"type": "join"})
    await host.send_json({"type": "join"})
    await board.send_json({"type": "ping", "ref": "last"})
    seen: list[dict[str, Any]] = []
    while not any(m["type"] == "pong" for m in seen) or len(seen) < 4:
        frame = await asyncio.wait_for(board.receive(), WAIT)
        body = frame.json()
        validate_server_message(body)
        seen.append(body)
    kinds = {(m["type"], m.get("kind") or m.get("change")) for m in seen}
    assert ("presence", "entered") in kinds
    for ws in (guest, host, board):
        await ws.close()
