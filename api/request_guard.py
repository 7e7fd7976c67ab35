"""What every request passes before any route reads its body.

In order: a body larger than `MAX_BODY_BYTES` is answered 413 (at once when its
Content-Length says so, or as soon as a chunked body's streamed bytes pass the limit);
a request to an authenticated route is authenticated before its body is read (the
bearer token for `/api/v1`, the `Authorization: Token` header of a slash command); and a
body of a type the route does not take is answered 415. All with the shared error body.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http_errors import error_response, mattermost_failure_response
from mattermost_client.gateway import MattermostFailure
from service.container import Services
from service.errors import ServiceError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SLASH_PATH = "/mattermost/slash"
# The routes that read a YAML file.
IMPORT_PATHS = frozenset({"/api/v1/playbooks/import", "/api/v1/integrations/import", "/api/v1/schedules/import"})
WEBHOOKS_IMPORT = re.compile(r"/api/v1/(playbooks|teams)/[^/]+/webhooks/import")
# A slash command's form is a few kilobytes (Mattermost caps the text at 4,000 characters).
SLASH_MAX_BODY_BYTES = 64 * 1024
JSON_TYPES = frozenset({"application/json"})
# A file posted without a type is taken for what the route reads (YAML).
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain", ""})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})
# The backstage's pages post HTML forms.
BACKSTAGE_PREFIX = "/backstage/"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")
        self.limit = limit


def too_large(limit: int) -> Any:
    return error_response(413, "payload_too_large", f"The request body is larger than {limit} bytes; send less.")


def accepted_types(path: str) -> frozenset[str]:
    if path == SLASH_PATH or path.startswith(BACKSTAGE_PREFIX):
        return FORM_TYPES
    if path in IMPORT_PATHS or WEBHOOKS_IMPORT.fullmatch(path):
        return YAML_TYPES
    return JSON_TYPES


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope["path"]
        limit = min(self.max_body_bytes, SLASH_MAX_BODY_BYTES) if path == SLASH_PATH else self.max_body_bytes
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await too_large(limit)(scope, receive, send)
            return
        refusal = await self._authenticate(scope, headers, path)
        if refusal is None:
            refusal = _unsupported_type(headers, path, declared)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await too_large(limit)(scope, receive, send)

    async def _authenticate(self, scope: Scope, headers: Headers, path: str) -> Any:
        """An error response when the request is not authenticated, else None."""
        authorization = headers.get("authorization", "")
        if path.startswith("/api/v1/"):
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return error_response(
                    401,
                    "unauthorized",
                    "Authentication required: send Authorization: Bearer <Mattermost personal access token>.",
                )
            svc: Services = scope["app"].state.services
            try:
                # Cached: the route's own authentication reuses this answer.
                await svc.facts.caller_for_token(token.strip())
            except ServiceError as error:
                return error_response(error.status, error.code, error.message, error.fields)
            except MattermostFailure as failure:
                return mattermost_failure_response(failure)
        elif path == SLASH_PATH and authorization:
            # Mattermost sends the command's token in this header; a form-only token is
            # checked by the route, on a body already bounded by SLASH_MAX_BODY_BYTES.
            scheme, _, token = authorization.strip().partition(" ")
            svc = scope["app"].state.services
            known = [hmac.compare_digest(token.strip().encode(), t.encode()) for t in svc.settings.slash_tokens]
            if scheme.lower() != "token" or not any(known):
                return error_response(401, "unauthorized", "Invalid or missing slash command token.")
        return None


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else None


def _unsupported_type(headers: Headers, path: str, declared: int | None) -> Any:
    """415 for a body of a type the route does not take (no body, no check). The slash
    route answers its own 415, in Mattermost's terms."""
    if path == SLASH_PATH:
        return None
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    if not declared and not chunked:
        return None
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    accepted = accepted_types(path)
    if media_type in accepted:
        return None
    listed = " or ".join(sorted(t for t in accepted if t))
    return error_response(
        415,
        "unsupported_media_type",
        f"Send the body as {listed} (got {media_type or 'no Content-Type'}).",
    )
