"""Serve an ASGI app with uvicorn inside an existing event loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process.

    Several servers share one process in `make dev` and in the tests; the host decides
    when to stop them, so none of them may take over SIGINT/SIGTERM.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def start_background(self) -> asyncio.Task[None]:
        task = asyncio.create_task(self.serve(), name=f"uvicorn:{self.config.port}")
        while not self.started:
            if task.done():
                task.result()  # surfaces the startup error (e.g. port in use)
                raise RuntimeError(f"HTTP server on port {self.config.port} stopped during start-up")
            await asyncio.sleep(0.01)
        self._task = task
        return task

    async def stop(self) -> None:
        self.should_exit = True
        task = getattr(self, "_task", None)
        if task is not None:
            await task


async def serve(app: ASGIApp, *, host: str, port: int) -> EmbeddedServer:
    """Serve `app` until `stop`, leaving uvicorn's loggers (its access log included) as the
    process configured them (`process_logging`)."""
    server = EmbeddedServer(uvicorn.Config(app, host=host, port=port, log_config=None, log_level=None, lifespan="on"))
    await server.start_background()
    return server


# Below Linux's ephemeral range (32768-60999): the kernel never hands these out as the
# source port of an outgoing connection, so a port found free stays free until we bind it.
_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and parallel dev stacks)."""
    for _ in range(200):
        port = random.choice(_PORTS)  # noqa: S311 - not security, just spreading choices
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found between 20000 and 32000")
