"""connect_client reaches a Temporal that takes TLS only and asks for a client certificate (mTLS).

The dev server speaks plaintext only, so a TLS-terminating proxy on loopback stands in front of it, as a
load balancer or Temporal Cloud's front end would: its certificates come from a CA made here, and it
refuses a client without a certificate from that CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from config import Settings
from runs.client import connect_client

from ..support.temporal import target_of

# Long enough for a refused handshake to surface, short enough that a hang fails the test.
REFUSAL_SECONDS = 30


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class Authority:
    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert = directory / f"{name}.pem"
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self._key, hashes.SHA256())
        issued = Issued(cert=self.directory / f"{name}.pem", key=self.directory / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return issued


class TlsProxy:
    """Terminates TLS on 127.0.0.1 (HTTP/2 by ALPN, as gRPC needs) and relays the bytes to `upstream`."""

    def __init__(self, context: ssl.SSLContext, upstream: str) -> None:
        self._context = context
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self.accepted = 0

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self._context)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for relay in self._relays:
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        # Only connections whose handshake succeeded (client certificate verified) get here.
        self.accepted += 1
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        server_reader, server_writer = await asyncio.open_connection(*self._upstream)
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer)
            )
        finally:
            for writer in (server_writer, client_writer):
                writer.close()
            self._relays.discard(relay)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


@dataclass(frozen=True)
class Pki:
    ca: Authority
    client: Issued
    stranger_ca: Authority
    stranger_client: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = Authority(directory, "pssync-test-ca")
    ca.issue("server", server=True)
    stranger = Authority(directory, "stranger-ca")
    return Pki(
        ca=ca,
        client=ca.issue("worker", server=False),
        stranger_ca=stranger,
        stranger_client=stranger.issue("stranger", server=False),
    )


@pytest.fixture
async def proxy(pki: Pki, dev_env: WorkflowEnvironment) -> AsyncIterator[TlsProxy]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.ca.directory / "server.pem", pki.ca.directory / "server.key")
    context.load_verify_locations(pki.ca.cert)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    running = TlsProxy(context, target_of(dev_env))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def settings_for(proxy: TlsProxy, *, ca: Path, client: Issued | None, **changes: object) -> Settings:
    return Settings(
        environment="test",
        temporal_address=proxy.address,
        temporal_tls_server_ca_cert_path=str(ca),
        temporal_tls_client_cert_path=str(client.cert) if client else None,
        temporal_tls_client_key_path=str(client.key) if client else None,
        **changes,
    )


@pytest.mark.parametrize("server_name", [None, "localhost"])
async def test_connects_over_mutual_tls_and_starts_and_describes_a_workflow(
    proxy: TlsProxy, pki: Pki, server_name: str | None
) -> None:
    settings = settings_for(
        proxy,
        ca=pki.ca.cert,
        client=pki.client,
        temporal_tls_server_name=server_name,
        temporal_api_key="tls-test-api-key",
    )
    client = await connect_client(settings)
    assert client.service_client.config.api_key == "tls-test-api-key"
    workflow_id = f"tls-probe-{uuid.uuid4().hex[:10]}"
    # No worker polls this queue: the run only has to be recorded and described through the proxy.
    handle = await client.start_workflow(
        "TlsProbe", id=workflow_id, task_queue=f"tls-probe-{uuid.uuid4().hex[:8]}"
    )
    try:
        described = await handle.describe()
        assert described.id == workflow_id
        assert described.status == WorkflowExecutionStatus.RUNNING
    finally:
        await handle.terminate("tls probe done")
    assert proxy.accepted >= 1


async def connection_refused(settings: Settings) -> str:
    # wait_for turns a hang into TimeoutError, which this does not catch.
    with pytest.raises(RuntimeError, match="Failed client connect") as refused:
        await asyncio.wait_for(connect_client(settings), REFUSAL_SECONDS)
    return str(refused.value)


async def test_a_client_without_a_certificate_is_refused(proxy: TlsProxy, pki: Pki) -> None:
    await connection_refused(settings_for(proxy, ca=pki.ca.cert, client=None))
    assert proxy.accepted == 0


async def test_a_client_certificate_from_another_ca_is_refused(proxy: TlsProxy, pki: Pki) -> None:
    await connection_refused(settings_for(proxy, ca=pki.ca.cert, client=pki.stranger_client))
    assert proxy.accepted == 0


async def test_a_server_the_configured_ca_did_not_sign_is_refused(proxy: TlsProxy, pki: Pki) -> None:
    refused = await connection_refused(settings_for(proxy, ca=pki.stranger_ca.cert, client=pki.client))
    assert "UnknownIssuer" in refused
    assert proxy.accepted == 0


async def test_plaintext_to_the_tls_endpoint_is_refused(proxy: TlsProxy, pki: Pki) -> None:
    await connection_refused(Settings(environment="test", temporal_address=proxy.address, temporal_tls=False))
    assert proxy.accepted == 0
