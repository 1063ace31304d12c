"""Payloads in Temporal history are encrypted (AES-256-GCM) with a named key.

The key id travels in each payload's metadata, so keys can be rotated: new payloads use the active key,
and older keys stay configured only to read what they wrote. The ingress serves this codec to the
Temporal Web UI (`/codec`), so authorised people can read payloads there.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from config import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class UnknownKey(ValueError):
    pass


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise ValueError(
                f"active codec key {active_key_id!r} is not among the configured keys {sorted(keys)}"
            )
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"codec key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active_key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> EncryptionCodec:
        return cls(parse_keys(settings.codec_keys.get_secret_value()), settings.codec_active_key_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._active]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            # The key id is authenticated data: a payload cannot be re-labelled to another key.
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), self._active.encode())
            encoded.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID: self._active.encode()}, data=nonce + sealed)
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise UnknownKey(f"payload was encrypted with key {key_id!r}, which is not configured")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            decoded.append(Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode())))
        return decoded


def parse_keys(spec: str) -> dict[str, bytes]:
    """`id:base64key,id2:base64key2` → {id: key}."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise ValueError("codec keys are written 'key-id:base64-key', comma separated")
        keys[key_id] = base64.b64decode(encoded, validate=True)
    return keys


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic models in, encrypted payloads out: the one converter every ps-sync client uses."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec.from_settings(settings))
