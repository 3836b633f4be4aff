"""The documentation, in real Chromium: the served API reference, the media
check's round-trip time, and the example patient page of docs/examples/.

The example page is served from its own origin (as an integrator's page would
be), connects to the demo server with the meeting's link token, passes the
media check, waits, is admitted by the project's own clinician page and
reaches a connected call with it.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from playwright.sync_api import Request, WebSocket, WebSocketRoute, expect

from tests.browser.conftest import REPO
from tests.browser.test_browser_visit import (
    CHECK_TIMEOUT,
    CONNECT_TIMEOUT,
    in_user_rooms,
    pass_check,
    staff_for,
)

pytestmark = pytest.mark.browser

EXAMPLES = REPO / "docs" / "examples"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def examples_origin() -> Iterator[str]:
    """docs/examples/ served over HTTP from another origin than the server's."""
    handler = functools.partial(_Quiet, directory=str(EXAMPLES))
    server = ThreadingHTTPServer(("localhost", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_api_reference_is_served_and_fetches_nothing_elsewhere(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    page = console.watch(devices.new().new_page(), "api-docs")
    requested: list[str] = []

    def seen(request: Request) -> None:
        requested.append(request.url)

    page.on("request", seen)
    page.goto("/api/docs")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name="Vestibule REST API")).to_be_visible()
    document = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    expect(page.locator("article.operation")).to_have_count(len(operations))
    toc = page.locator("#toc")
    for method, path in operations:
        expect(toc).to_contain_text(f"{method} {path}")
    expect(page.locator("#post-api-meetings")).to_contain_text("a duration or a meeting type")
    page.screenshot(path=str(shots / "api-docs.png"))
    page.locator("#post-api-meetings").screenshot(path=str(shots / "api-docs-operation.png"))
    assert requested, "the page made no request at all?"
    foreign = [url for url in requested if not url.startswith(demo["url"] + "/")]
    assert foreign == [], f"requests left the server: {foreign}"
    yaml_text = page.request.get("/api/openapi.yaml").text()
    assert yaml.safe_load(yaml_text) == document


def test_the_project_page_checks_sendrecv_and_gets_a_round_trip_time(
    demo: dict[str, Any], devices: Any, shots: Path, console: Any
) -> None:
    meeting = in_user_rooms(demo)[1]
    page = console.watch(devices.new().new_page(), "rtt")
    results: list[dict[str, Any]] = []

    def frames(ws: WebSocket) -> None:
        def received(payload: str | bytes) -> None:
            if isinstance(payload, str) and '"mediacheck.result"' in payload:
                results.append(json.loads(payload))

        ws.on("framereceived", received)

    page.on("websocket", frames)
    page.goto(f"/join/{meeting['token']}")
    page.get_by_label("Your name").fill("Robin Test")
    page.get_by_role("button", name="Continue").click()
    pass_check(page, shots, "rtt")
    assert results, "no mediacheck.result frame was seen"
    rtt = results[-1]["figures"].get("rtt_ms")
    assert isinstance(rtt, int | float), f"no round-trip time: {results[-1]['figures']}"


def test_the_example_patient_page_reaches_a_call_with_the_clinician_page(
    demo: dict[str, Any], devices: Any, examples_origin: str, shots: Path, console: Any
) -> None:
    meeting = in_user_rooms(demo)[0]
    clinician = staff_for(demo, meeting, devices)
    room = console.watch(clinician.new_page(), "clinician")
    room.goto(f"/r/{meeting['room']}")
    expect(room.locator("body")).to_have_attribute("data-role", "host")

    patient = console.watch(devices.new().new_page(), "example-patient")
    # Route the page's websockets through Playwright so the test can drop one.
    sockets: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        route.connect_to_server()
        sockets.append(route)

    patient.route_web_socket("**/ws", through)
    url = f"{examples_origin}/patient.html?server={quote(demo['url'])}&token={meeting['token']}"
    patient.goto(url)
    patient.get_by_label("Your name").fill("Casey Example")
    patient.get_by_role("button", name="Check my camera and microphone").click()
    patient.wait_for_selector(
        'body[data-check-verdict="passed"], body[data-check-verdict="failed"]',
        timeout=CHECK_TIMEOUT,
    )
    verdict = patient.locator("#verdict").inner_text()
    assert patient.locator("body").get_attribute("data-check-verdict") == "passed", verdict
    patient.get_by_role("button", name="Enter the waiting room").click()
    expect(patient.locator("body")).to_have_attribute("data-step", "waiting")

    # A dropped connection comes back with the resume secret, still waiting.
    sockets[-1].close(code=4001, reason="dropped by the test")
    expect(patient.locator("#status")).to_have_text("Reconnected.")
    expect(patient.locator("body")).to_have_attribute("data-step", "waiting")
    assert len(sockets) == 2

    waiting = room.locator("#lobby-list li.lobby-guest", has_text="Casey Example")
    expect(waiting).to_have_attribute("data-indicator", "check_passed")
    room.get_by_label("Message to waiting guests").fill("With you in a minute")
    room.get_by_role("button", name="Send message").click()
    expect(patient.locator("#host-message")).to_have_text("With you in a minute")
    waiting.get_by_role("button", name="Admit Casey Example").click()

    expect(patient.locator("body")).to_have_attribute(
        "data-call-state", "connected", timeout=CONNECT_TIMEOUT
    )
    expect(room.locator("body")).to_have_attribute(
        "data-call-state", "connected", timeout=CONNECT_TIMEOUT
    )
    expect(room.locator("#in-call-list")).to_contain_text("Casey Example")
    patient.screenshot(path=str(shots / "example-patient-call.png"), full_page=True)

    patient.get_by_role("button", name="Leave").click()
    expect(patient.locator("body")).to_have_attribute("data-step", "ended")
    expect(room.locator("#in-call-list")).not_to_contain_text("Casey Example")
