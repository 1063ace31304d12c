"""How every ps-sync process connects to Temporal: same address, namespace, credentials and data converter."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from config import Settings
from runs.codec import data_converter


async def connect_client(settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None) -> Client:
    """`lazy` connects on first use (and again on each use until it succeeds), for a process that must
    start and answer "unavailable" while Temporal is down rather than fail to start. `runtime` (the
    worker's, serving metrics) replaces the SDK's default runtime."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=tls_config(settings),
        data_converter=data_converter(settings),
        lazy=lazy,
        runtime=runtime,
    )


def tls_config(settings: Settings) -> TLSConfig | bool:
    """False for plaintext; True for TLS with the system's roots; a TLSConfig when any TLS setting is given.

    Follows Temporal's client configuration: an API key or any TLS setting turns TLS on, and only an
    explicit `temporal_tls = false` turns it off.
    """
    if settings.temporal_tls is False:
        return False
    config = TLSConfig(
        server_root_ca_cert=_pem(
            settings.temporal_tls_server_ca_cert_path, settings.temporal_tls_server_ca_cert_data
        ),
        domain=settings.temporal_tls_server_name,
        client_cert=_pem(settings.temporal_tls_client_cert_path, settings.temporal_tls_client_cert_data),
        client_private_key=_pem(settings.temporal_tls_client_key_path, settings.temporal_tls_client_key_data),
    )
    if config != TLSConfig():
        return config
    return bool(settings.temporal_tls or settings.temporal_api_key)


def _pem(path: str | None, text: str | SecretStr | None) -> bytes | None:
    if path:
        return Path(path).read_bytes()
    if isinstance(text, SecretStr):
        text = text.get_secret_value()
    return text.encode() if text else None
