"""The JSON Schema of every message the server sends (docs/protocol.md).

One schema per ``type``; every object is closed (``additionalProperties:
false``), so a field the server adds without documenting it fails. Two checks
use it: every server-message example in docs/protocol.md validates
(tests/service/test_protocol_docs.py), and every frame a service test receives
(``Peer.recv`` in tests/service/conftest.py and ``receive`` in
tests/service/dashboard_support.py) validates too, so the examples and the
server are held to the same schema. The dashboard's meeting view is the REST
API's ``Meeting`` schema (docs/openapi.yaml), as the protocol says.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
ID: Schema = {"type": "string", "minLength": 1}
NUM: Schema = {"type": "number"}
REF: Schema = {"type": ["string", "integer"]}
SEQ: Schema = {"type": "integer", "minimum": 0}
ROLE: Schema = {"enum": ["guest", "member", "host"]}
INDICATOR: Schema = {"enum": ["not_entered", "entered", "check_failed", "check_passed"]}
STATUS: Schema = {
    "enum": [
        "planning",
        "scheduled",
        "starting_soon",
        "live",
        "completed",
        "missed",
        "cancelled",
        "failed",
    ]
}
FINDING: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["code", "message"],
    "properties": {"code": STR, "message": STR},
}


def message(type_: str, required: list[str], **properties: Schema) -> Schema:
    """A closed object schema of one message type; ``ref`` is always allowed."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", *required],
        "properties": {"type": {"const": type_}, "ref": REF, **properties},
    }


def _meeting_schema() -> Schema:
    """docs/openapi.yaml's Meeting, with its references resolved."""
    with OPENAPI.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            return resolve(target)
        return {key: resolve(value) for key, value in node.items()}

    meeting: Schema = resolve(document["components"]["schemas"]["Meeting"])
    return meeting


