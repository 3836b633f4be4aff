"""``loadtest run --scenario mediacheck`` against a server that runs media checks: real
aiortc peers on both sides, verdicts checked against the server's /metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from loadtest.cli import main
from loadtest.results import schema
from loadtest.scrape import delta, total
from tests.loadtest.conftest import Deployment, start_server, stop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    server = start_server(
        tmp_path_factory.mktemp("checking"),
        {"VESTIBULE_MEDIACHECK": "1", "VESTIBULE_MEDIACHECK_WORKERS": "1"},
    )
    try:
        yield server
    finally:
        stop(server.process)


def test_media_checks_pass_and_match_the_servers_verdicts(
    checking: Deployment, tmp_path: Path
) -> None:
    out = tmp_path / "mediacheck.json"
    before = checking.metrics()
    code = main(
        [
            "run", "--target", checking.url, "--api-key", checking.api_key,
            "--scenario", "mediacheck", "--mediacheck-rate", "2", "--duration", "1",
            "--json", str(out), "--live", "plain", "--slo", "mediacheck.pass_rate>=1",
        ]
    )  # fmt: skip
    server = delta(before, checking.metrics())
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, schema())
    f = doc["scenarios"]["mediacheck"]["figures"]
    assert f["attempts"] == 2 and f["busy"] == 0 and f["unexpected"] == 0
    assert f["verdicts"] == f["passed"] == f["count"] == 2
    assert total(server, "vestibule_mediacheck_verdicts_total", verdict="passed") == 2
    assert total(server, "vestibule_messages_in_total", type="mediacheck.offer") == 2
    # a verdict takes seconds, not milliseconds: the latency is the whole check
    assert 1000 < f["p50_ms"] < 15_000
    assert code == 0
