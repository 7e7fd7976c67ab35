"""Serve an ASGI app with uvicorn inside the caller's running event loop.

Used for the stand-in and, in tests, for the integrations it calls. The listening
socket is bound here with ``SO_REUSEADDR`` so a stopped server can start again on
the same port at once, and the port is known before the first request. Signals are
left to the host program: a server embedded in a test run must not swallow Ctrl+C.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn


class _EmbeddedServer(uvicorn.Server):
    """uvicorn's server minus signal handling, waking at once when asked to stop.

    uvicorn polls ``should_exit`` every 0.1 s; tests start and stop servers often,
    so the main loop waits on an event instead (still refreshing the Date header).
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 10  # on_tick refreshes the default headers when counter % 10 == 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.exit_requested.wait(), 1.0)


class BackgroundServer:
    def __init__(self, app: Any) -> None:
        self._app = app
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 picks a free port) and return the port once accepting."""
        if self._task is not None:
            raise RuntimeError("already serving")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this; without it Nagle's algorithm holds the response
        # body until the client's delayed ACK, adding 40 ms to every request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            lifespan="off",
            # uvicorn's logging is per process, not per server: the host process configures it
            # (an access_log=False here would silence the access log of every server in it).
            log_config=None,
            log_level=None,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                sock.close()
                task.result()
                raise RuntimeError("the server stopped while starting")
            await asyncio.sleep(0.005)
        self._server, self._task = server, task
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting (later connections are refused), finish in-flight requests, return."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        self._server.exit_requested.set()
        task, self._server, self._task = self._task, None, None
        await task
