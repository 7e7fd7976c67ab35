"""One error shape for every failure the HTTP API reports, and the mapping to it.

Body: `{"error": <code>, "message": <sentence for a person>, "fields": {<field>: <problem>}}`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from mattermost_client.gateway import MattermostFailure
from service.command_follow_ups import CommandPending, pending_body
from service.errors import ServiceError, describe_fields, validation_fields
from service.unavailability import rpc_error

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. not_found, conflict, validation_error")
    message: str = Field(description="What went wrong and how to fix it, for a person")
    fields: dict[str, str] = Field(default_factory=dict, description="Per-field problems, when the input was wrong")


STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
# FastAPI's answer when a body cannot be read as JSON for another reason than its syntax
# (e.g. invalid UTF-8); it is the same mistake as a syntax error, and said the same way.
FASTAPI_BODY_ERROR = "There was an error parsing the body"


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, message=message, fields=fields or {})
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


def mattermost_failure_response(error: MattermostFailure) -> JSONResponse:
    log.warning("Mattermost failure: %s", error.message)
    if error.retryable:
        return error_response(503, "mattermost_unavailable", f"{error.message}. Try again shortly.")
    return error_response(502, "mattermost_refused", error.message)


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every method some route serves at this path (for 405's `Allow`), read from the
    OpenAPI document: Starlette names only the methods of the first route that matched."""
    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _api_error(_: Request, error: ServiceError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.fields)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        fields = validation_fields(error.errors())
        return error_response(422, "validation_error", describe_fields(fields), fields)

    @app.exception_handler(ValidationError)
    async def _model_invalid(_: Request, error: ValidationError) -> JSONResponse:
        fields = validation_fields(error.errors())
        return error_response(422, "validation_error", describe_fields(fields), fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and error.detail == FASTAPI_BODY_ERROR:
            fields = {"body": "is not valid JSON in UTF-8"}
            return error_response(422, "validation_error", describe_fields(fields), fields)
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        code = STATUS_CODES.get(error.status_code, "error")
        return error_response(error.status_code, code, str(error.detail), headers=headers or None)

    @app.exception_handler(MattermostFailure)
    async def _mattermost_failed(_: Request, error: MattermostFailure) -> JSONResponse:
        return mattermost_failure_response(error)

    @app.exception_handler(RPCError)
    async def _temporal_failed(_: Request, error: RPCError) -> JSONResponse:

        mapped = rpc_error(error)
        return error_response(mapped.status, mapped.code, mapped.message)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")


ERROR_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with the current state",
    413: "The request body is larger than MAX_BODY_BYTES",
    415: "Unsupported media type",
    422: "Invalid input; `fields` names each problem",
    500: "An unexpected error (logged), or the workflow of this incident or playbook is failing",
    502: "Mattermost refused a call",
    503: "Temporal or Mattermost is unavailable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the shared error body."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


class PendingBody(BaseModel):
    status: str = Field(description="pending")
    message: str
    incident_id: str = Field(description="The incident the command or start is for")
    idempotency_key: str = Field(
        description="Repeat the request with this `Idempotency-Key` to get its outcome (the one you sent, or one "
        "the API chose when you sent none)"
    )
    incident_url: str = Field(description="Where to read the incident meanwhile")


PENDING_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {
        "model": PendingBody,
        "description": "Temporal took the request but had not answered within TEMPORAL_RPC_TIMEOUT_SECONDS: it "
        "is being applied (or refused) and its outcome is returned by repeating the request with the same "
        "Idempotency-Key",
    }
}


def pending_response(pending: CommandPending, key: str) -> JSONResponse:
    return JSONResponse(
        status_code=202,
        content=pending_body(pending.pending, key),
        headers={"Location": f"/api/v1/incidents/{pending.pending.incident_id}", "Idempotency-Key": key},
    )
