"""A webhook receiver for tests: a real HTTP(S) server on 127.0.0.1 that checks every request's
Standard Webhooks signature with the `standardwebhooks` library, as a receiver would.

    async with WebhookReceiver() as receiver:          # listening on a free port
        receiver.secret = subscription.secret          # known once the subscription is made
        ... make something deliver to receiver.url ...
        await receiver.wait_for(lambda r: len(r.deliveries) == 1, what="the first delivery")
        assert receiver.bad_signatures == 0

Every request is kept in `requests` (whatever it was answered); the ones answered 2xx with a
good signature in `deliveries` too. A request whose signature does not verify (or that came
before `secret` was set) is answered 401 and counted in `bad_signatures`.

What it answers can be switched at any time: `accept()` (200, the default), `down()` (503),
`answer(status, body=..., headers=...)` (410, 429 with Retry-After, 302 with Location...),
`slow(seconds)` (waits, then answers), `endless()` (an answer that never ends). And
`await refuse_connections()` closes the listening socket (connections are refused) until
`await reopen()` listens on the same port again. Waiting is on a condition notified at each
request's arrival and answer (`wait_for`): never a fixed sleep.

`WebhookReceiver(tls_names=["webhooks.test"])` serves https with a certificate for those
names from a throwaway CA (trustme); `client_tls()` is an SSL context that trusts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from devstack.embedded_http import free_port

# Long enough for a loaded machine; every wait ends as soon as its condition holds.
WAIT_SECONDS = 15.0
PATH = "/hooks/incidents"


@dataclass(frozen=True)
class Answer:
    """What the receiver answers: after `delay` seconds, `status` with `body` and `headers`;
    `endless`: the body never ends (chunks of `body`, or of 1 KiB, until the receiver stops)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    endless: bool = False