@functools.cache
def server_schemas() -> dict[str, Schema]:
    """Every server message type's schema, by type."""
    meeting = _meeting_schema()
    ice_server: Schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["urls"],
        "properties": {
            "urls": {"type": "array", "items": STR, "minItems": 1},
            "username": STR,
            "credential": STR,
        },
    }
    person: Schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "name", "role"],
        "properties": {"id": ID, "name": STR, "role": ROLE},
    }
    waiting_entry: Schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "name", "meeting", "since", "indicator", "walk_in"],
        "properties": {
            "id": ID,
            "name": STR,
            "meeting": {"type": ["string", "null"]},
            "since": NUM,
            "indicator": INDICATOR,
            "walk_in": {"type": "boolean"},
        },
    }
    candidate: Schema = {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "candidate": STR,
            "sdpMid": {"type": ["string", "null"]},
            "sdpMLineIndex": {"type": ["integer", "null"]},
            "usernameFragment": {"type": ["string", "null"]},
        },
    }
    return {
        "welcome": message(
            "welcome",
            [
                "session",
                "participant",
                "role",
                "room",
                "meeting",
                "name",
                "instructions",
                "address",
                "ice_servers",
                "resume",
                "heartbeat",
                "server_time",
            ],
            session=ID,
            participant=ID,
            role=ROLE,
            room=ID,
            meeting={"type": ["string", "null"]},
            name=STR,
            instructions=STR,
            address=STR,
            ice_servers={"type": "array", "items": ice_server},
            resume=ID,
            rejoin=ID,
            heartbeat=NUM,
            server_time=NUM,
            resumed={"const": True},
        ),
        "error": message(
            "error",
            ["code", "message"],
            code={
                "enum": [
                    "bad_message",
                    "invalid",
                    "unauthorized",
                    "token_invalid",
                    "link_not_open",
                    "forbidden",
                    "not_host",
                    "plan_limit",
                    "room_archived",
                    "not_found",
                    "conflict",
                    "bad_transition",
                    "no_longer_waiting",
                    "room_full",
                    "rate_limited",
                    "too_large",
                    "busy",
                    "internal",
                    "unavailable",
                ]
            },
            message=STR,
            retry_after=NUM,
            opens_at=STR,
        ),
        "goaway": {
            "oneOf": [
                message(
                    "goaway",
                    ["reason", "reconnect_after"],
                    reason={"const": "shutdown"},
                    url=STR,
                    reconnect_after=NUM,
                ),
                message(
                    "goaway",
                    ["reason", "reconnect_after"],
                    reason={"enum": ["replaced", "cancelled"]},
                    reconnect_after={"type": "null"},
                ),
                message(
                    "goaway",
                    ["reason", "url", "reconnect_after"],
                    reason={"const": "room_elsewhere"},
                    url=STR,
                    reconnect_after={"const": 0},
                ),
            ]
        },
        "ping": message("ping", ["server_time"], server_time=NUM),
        "pong": message("pong", ["server_time"], server_time=NUM),
        "waiting": message(
            "waiting",
            ["position", "message", "on_hold"],
            position={"type": ["integer", "null"], "minimum": 1},
            message={"type": ["string", "null"]},
            on_hold={"type": "boolean"},
        ),
        "admitted": message("admitted", []),
        "denied": message("denied", []),
        "moved": message("moved", ["room"], room=ID),
        "joined": message(
            "joined", ["participants"], participants={"type": "array", "items": person}
        ),
        "participant": {
            "oneOf": [
                message(
                    "participant",
                    ["event", "id", "name", "role"],
                    event={"const": "came"},
                    id=ID,
                    name=STR,
                    role=ROLE,
                ),
                message("participant", ["event", "id"], event={"const": "went"}, id=ID),
            ]
        },
        "lobby": message("lobby", ["waiting"], waiting={"type": "array", "items": waiting_entry}),
        "invited": message("invited", ["member"], member=ID),
        "queues": message(
            "queues",
            ["rooms"],
            rooms={
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["room", "name", "kind", "waiting"],
                    "properties": {
                        "room": ID,
                        "name": STR,
                        "kind": {"enum": ["reception", "waiting_area"]},
                        "waiting": {"type": "array", "items": waiting_entry},
                    },
                },
            },
        ),
        "signal": message(
            "signal",
            ["from", "kind"],
            **{
                "from": ID,
                "kind": {"enum": ["offer", "answer", "candidate", "ice-restart"]},
                "sdp": STR,
                "candidate": candidate,
            },
        ),
        "mediacheck.answer": message("mediacheck.answer", ["check", "sdp"], check=ID, sdp=STR),
        "mediacheck.progress": message(
            "mediacheck.progress",
            ["check", "phase", "elapsed"],
            check=ID,
            phase={"enum": ["connecting", "receiving", "analysing"]},
            elapsed=NUM,
        ),
        "mediacheck.result": message(
            "mediacheck.result",
            ["check", "verdict", "reasons", "warnings", "figures", "elapsed"],
            check=ID,
            verdict={"enum": ["passed", "failed"]},
            reasons={"type": "array", "items": FINDING},
            warnings={"type": "array", "items": FINDING},
            figures={
                "type": "object",
                "properties": {"resolution": {"type": ["string", "null"]}},
                "additionalProperties": {"type": ["number", "null"]},
            },
            elapsed=NUM,
        ),
        "snapshot": message(
            "snapshot",
            ["seq", "fresh", "meetings"],
            seq=SEQ,
            fresh={"type": "boolean"},
            meetings={"type": "array", "items": meeting},
        ),
        "watermark": message("watermark", ["seq"], seq=SEQ),
        "presence": message(
            "presence",
            ["seq", "meeting", "participant", "role", "kind", "indicator", "at", "detail"],
            seq=SEQ,
            meeting=ID,
            participant=ID,
            role=ROLE,
            kind={
                "enum": [
                    "entered",
                    "checked",
                    "waiting",
                    "admitted",
                    "denied",
                    "in_call",
                    "put_back",
                    "moved",
                    "left",
                    "call_connected",
                    "call_failed",
                ]
            },
            indicator=INDICATOR,
            at={"type": "string", "format": "date-time"},
            detail={"type": "object"},
        ),
        "meeting": message(
            "meeting",
            ["seq", "meeting", "change", "status", "at"],
            seq=SEQ,
            meeting=ID,
            change={
                "enum": [
                    "created",
                    "rescheduled",
                    "cancelled",
                    "reassigned",
                    "slot_chosen",
                    "updated",
                    "status_changed",
                ]
            },
            status=STATUS,
            was=STATUS,
            at={"type": "string", "format": "date-time"},
            host=ID,
            view=meeting,
        ),
    }


@functools.cache
def _validators() -> dict[str, jsonschema.Draft202012Validator]:
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return {
        kind: jsonschema.Draft202012Validator(schema, format_checker=checker)
        for kind, schema in server_schemas().items()
    }


def validate_server_message(body: Any) -> None:
    """Raise jsonschema.ValidationError (or AssertionError for an unknown type)
    unless ``body`` is a server message as docs/protocol.md describes it."""
    assert isinstance(body, dict), f"a server message is an object: {body!r}"
    kind = body.get("type")
    validator = _validators().get(kind) if isinstance(kind, str) else None
    assert validator is not None, f"undocumented server message type {kind!r}"
    validator.validate(body)
