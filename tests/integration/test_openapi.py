"""The OpenAPI document describes every route, body and error, with one error shape."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.harness import Stack


async def document(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        response = await http.get("/openapi.json")
        docs = await http.get("/docs")
    assert response.status_code == 200
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    body: dict[str, Any] = response.json()
    return body


async def test_every_route_is_documented_with_its_errors(stack: Stack) -> None:
    spec = await document(stack)
    error_ref = "#/components/schemas/ErrorBody"
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]) == {"error", "message", "fields"}
    app = stack.api.config.app
    assert isinstance(app, FastAPI)
    routes = {path for route in app.routes if (path := getattr(route, "path", "")).startswith("/")}
    documented = set(spec["paths"])
    # The backstage serves HTML pages, and /docs-assets the documentation's own files: not API.
    api_routes = {path for path in routes if not path.startswith(("/backstage", "/docs-assets"))}
    assert api_routes - {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"} <= documented
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success, (method, path)
            if path.startswith("/api/v1"):
                assert responses["401"]["content"]["application/json"]["schema"]["$ref"] == error_ref, (method, path)
                for code, response in responses.items():
                    if code.startswith(("4", "5")) and code != "422":
                        assert response["content"]["application/json"]["schema"]["$ref"] == error_ref, (code, path)
            takes_no_body = path.endswith(
                ("/end", "/restart", "/run", "/token", "/secret", "/acknowledge", "/decline", "/star", "/publish")
            )
            if method in ("post", "put") and not takes_no_body:
                assert "requestBody" in operation, f"{method} {path} has no documented body"
            assert operation.get("summary") or operation.get("description"), (method, path)


async def test_the_report_is_documented_in_its_three_content_types(stack: Stack) -> None:
    spec = await document(stack)
    report = spec["paths"]["/api/v1/incidents/{incident_id}/report"]["get"]
    content = report["responses"]["200"]["content"]
    assert content["application/json"]["schema"]["$ref"] == "#/components/schemas/IncidentReport"
    assert content["text/markdown"]["schema"] == {"type": "string"}
    assert content["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    assert [p["schema"].get("enum") for p in report["parameters"] if p["name"] == "format"] == [["json", "md", "pdf"]]


async def test_validation_errors_use_the_shared_shape(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        missing = await http.get("/api/v1/nowhere")
        wrong_method = await http.delete("/healthz")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "Not Found", "fields": {}}
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
