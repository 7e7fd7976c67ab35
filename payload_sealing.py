"""Secrets never sit in clear in a workflow history: payloads that carry one are sealed.

The data converter of every process (worker, API, tools) is pydantic's, with two parts of
our own, as Temporal's encryption sample arranges them:
- `SealingPayloadConverter` marks a payload whose value holds a secret anywhere inside it
  (a field typed `models.webhooks.Secret` announces itself while it is serialized);
- `SealingCodec` (a `PayloadCodec`) encrypts each marked payload with AES-256-GCM before it
  reaches Temporal, and decrypts it on the way back.
Everything else stays plain JSON, on purpose: the Temporal Web UI must keep showing the
summaries, details and inputs operators read (the sample encrypts everything, which would
hide them unless the UI were pointed at a codec server). The key is derived from
`SIGNING_SECRET` with HKDF for this use alone; `SIGNING_SECRET_PREVIOUS` (comma-separated)
keeps payloads sealed under earlier secrets readable after a rotation. A sealed payload
names its key by a short id, so a wrong or missing key is a clear error, not garbage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic_core import to_json
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.contrib.pydantic import pydantic_data_converter as _plain_converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadCodec,
)

SEALED_ENCODING = b"binary/sealed"
# Set by the converter on a payload that must be sealed; never leaves this process unsealed.
SEAL_ME = "seal"
KEY_ID = "sealed-key"
_NONCE_BYTES = 12
_INFO = b"temporal payload sealing"


def derive_key(signing_secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(signing_secret.encode())


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"key id:" + key).hexdigest()[:12]


class SealingJSONConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic's JSON converter that marks payloads holding a secret (see `models.webhooks.Secret`)."""

    def to_payload(self, value: Any) -> Payload | None:
        context: dict[str, bool] = {}
        data = to_json(value, context=context)
        payload = Payload(metadata={"encoding": self.encoding.encode()}, data=data)
        if context.get("sealed"):
            payload.metadata[SEAL_ME] = b"1"
        return payload


class SealingPayloadConverter(CompositePayloadConverter):
    """Temporal's default converters, with JSON done by `SealingJSONConverter`."""

    def __init__(self) -> None:
        sealing = SealingJSONConverter()
        super().__init__(
            *(
                sealing if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


class SealingCodec(PayloadCodec):
    """AES-256-GCM for the payloads the converter marked; others pass through unchanged."""

    def __init__(self, key: bytes | None, previous: Sequence[bytes] = ()) -> None:
        # No key (a tool run without SIGNING_SECRET): reads what is plain, refuses to write a secret.
        self._key_id = key_id(key) if key else ""
        self._cipher = AESGCM(key) if key else None
        self._ciphers = {key_id(k): AESGCM(k) for k in (*previous, *([key] if key else []))}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(p) if p.metadata.get(SEAL_ME) else p for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) if p.metadata.get("encoding") == SEALED_ENCODING else p for p in payloads]

    def _seal(self, payload: Payload) -> Payload:
        if self._cipher is None:
            raise ValueError("a secret cannot be written to Temporal without SIGNING_SECRET (it seals it)")
        inner = Payload()
        inner.CopyFrom(payload)
        del inner.metadata[SEAL_ME]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, inner.SerializeToString(), self._key_id.encode())
        return Payload(
            metadata={"encoding": SEALED_ENCODING, KEY_ID: self._key_id.encode()},
            data=nonce + sealed,
        )

    def _open(self, payload: Payload) -> Payload:
        kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise ValueError(
                f"a payload is sealed with key {kid}, which this process does not have: give it the "
                "SIGNING_SECRET the payload was written with (or list it in SIGNING_SECRET_PREVIOUS)"
            )
        try:
            opened = cipher.decrypt(payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise ValueError(f"a payload sealed with key {kid} does not open: it was altered") from None
        inner = Payload()
        inner.ParseFromString(opened)
        return inner


def data_converter(signing_secret: str, previous: Sequence[str] = ()) -> DataConverter:
    """The data converter every process uses: pydantic models, secrets sealed."""
    key = derive_key(signing_secret) if signing_secret else None
    return dataclasses.replace(
        _plain_converter,
        payload_converter_class=SealingPayloadConverter,
        payload_codec=SealingCodec(key, [derive_key(s) for s in previous if s]),
    )
