"""How every ps-sync process connects to Temporal: same address, namespace and data converter."""

from __future__ import annotations

from temporalio.client import Client

from pssync.codec import data_converter
from pssync.settings import Settings


async def connect_client(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
