"""docs/openapi.yaml against the running app: every route documented, every
documented operation served, every schema a valid JSON Schema, and the
response validator of api_support able to fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from rooms.errors import ALL_ERRORS
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
    metrics = await api.call("GET", "/metrics")
    assert metrics.status == 200
    assert "# TYPE" in metrics.body
    # a store that cannot be reached makes the node not ready
    await api.store.close()
    down = await api.call("GET", "/readyz")
    assert (down.status, down.body) == (503, {"status": "unavailable"})
