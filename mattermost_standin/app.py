"""The ASGI application: request ids, faults, authentication, routing and error answers.

Every Mattermost request gets an ``X-Request-Id`` (echoed in error bodies), may hit
an injected fault first, is authenticated from ``Authorization: Bearer|Token <token>``
(or ``?access_token=``) like the real server, and ends in the request log. The
``/_standin/`` controls bypass faults and the log.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from mattermost_standin.domain import users
from mattermost_standin.errors import AppError, route_not_found, session_expired
from mattermost_standin.routes import (
    actions,
    bots,
    channels,
    commands,
    control,
    hooks,
    oauth,
    posts,
    roles,
    system,
    teams,
    web,
)
from mattermost_standin.routes import users as user_routes
from mattermost_standin.routing import Call, Context, Router, json_response
from mattermost_standin.store import Record, new_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("mattermost_standin")


def mattermost_router() -> Router:
    router = Router()
    # The web client's channel page last: its `/{team}/channels/{channel}` must not shadow an API route.
    for module in (user_routes, teams, channels, posts, actions, bots, roles, system, commands, hooks, oauth, web):
        router.include(module.router)
    return router


class StandInApp:
    def __init__(self, context: Context, on_request: Callable[[str, str, int, str | None], None]) -> None:
        self._context = context
        self._on_request = on_request
        self._mattermost = mattermost_router()
        # Mattermost requests received and not answered yet (e.g. held by a delay fault).
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self._respond(Request(scope, receive))
        await response(scope, receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        """Nothing to start or stop: state lives in ``StandIn``. Answered for ASGI servers that ask."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _respond(self, request: Request) -> Response:
        request_id = new_id()
        method, path = request.method, request.url.path
        if path.startswith("/_standin/"):
            return await self._dispatch(control.router, request, request_id)
        self.in_flight += 1
        try:
            faults = self._context.faults
            fault = faults.take(method, path, await request.body() if faults.need_body else b"")
            delay = fault.options.get("delay") if fault is not None else None
            if delay:
                # Receive the whole request first: a slow request is carried out after the delay
                # even when its client has given up meanwhile, as Mattermost does (a request under
                # way is not undone when the client disconnects; it lands late).
                await request.body()
                await asyncio.sleep(delay)
            response = fault.response(request_id) if fault is not None else None
            if response is None:
                response = await self._dispatch(self._mattermost, request, request_id)
        finally:
            self.in_flight -= 1
        caller, _ = self._session_user(request)
        self._on_request(method, path, response.status_code, caller["id"] if caller is not None else None)
        return response

    def _session_user(self, request: Request) -> tuple[Record | None, str]:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            token = value.strip()
        else:
            token = request.query_params.get("access_token", "")
        user = users.user_for_token(self._context.state, token, self._context.store.now_ms()) if token else None
        if user is not None and user["delete_at"]:
            user = None
        return user, token

    async def _dispatch(self, router: Router, request: Request, request_id: str) -> Response:
        try:
            found = router.match(request.method, request.url.path)
            if found is None:
                raise route_not_found()
            route, params = found
            user, token = self._session_user(request)
            if route.authenticated and user is None:
                raise session_expired(token)
            response = await route.handler(Call(request, params, self._context, user))
        except AppError as error:
            response = json_response(error.body(request_id), error.status)
        except ClientDisconnect:
            # The caller went away before its body arrived (a worker killed mid-request):
            # nothing was done, and nobody is left to answer.
            logger.info("caller disconnected during %s %s", request.method, request.url.path)
            response = Response(status_code=499)
        except Exception as exc:
            logger.exception("stand-in failed on %s %s", request.method, request.url.path)
            failure = AppError(
                500,
                "standin.internal_error.app_error",
                "The Mattermost stand-in failed while handling this request.",
                "".join(traceback.format_exception_only(exc)).strip(),
            )
            response = json_response(failure.body(request_id), 500)
        response.headers["X-Request-Id"] = request_id
        return response
