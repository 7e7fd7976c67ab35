"""Connecting to an external Temporal: TLS, mTLS and API key settings, used by every process.

The dev server speaks plain gRPC, so the TLS tests put a TLS-terminating proxy (certificates
from `trustme`, a throwaway CA) in front of the test stack's server: what Temporal Cloud or a
self-hosted cluster behind TLS looks like to a client. The worker's health check and the API
process connect through it with nothing but environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from temporalio.service import TLSConfig

from devstack.embedded_http import free_port
from settings import Settings, SettingsError, load_settings
from temporal_connection import connect, tls_config
from tests.harness import Stack, eventually

PROJECT = Path(__file__).resolve().parents[2]
SERVER_NAME = "temporal.test"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **{"temporal_address": "127.0.0.1:7233", **values})


# ------------------------------------------------------------------ settings, without a server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, the frontend's certificate, and a client certificate with its key, as PEM files."""
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    client = ca.issue_cert("incident-worker")
    files = {"ca": directory / "ca.pem", "cert": directory / "client.pem", "key": directory / "client.key"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    server = ca.issue_cert(SERVER_NAME)
    files["server-cert"] = directory / "server.pem"
    files["server-key"] = directory / "server.key"
    server.cert_chain_pems[0].write_to_path(str(files["server-cert"]))
    server.private_key_pem.write_to_path(str(files["server-key"]))
    return files


def test_a_local_server_needs_no_tls() -> None:
    assert tls_config(settings()) is False
    assert tls_config(settings(temporal_tls="")) is False


def test_an_api_key_turns_tls_on_with_the_system_roots() -> None:
    assert tls_config(settings(temporal_api_key="key")) is True
    assert tls_config(settings(temporal_tls="true")) is True
    # ...unless told otherwise (a cluster that checks keys behind a TLS-terminating proxy).
    assert tls_config(settings(temporal_api_key="key", temporal_tls="false")) is False


def test_certificate_files_are_read_into_the_tls_config(pki: dict[str, Path]) -> None:
    config = tls_config(
        settings(
            temporal_tls_ca=str(pki["ca"]),
            temporal_tls_cert=str(pki["cert"]),
            temporal_tls_key=str(pki["key"]),
            temporal_tls_server_name=SERVER_NAME,
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == pki["ca"].read_bytes()
    assert config.client_cert == pki["cert"].read_bytes()
    assert config.client_private_key == pki["key"].read_bytes()
    assert config.domain == SERVER_NAME


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TEMPORAL_TLS_CA": "/no/such/ca.pem"}, "TEMPORAL_TLS_CA: Value error, no such file: /no/such/ca.pem"),
        ({"TEMPORAL_TLS": "maybe"}, "TEMPORAL_TLS: Input should be a valid boolean"),
        ({"TEMPORAL_TLS_CERT": "{cert}"}, "Value error, TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together"),
        ({"TEMPORAL_TLS": "false", "TEMPORAL_TLS_CA": "{ca}"}, "Value error, TEMPORAL_TLS=false contradicts"),
    ],
)
def test_a_wrong_tls_setting_stops_the_process_with_one_line(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(cert=pki["cert"], ca=pki["ca"]))
    with pytest.raises(SettingsError) as error:
        load_settings(_env_file=None)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"Invalid configuration: {expected}")


# ------------------------------------------------------------------ through TLS, for real


@dataclass
class TlsFrontend:
    address: str
    connections: int = 0


@asynccontextmanager
async def tls_frontend(stack: Stack, pki: dict[str, Path], *, require_client_cert: bool) -> AsyncIterator[TlsFrontend]:
    """A TLS (optionally mTLS) endpoint forwarding to the stack's plain-text Temporal server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server-cert"], pki["server-key"])
    context.set_alpn_protocols(["h2"])  # gRPC is HTTP/2
    if require_client_cert:
        context.load_verify_locations(pki["ca"])
        context.verify_mode = ssl.CERT_REQUIRED
    host, port = stack.settings.temporal_address.rsplit(":", 1)
    port_here = free_port()
    frontend = TlsFrontend(address=f"127.0.0.1:{port_here}")
    tasks: set[asyncio.Future[Any]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frontend.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        task = asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        tasks.add(task)
        await task

    server = await asyncio.start_server(handle, "127.0.0.1", port_here, ssl=context)
    try:
        yield frontend
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_mutual_tls_with_a_private_ca_and_a_server_name(stack: Stack, pki: dict[str, Path]) -> None:
    async with tls_frontend(stack, pki, require_client_cert=True) as frontend:
        good = settings(
            temporal_address=frontend.address,
            temporal_tls_ca=str(pki["ca"]),
            temporal_tls_cert=str(pki["cert"]),
            temporal_tls_key=str(pki["key"]),
            temporal_tls_server_name=SERVER_NAME,
        )
        client = await asyncio.wait_for(connect(good), timeout=30)
        assert await client.service_client.check_health()
        assert frontend.connections >= 1
        # Without the client certificate, or without trusting the private CA, there is no connection.
        for broken in (
            good.model_copy(update={"temporal_tls_cert": "", "temporal_tls_key": ""}),
            good.model_copy(update={"temporal_tls_ca": ""}),
            good.model_copy(update={"temporal_tls": False, "temporal_tls_ca": "", "temporal_tls_cert": ""}),
        ):
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(connect(broken), timeout=30)


async def test_the_api_and_the_worker_connect_through_tls_with_an_api_key(
    stack: Stack, pki: dict[str, Path], tmp_path: Path
) -> None:
    """The two entry points, configured only by environment, reach Temporal through TLS."""
    async with tls_frontend(stack, pki, require_client_cert=False) as frontend:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "MATTERMOST_", "API_"))},
            "TEMPORAL_ADDRESS": frontend.address,
            "TEMPORAL_TASK_QUEUE": f"tls-{uuid.uuid4().hex[:8]}",
            "TEMPORAL_API_KEY": "an-api-key",
            "TEMPORAL_TLS_CA": str(pki["ca"]),
            "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
            "MATTERMOST_URL": stack.settings.mattermost_url,
            "MATTERMOST_BOT_TOKEN": stack.settings.mattermost_bot_token,
            "MATTERMOST_SLASH_TOKEN": "token",
            "SIGNING_SECRET": "secret",
        }
        check = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", "--check", cwd=PROJECT, env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(check.communicate(), timeout=60)
        # Connected: the check got as far as asking who polls the (new, empty) task queue.
        assert check.returncode == 1
        assert "unhealthy: no worker on" in err.decode(), err.decode()[-2000:]

        port = free_port()
        log = (tmp_path / "api.log").open("wb")
        api = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api", cwd=PROJECT, env={**env, "API_PORT": str(port)}, stdout=log, stderr=log
        )
        log.close()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                ready = await eventually(
                    lambda: http.get("/readyz"), lambda r: r.status_code == 200, timeout=60, what="API ready over TLS"
                )
            assert ready.json()["checks"]["temporal"] == "ok"
        finally:
            api.terminate()
            await asyncio.wait_for(api.wait(), timeout=30)
        # Without TLS the same frontend is unreachable: the settings, not luck, made it work.
        plain = {**env, "TEMPORAL_TLS": "false", "TEMPORAL_TLS_CA": "", "TEMPORAL_TLS_SERVER_NAME": ""}
        check = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", "--check", cwd=PROJECT, env=plain, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(check.communicate(), timeout=60)
        assert check.returncode == 1
        assert "unhealthy: cannot reach Temporal" in err.decode(), err.decode()[-2000:]
