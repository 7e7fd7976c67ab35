"""Liveness and readiness."""

from __future__ import annotations

import httpx

from tests.harness import Stack


async def test_healthz(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_each_dependency(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"temporal": "ok", "mattermost": "ok"}}
        await stack.standin.stop()
        try:
            down = await http.get("/readyz")
        finally:
            await stack.standin.start(host="127.0.0.1", port=stack.standin.port)
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["temporal"] == "ok"
        assert body["checks"]["mattermost"].startswith("unreachable")
        assert (await http.get("/readyz")).status_code == 200
