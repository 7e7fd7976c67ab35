"""The OpenAPI document names every status a route can answer.

FastAPI documents what routes declare; the statuses every route shares come from the
layers around them (`api.edge`, the error handlers) and are added here: 500 everywhere
(an unexpected error, or a failing workflow), 502 and 503 wherever Mattermost or Temporal
is called, and for routes that take a body 413 (too
large) and 415 (wrong content type), plus 422 (a body that is no valid JSON). FastAPI's
own 422 schema is replaced by the shared error body, which is what 422 answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import ERROR_DESCRIPTIONS

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
# Liveness needs nothing; readiness documents its own 503; a slash command always
# answers 200 with its failure said in the reply.
NO_DEPENDENCY_ERRORS = frozenset({"/healthz", "/readyz", "/mattermost/slash"})


def _error(code: int) -> dict[str, Any]:
    return {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"schema": ERROR_REF}}}


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            shared = [500]
            if "requestBody" in operation:
                shared += [413, 415, 422]
            if path.startswith("/api/v1"):
                shared += [401]
            if path not in NO_DEPENDENCY_ERRORS:
                # Mattermost refusing (502) or Temporal or Mattermost unavailable (503).
                shared += [502, 503]
            for code in shared:
                responses.setdefault(str(code), _error(code))
            if "422" in responses:
                # FastAPI documents its own validation body; ours is the shared error body.
                responses["422"] = _error(422)
    return spec


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
