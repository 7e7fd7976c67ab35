"""The one way every process (worker, API, dev runner) connects to Temporal.

A local server needs only `TEMPORAL_ADDRESS`; Temporal Cloud or a self-hosted cluster
behind TLS adds an API key or a client certificate (see README, Configuration).
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

import payload_sealing
from settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    """What `Client.connect(tls=...)` needs: False, True (system roots) or the PEM files given."""
    if not settings.temporal_uses_tls:
        return False
    if not (settings.temporal_tls_ca or settings.temporal_tls_cert or settings.temporal_tls_server_name):
        return True
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_ca),
        client_cert=_read(settings.temporal_tls_cert),
        client_private_key=_read(settings.temporal_tls_key),
        domain=settings.temporal_tls_server_name or None,
    )


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """A Temporal client that speaks our pydantic models, with the configured TLS and API key."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key or None,
        tls=tls_config(settings),
        data_converter=payload_sealing.data_converter(settings.signing_secret, settings.previous_signing_secrets),
        lazy=lazy,
    )
