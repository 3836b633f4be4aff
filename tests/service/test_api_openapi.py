"""docs/openapi.yaml against the running app: every route documented, every
documented operation served, every schema a valid JSON Schema, and the
response validator of api_support able to fail."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from rooms.errors import ALL_ERRORS
from signalling.keys import READINESS
from tests.service.api_support import (
    Api,
    check_request,
    check_response,
    make_api,
    openapi,
    resolve,
)

_METHODS = {"get", "post", "put", "patch", "delete"}
_OPERATIONS_ROUTES = {"/healthz", "/readyz", "/metrics"}


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> Api:
    return await make_api(aiohttp_client, tmp_path)


def documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in openapi()["paths"].items()
        for method in item
        if method in _METHODS
    }


async def test_every_route_is_documented_and_every_operation_served(api: Api) -> None:
    served = set()
    for route in api.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD":
            continue
        if path.startswith("/api/") or path in _OPERATIONS_ROUTES:
            served.add((route.method, path))
    assert served - documented() == set(), "served but not documented"
    assert documented() - served == set(), "documented but not served"


def test_the_document_is_openapi_3_1_with_valid_schemas() -> None:
    doc = openapi()
    assert doc["openapi"].startswith("3.1.")
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            op = resolve(op, doc)
            assert op.get("summary"), f"{method} {path} has no summary"
            assert op["responses"], f"{method} {path} documents no response"
            secured = op.get("security", doc["security"]) != []
            if secured:
                assert "401" in op["responses"], f"{method} {path} omits 401"
            for response in op["responses"].values():
                for media in response.get("content", {}).values():
                    jsonschema.Draft202012Validator.check_schema(media["schema"])
            body = op.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                jsonschema.Draft202012Validator.check_schema(schema)


def test_every_error_code_of_the_domain_is_documented() -> None:
    error = resolve(openapi()["components"]["schemas"]["Error"], openapi())
    codes = set(error["properties"]["error"]["properties"]["code"]["enum"])
    assert {error.code for error in ALL_ERRORS} <= codes


def test_the_validator_refuses_wrong_bodies_and_undocumented_statuses() -> None:
    with pytest.raises(jsonschema.ValidationError):
        check_response("GET", "/api/members", 200, {"members": [{"id": "x"}]})
    with pytest.raises(jsonschema.ValidationError):
        check_response("GET", "/api/me", 401, {"error": {"code": "nope", "message": ""}})
    with pytest.raises(AssertionError):
        check_response("GET", "/api/members", 418, None)
    with pytest.raises(AssertionError):
        check_response("GET", "/api/undocumented", 200, {})
    with pytest.raises(jsonschema.ValidationError):
        check_request("POST", "/api/login", {"email": "a@b.example"})
    check_response("GET", "/api/members", 200, {"members": []})


def test_references_resolve_and_loops_are_refused() -> None:
    doc = {"a": {"$ref": "#/b"}, "b": {"type": "string"}, "c": {"$ref": "#/c"}}
    assert resolve(doc["a"], doc) == {"type": "string"}
    with pytest.raises(AssertionError):
        resolve(doc["c"], doc)


async def test_operations_endpoints_match_the_document(api: Api) -> None:
    assert (await api.call("GET", "/healthz")).body == {"status": "ok"}
    assert (await api.call("GET", "/readyz")).body == {"status": "ready"}
    # a start-up step still running (the CLI seeding the demo) holds readiness
    api.app[READINESS].pending.add("demo")
    starting = await api.call("GET", "/readyz")
    assert (starting.status, starting.body) == (503, {"status": "starting"})
    api.app[READINESS].pending.discard("demo")
    assert (await api.call("GET", "/readyz")).status == 200
    metrics = await api.call("GET", "/metrics")
    assert metrics.status == 200
    assert "# TYPE" in metrics.body
    # a store that cannot be reached makes the node not ready
    await api.store.close()
    down = await api.call("GET", "/readyz")
    assert (down.status, down.body) == (503, {"status": "unavailable"})


def examples_of(document: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Every example in the document: (where, example, the schema it illustrates).

    Media types and parameters carry ``example`` or ``examples`` (by name, each
    with a ``value``) next to their ``schema``; a schema may carry ``example``
    itself."""
    found: list[tuple[str, Any, Any]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}/{index}")
            return
        if not isinstance(node, dict):
            return
        if "schema" in node:
            if "example" in node:
                found.append((where, node["example"], node["schema"]))
            for name, named in node.get("examples", {}).items():
                found.append((f"{where}/examples/{name}", named["value"], node["schema"]))
        elif "example" in node and "type" in node:
            bare = {k: v for k, v in node.items() if k != "example"}
            found.append((where, node["example"], bare))
        for key, value in node.items():
            if key not in ("example", "examples"):
                walk(value, f"{where}/{key}")

    walk(document, "#")
    return found


def test_every_example_validates_against_its_schema() -> None:
    doc = openapi()
    found = examples_of(doc)
    assert len(found) >= 8, "the document's examples went missing"
    for where, example, schema in found:
        validator = jsonschema.Draft202012Validator(
            resolve(schema, doc), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = [e.message for e in validator.iter_errors(example)]
        assert not errors, f"{where}: {errors}"


def test_a_wrong_example_is_found() -> None:
    doc = {
        "paths": {
            "/x": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "required": ["a"]},
                                "examples": {"bad": {"value": {"b": 1}}},
                            }
                        }
                    }
                }
            }
        }
    }
    ((where, example, schema),) = examples_of(doc)
    assert where.endswith("/examples/bad")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(example, schema)


def test_a_meeting_needs_a_duration_or_a_type_and_a_start_or_slots() -> None:
    schema = resolve(openapi()["components"]["schemas"]["MeetingRequest"], openapi())
    guest = {"name": "Alex", "email": "alex@example.org"}
    start = "2030-01-15T09:30:00Z"
    jsonschema.validate({"guest": guest, "type": "t", "start": start}, schema)
    jsonschema.validate({"guest": guest, "duration": 900, "start": start}, schema)
    for wrong in (
        {"guest": guest, "start": start},  # neither duration nor type (the 422)
        {"guest": guest, "type": "t"},  # neither start nor slots
        {"guest": guest, "type": "t", "start": start, "slots": [start, start]},
        {"guest": guest, "type": "t", "start": start, "repeat": {"frequency": "weekly"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)


async def test_the_create_meeting_rule_is_the_servers(api: Api) -> None:
    """What the schema refuses for want of a duration, the server refuses (422)."""
    guest = {"name": "Alex Doe", "email": "alex@example.org"}
    no_duration = await api.call(
        "POST",
        "/api/meetings",
        role="host",
        json={"guest": guest, "start": "2030-01-15T09:30:00Z"},
    )
    assert no_duration.status == 422
    assert "duration" in no_duration.body["error"]["message"]


async def test_the_document_and_its_reference_page_are_served(api: Api) -> None:
    from tests.service.api_support import OPENAPI_PATH

    raw = await api.call("GET", "/api/openapi.yaml")
    assert raw.status == 200
    assert raw.body == OPENAPI_PATH.read_text(encoding="utf-8")
    page = await api.call("GET", "/api/docs")
    assert page.status == 200
    for path, item in openapi()["paths"].items():
        for method in item:
            if method in _METHODS:
                assert f'data-method="{method.upper()}" data-path="{path}"' in page.body
    for name in openapi()["components"]["schemas"]:
        assert f"<h3>{name}</h3>" in page.body
    # nothing on the page is fetched from elsewhere, and it runs no script
    assert "<script" not in page.body
    assert not re.search(r'(src|href)="(https?:)?//', page.body)
