"""A real deployment for ``loadtest run``: ``vestibule serve`` as a subprocess on a
fresh SQLite file with the demo team, and an API key made the way an SRE makes one
(a clinician logs in and creates it through the REST API)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import selectors
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtest.scrape import parse
from signalling.demo import CLINICIANS, DEMO_PASSWORD

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Deployment:
    url: str
    api_key: str
    jwt_secret: str
    process: subprocess.Popen[bytes]
    log: Path

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            return parse(response.read().decode())


def wait_listening(process: subprocess.Popen[bytes], log: Path) -> str:
    """The URL from the startup line ``serve --json`` prints once it listens."""
    stdout = process.stdout
    assert stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        if not selector.select(READY_TIMEOUT):
            pytest.fail(f"server not ready in {READY_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")
    line = stdout.readline()
    if not line:
        pytest.fail(f"server exited ({process.wait(5)}):\n{log.read_text()[-3000:]}")
    url: str = json.loads(line)["url"]
    return url


def api_key(port: int) -> str:
    """Log in as a demo clinician and create an API key of their team."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        body = json.dumps({"email": CLINICIANS[0][1], "password": DEMO_PASSWORD})
        conn.request("POST", "/api/login", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
        conn.request(
            "POST",
            "/api/api-keys",
            json.dumps({"label": "load test"}),
            {"Content-Type": "application/json", "Cookie": cookie},
        )
        response = conn.getresponse()
        made = json.loads(response.read())
        assert response.status == 201, made
        key: str = made["key"]
        return key
    finally:
        conn.close()


def start_server(workdir: Path, env_extra: dict[str, str] | None = None) -> Deployment:
    port = free_port()
    # never starting with "-", which a command line would read as a flag
    jwt_secret = "s" + secrets.token_urlsafe(32)
    env = dict(os.environ)
    env.update(
        VESTIBULE_JWT_SECRET=jwt_secret,
        VESTIBULE_MEDIACHECK="0",
        VESTIBULE_LOG_LEVEL="warning",
        VESTIBULE_DATA_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )
    env.update(env_extra or {})
    log = workdir / "server.log"
    argv = [
        sys.executable,
        *("-m", "signalling.cli", "serve", "--port", str(port)),
        *("--db", str(workdir / "clinic.sqlite3"), "--json"),
    ]
    with open(log, "wb") as err:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env, cwd=ROOT
        )
    url = wait_listening(process, log)
    return Deployment(url, api_key(port), jwt_secret, process, log)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One server per module, with the default rate limits (the flood must trip them)."""
    server = start_server(tmp_path_factory.mktemp("deployment"))
    try:
        yield server
    finally:
        stop(server.process)
