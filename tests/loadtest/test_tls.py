"""``loadtest run`` against an https target: REST, /metrics and websockets over TLS,
verified against the deployment's own CA (``--ca-file``), refused without it.

The server speaks plain HTTP; a TLS-terminating proxy in front of it (as a load
balancer would be) holds a certificate for 127.0.0.1 signed by a CA made here."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loadtest.cli import main
from tests.loadtest.conftest import HOST, Deployment, free_port


def _certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) files for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "load test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = (tmp / "ca.pem", tmp / "server.pem", tmp / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class TlsProxy:
    """TLS on ``port``, forwarded as plain TCP to the server, on a loop of its own."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.port = free_port()
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._backend = backend_port
        self._writers: list[asyncio.StreamWriter] = []
        self._server = self.loop.run_until_complete(
            asyncio.start_server(self._relay, HOST, self.port, ssl=context)
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(HOST, self._backend)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(15)
        self.loop.close()


@pytest.fixture
def https(deployment: Deployment, tmp_path: Path) -> Iterator[tuple[str, Path, TlsProxy]]:
    ca, cert, key = _certificate(tmp_path)
    proxy = TlsProxy(int(deployment.url.rsplit(":", 1)[1]), cert, key)
    try:
        yield f"https://{HOST}:{proxy.port}", ca, proxy
    finally:
        proxy.close()


def test_an_https_target_is_loaded_over_tls_verified_against_its_ca(
    deployment: Deployment, https: tuple[str, Path, TlsProxy], tmp_path: Path
) -> None:
    url, ca, proxy = https
    base = [
        "run", "--target", url, "--api-key", deployment.api_key,
        "--jwt-secret", deployment.jwt_secret, "--scenario", "join,relay",
        "--duration", "1", "--relay-rooms", "2", "--live", "plain",
    ]  # fmt: skip
    # the proxy's certificate is not signed by any CA the system trusts
    assert main(base) == 2
    # refused at the handshake: nothing got through to the server
    assert proxy.connections == 0
    out = tmp_path / "tls.json"
    assert main([*base, "--ca-file", str(ca), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    relay = doc["scenarios"]["relay"]["figures"]
    join = doc["scenarios"]["join"]["figures"]
    assert relay["lost"] == 0 and relay["sent"] >= 2 * 2 * 20
    assert join["ok"] >= 10 and join["failed"] == 0
    assert doc["server"][0]["scrape_failures"] == 0 and doc["server"][0]["joins"] > 0
    # every websocket (hosts, guests, joins) went through the TLS proxy
    assert proxy.connections > join["ok"] + 2 * relay["rooms"]
