"""Test doubles and helpers for the stand-in's contract tests (imported by tests and fixtures)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from fastapi import Request
from fastapi.responses import Response
from mattermostautodriver import AsyncTypedDriver
from mattermostautodriver.exceptions import MattermostError

from mattermost_standin import StandIn
from mattermost_standin.store import new_id


class FakeClock:
    """A clock that only moves when told to, for trigger id and ``response_url`` expiry."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Received:
    """One request an integration received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Reply = Response | Callable[[Received], Awaitable[Response]]


@dataclass
class Receiver:
    """An integration: records requests and answers per path (default: 200, empty body)."""

    received: list[Received] = field(default_factory=list)
    replies: dict[str, Reply] = field(default_factory=dict)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reply(self, path: str, reply: Reply) -> None:
        self.replies[path] = reply

    def reply_json(self, path: str, body: Any, status: int = 200) -> None:
        self.replies[path] = Response(json.dumps(body), status_code=status, media_type="application/json")

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def reset(self) -> None:
        self.received.clear()
        self.replies.clear()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        received = Received(
            request.method,
            request.url.path,
            parse_qs(request.url.query, keep_blank_values=True),
            dict(request.headers),
            await request.body(),
        )
        self.received.append(received)
        reply = self.replies.get(received.path, Response(b"", status_code=200))
        response = reply if isinstance(reply, Response) else await reply(received)
        await response(scope, receive, send)


Connect = Callable[..., AsyncTypedDriver]
"""The ``connect`` fixture: ``connect(standin, token, max_retries=0)`` returns a driver."""


def unique(prefix: str) -> str:
    """A fresh lowercase name, valid for channels, teams and users."""
    return f"{prefix}-{new_id()[:10]}"


@contextmanager
def refused(error: type[MattermostError], error_id: str) -> Iterator[None]:
    """The driver request awaited inside must be refused: the driver raises ``error`` (its class for
    the answer's status code), and the answer carries the server's ``error_id``."""
    with pytest.raises(error) as caught:
        yield
    assert caught.value.error_id == error_id, f"refused with {caught.value.error_id!r}, not {error_id!r}"


def make_driver(standin: StandIn, token: str, *, max_retries: int = 0) -> AsyncTypedDriver:
    """A driver as the project builds one: host, scheme and port apart, a timeout, a token."""
    driver = AsyncTypedDriver(
        {
            "url": "127.0.0.1",
            "scheme": "http",
            "port": standin.port,
            "token": token,
            "request_timeout": 10,
            "max_retries": max_retries,
        }
    )
    driver.client.token = token
    return driver
