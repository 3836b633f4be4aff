"""The HTML report of ``loadtest run`` in real Chromium: nothing leaves the page, the
charts are drawn, breaches are marked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Request, sync_playwright

from loadtest.cli import main
from tests.loadtest.conftest import Deployment

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.browser


def test_the_html_report_is_self_contained_and_draws_its_charts(
    deployment: Deployment, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("chromium is not installed (scripts/bootstrap.sh --test installs it)")
    page_path = tmp_path / "report.html"
    result_path = tmp_path / "result.json"
    code = main(
        [
            "run",
            *("--target", deployment.url, "--api-key", deployment.api_key),
            *("--jwt-secret", deployment.jwt_secret, "--scenario", "join,relay"),
            *("--duration", "1.5", "--relay-rooms", "2", "--live", "plain"),
            *("--json", str(result_path), "--html", str(page_path)),
            *("--slo", "relay.lost==0", "--slo", "join.rate>=1000000"),
        ]
    )
    assert code == 1
    doc = json.loads(result_path.read_text())
    url = page_path.resolve().as_uri()
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def seen(request: Request) -> None:
                requests.append(request.url)

            page.on("request", seen)
            page.goto(url)
            page.wait_for_load_state("networkidle")
            # the page itself is the only request: no script, style, font or image
            assert requests == [url]
            assert page.locator("h1").inner_text() == "Vestibule load test: FAILED"
            # both scenarios: latency over time, throughput over time, histogram
            for name in ("join", "relay"):
                charts = page.locator(f"#scenario-{name} + .charts svg.chart")
                assert charts.count() == 3
                lines = page.locator(f"#scenario-{name} + .charts polyline.series")
                assert lines.count() == 3
                points = lines.first.get_attribute("points") or ""
                assert len(points.split()) >= 1
                assert page.locator(f"#scenario-{name} + .charts rect.bar").count() >= 1
                box = charts.first.bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 100
            # the server's side, from /metrics
            assert page.locator("text=server gauges over time").count() == len(doc["server"])
            # the breached objective is marked, the met one not
            breached = page.locator("#slo tr.breach")
            assert breached.count() == 1
            assert "join.rate" in breached.inner_text()
            assert page.locator("#slo tr.met").count() == 1
        finally:
            browser.close()
