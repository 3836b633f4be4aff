"""The pages' socket (web/static/js/signalling.js, real Chromium) follows a
draining node to the node it handed the room to: the ``goaway`` ``shutdown``
names that node's ``url`` (docs/protocol.md, "Keep-alive and shutdown") and
the page resumes there, in its place, instead of knocking at the node that
stopped.

The page is the node's own origin running the pages' module itself; every
wait is on the page's state (``wait_for_function``), never on time.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import browser, playwright  # noqa: F401 - fixtures
from tests.multinode.conftest import Cluster, Node

pytestmark = pytest.mark.multinode

#: loading a room's copy and resuming takes well under a second; the drain grace is 10 s
WAIT_MS = 15_000

_START = """async ([token]) => {
  const { Signalling } = await import("/static/js/signalling.js");
  const socket = new Signalling({
    path: "/ws",
    hello: () => ({ type: "hello", token, name: "Ann" }),
    resumeKey: "vestibule.resume.test",
  });
  window.seen = [];
  socket.on("welcome", (msg, info) => {
    window.seen.push({ type: "welcome", resumed: info.resumed, url: socket.url });
    if (!info.resumed) socket.send({ type: "join" });
  });
  socket.on("waiting", (msg) => window.seen.push({ type: "waiting", url: socket.url }));
  socket.on("goaway", (msg) => window.seen.push({ type: "goaway", reason: msg.reason }));
  window.socket = socket;
  socket.start();
}"""


def test_a_page_resumes_on_the_node_a_draining_node_handed_its_room_to(
    browser: Browser,  # noqa: F811 - the fixture imported above
    cluster: Cluster,
    nodes: list[Node],
    fresh_node: Node,
) -> None:
    room = cluster.seed(1)["rooms"][0]
    others = {f"ws://{n.url.removeprefix('http://')}/ws" for n in nodes}
    context = browser.new_context(bypass_csp=True)  # wait_for_function evaluates its predicate
    try:
        page = context.new_page()
        page.goto(f"{fresh_node.url}/healthz")  # the stopping node's origin
        page.evaluate(_START, [room["token"]])
        page.wait_for_function("window.seen.some(m => m.type === 'waiting')", timeout=WAIT_MS)

        stopping = threading.Thread(target=fresh_node.stop)
        stopping.start()
        page.wait_for_function(
            "window.seen.some(m => m.type === 'welcome' && m.resumed)", timeout=WAIT_MS
        )
        stopping.join()
        seen: list[dict[str, Any]] = page.evaluate("window.seen")
        assert {"type": "goaway", "reason": "shutdown"} in seen, seen
        resumed = next(m for m in seen if m["type"] == "welcome" and m["resumed"])
        assert resumed["url"] in others, (resumed, others)
        assert page.evaluate("window.socket.state") == "open"
    finally:
        context.close()
