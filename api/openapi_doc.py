"""The OpenAPI document names every status a route can answer.

FastAPI documents what routes declare; the statuses every route shares come from the
layers around them (`api.request_guard`, the error handlers) and are added here: 500 everywhere
(an unexpected error, or a failing workflow), 502 and 503 wherever Mattermost or Temporal
is called, and for routes that take a body 413 (too
large) and 415 (wrong content type), plus 422 (a body that is no valid JSON). FastAPI's
own 422 schema is replaced by the shared error body, which is what 422 answers.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.http_errors import ERROR_DESCRIPTIONS

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
# Liveness needs nothing; readiness documents its own 503; a slash command always
# answers 200 with its failure said in the reply.
NO_DEPENDENCY_ERRORS = frozenset({"/healthz", "/readyz", "/mattermost/slash"})
# Swagger UI and ReDoc, as the `fastapi-offline` package ships them: /docs needs no CDN.
DOCS_ASSETS = "/docs-assets"
BEARER = "bearerAuth"
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "A Mattermost personal access token or session token: `Authorization: Bearer <token>`.",
    }
}


def _error(code: int) -> dict[str, Any]:
    return {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"schema": ERROR_REF}}}


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    spec.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            if path.startswith("/api/v1"):
                # The bearer scheme declares the header (Swagger UI's Authorize fills it for
                # every operation); the route's own Authorization parameter would duplicate it.
                operation["security"] = [{BEARER: []}]
                kept = [
                    p
                    for p in operation.get("parameters", [])
                    if not (p.get("in") == "header" and p.get("name", "").lower() == "authorization")
                ]
                if kept:
                    operation["parameters"] = kept
                else:
                    operation.pop("parameters", None)
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
    install_docs(app)


def docs_assets() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from assets this app serves itself."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API reference",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
