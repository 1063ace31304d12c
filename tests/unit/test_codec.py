"""Payload encryption: AES-GCM with a key id in the metadata, so keys can rotate."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload

from runs.codec import EncryptionCodec, UnknownKey, parse_keys

OLD, NEW = os.urandom(32), os.urandom(32)


def _payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_encoded_payload_hides_the_data_and_names_its_key():
    codec = EncryptionCodec({"k1": OLD}, "k1")
    [encoded] = await codec.encode([_payload('{"amount": "12000.00"}')])
    assert b"12000.00" not in encoded.data
    assert (
        encoded.metadata["encoding"] == b"binary/encrypted" and encoded.metadata["encryption-key-id"] == b"k1"
    )
    assert await codec.decode([encoded]) == [_payload('{"amount": "12000.00"}')]


async def test_after_rotation_old_payloads_still_decode_and_new_ones_use_the_new_key():
    [old] = await EncryptionCodec({"k1": OLD}, "k1").encode([_payload("old")])
    rotated = EncryptionCodec({"k1": OLD, "k2": NEW}, "k2")
    [new] = await rotated.encode([_payload("new")])
    assert new.metadata["encryption-key-id"] == b"k2"
    assert await rotated.decode([old, new]) == [_payload("old"), _payload("new")]


async def test_payload_of_a_retired_key_is_refused_by_name():
    [old] = await EncryptionCodec({"k1": OLD}, "k1").encode([_payload("old")])
    with pytest.raises(UnknownKey, match="'k1'"):
        await EncryptionCodec({"k2": NEW}, "k2").decode([old])


async def test_relabelled_payload_fails_authentication():
    [sealed] = await EncryptionCodec({"k1": OLD, "k2": OLD}, "k1").encode([_payload("x")])
    sealed.metadata["encryption-key-id"] = b"k2"
    with pytest.raises(InvalidTag):
        await EncryptionCodec({"k1": OLD, "k2": OLD}, "k1").decode([sealed])


async def test_unencrypted_payloads_pass_through_decode():
    codec = EncryptionCodec({"k1": OLD}, "k1")
    assert await codec.decode([_payload("plain")]) == [_payload("plain")]


def test_keys_parse_from_settings_form_and_must_be_256_bit():
    spec = f"a:{base64.b64encode(OLD).decode()},b:{base64.b64encode(NEW).decode()}"
    assert parse_keys(spec) == {"a": OLD, "b": NEW}
    with pytest.raises(ValueError, match="32 bytes"):
        EncryptionCodec({"short": b"0" * 16}, "short")