@dataclass
class Seen:
    """One request as it arrived, and what it was answered (None: not yet, or never)."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    # Why the signature did not verify ("" when it did).
    signature_error: str = ""
    payload: Any = None
    answered: int | None = None

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def signatures(self) -> list[str]:
        return self.headers.get("webhook-signature", "").split()


class WebhookReceiver:
    def __init__(self, secret: str | None = None, *, tls_names: Sequence[str] = (), path: str = PATH) -> None:
        # The subscription's secret, once known; every request is verified against it.
        self.secret = secret
        self.path = path
        self.requests: list[Seen] = []
        self.behaviour = Answer()
        self.port = 0
        self._tls_names = tuple(tls_names)
        self._ca = trustme.CA() if self._tls_names else None
        self._files: tempfile.TemporaryDirectory[str] | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self.app = Starlette(routes=[Route("/{rest:path}", self._receive, methods=["POST", "PUT", "GET"])])

    # ------------------------------------------------------------------ what it saw

    @property
    def url(self) -> str:
        scheme = "https" if self._ca is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.path}"

    def url_for(self, host: str) -> str:
        """The receiver's URL under another host name (one of `tls_names`, say)."""
        scheme = "https" if self._ca is not None else "http"
        return f"{scheme}://{host}:{self.port}{self.path}"

    @property
    def deliveries(self) -> list[Seen]:
        """The requests accepted: a good signature, answered 2xx. As for a real receiver, that
        includes one whose sender went away before reading the answer (a killed worker): the
        sender tries again with the same `webhook-id`, so a delivery may show up twice."""
        return [seen for seen in self.requests if seen.signature_ok and seen.answered and 200 <= seen.answered < 300]

    @property
    def bad_signatures(self) -> int:
        return sum(1 for seen in self.requests if not seen.signature_ok)

    @property
    def delivered_ids(self) -> list[str]:
        return [seen.webhook_id for seen in self.deliveries]

    async def wait_for(
        self, predicate: Callable[[WebhookReceiver], bool], *, timeout: float = WAIT_SECONDS, what: str = "condition"
    ) -> None:
        """Until `predicate(receiver)` holds, re-checked at each request's arrival and answer."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)
            except TimeoutError:
                seen = [(s.webhook_id, s.answered, s.signature_error) for s in self.requests]
                raise AssertionError(f"no {what} within {timeout} s; the receiver saw {seen}") from None

    async def wait_for_requests(self, count: int, *, timeout: float = WAIT_SECONDS) -> list[Seen]:
        await self.wait_for(lambda r: len(r.requests) >= count, timeout=timeout, what=f"{count} requests")
        return list(self.requests)

    def reset(self) -> None:
        """Forget every request and accept again (the secret stays)."""
        self.requests.clear()
        self.behaviour = Answer()

    # ------------------------------------------------------------------ what it answers

    def accept(self, status: int = 200) -> None:
        self.behaviour = Answer(status)

    def down(self) -> None:
        """Up, but answering 503 Service Unavailable (`refuse_connections` for no answer at all)."""
        self.behaviour = Answer(503, b"down for maintenance")

    def answer(self, status: int, body: bytes | str = b"", headers: Mapping[str, str] | None = None) -> None:
        self.behaviour = Answer(status, body.encode() if isinstance(body, str) else body, dict(headers or {}))

    def slow(self, seconds: float, status: int = 200) -> None:
        """Wait `seconds` before answering (the receiver's stop cuts it short)."""
        self.behaviour = Answer(status, delay=seconds)

    def endless(self, status: int = 200) -> None:
        """An answer whose body never ends: a client that reads it all never finishes."""
        self.behaviour = Answer(status, endless=True)

    async def refuse_connections(self) -> None:
        """Close the listening socket: connections to the port are refused until `reopen`."""
        await self._stop_server()

    async def reopen(self) -> None:
        """Listen again on the same port, answering as before."""
        if self._server is None:
            await self._start_server(self.port)

    # ------------------------------------------------------------------ TLS

    def client_tls(self) -> ssl.SSLContext:
        """An SSL context for clients that trusts the receiver's certificate (and nothing else)."""
        if self._ca is None:
            raise RuntimeError("this receiver serves plain http (give tls_names for https)")
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    # ------------------------------------------------------------------ running

    async def start(self) -> WebhookReceiver:
        self._stopping.clear()
        await self._start_server(free_port())
        return self

    async def stop(self) -> None:
        self._stopping.set()
        await self._stop_server()
        if self._files is not None:
            self._files.cleanup()
            self._files = None

    async def __aenter__(self) -> WebhookReceiver:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    async def _start_server(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        server = _Server(uvicorn.Config(self.app, lifespan="off", log_config=None, log_level=None,
                                        timeout_graceful_shutdown=1, **self._tls_files()))  # fmt: skip
        task = asyncio.create_task(server.serve(sockets=[sock]), name=f"webhook-receiver:{port}")
        while not server.started:
            if task.done():
                sock.close()
                task.result()
                raise RuntimeError("the webhook receiver stopped while starting")
            await asyncio.sleep(0.005)
        self._server, self._task, self.port = server, task, port

    async def _stop_server(self) -> None:
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is None or task is None:
            return
        server.should_exit = True
        await task

    def _tls_files(self) -> dict[str, Any]:
        if self._ca is None:
            return {}
        if self._files is None:
            self._files = tempfile.TemporaryDirectory(prefix="webhook-receiver-")
            leaf = self._ca.issue_cert(*self._tls_names, "127.0.0.1")
            leaf.private_key_pem.write_to_path(Path(self._files.name) / "key.pem")
            leaf.cert_chain_pems[0].write_to_path(Path(self._files.name) / "cert.pem")
            for pem in leaf.cert_chain_pems[1:]:
                pem.write_to_path(Path(self._files.name) / "cert.pem", append=True)
        return {
            "ssl_keyfile": str(Path(self._files.name) / "key.pem"),
            "ssl_certfile": str(Path(self._files.name) / "cert.pem"),
        }

    # ------------------------------------------------------------------ the endpoint

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        headers = {key.lower(): value for key, value in request.headers.items()}
        seen = Seen(path=request.url.path, headers=headers, body=body, signature_ok=False)
        if self.secret is None:
            seen.signature_error = "no secret set yet"
        else:
            try:
                seen.payload = Webhook(self.secret).verify(body, headers)
                seen.signature_ok = True
            except WebhookVerificationError as error:
                seen.signature_error = str(error)
        await self._record(lambda: self.requests.append(seen))
        behaviour = self.behaviour
        if not seen.signature_ok:
            return await self._answered(seen, Response("bad signature", status_code=401))
        if behaviour.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), behaviour.delay)
        if behaviour.endless:
            return await self._answered(seen, StreamingResponse(self._forever(behaviour), behaviour.status))
        response = Response(behaviour.body, status_code=behaviour.status, headers=dict(behaviour.headers))
        return await self._answered(seen, response)

    async def _answered(self, seen: Seen, response: Response) -> Response:
        def answer() -> None:
            seen.answered = response.status_code

        await self._record(answer)
        return response

    async def _record(self, change: Callable[[], None]) -> None:
        async with self._changed:
            change()
            self._changed.notify_all()

    async def _forever(self, behaviour: Answer) -> AsyncIterator[bytes]:
        chunk = behaviour.body or b"x" * 1024
        while not self._stopping.is_set():
            yield chunk
            await asyncio.sleep(0)


class _Server(uvicorn.Server):
    """uvicorn minus signal handling: the test run owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield
