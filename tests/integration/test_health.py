"""Liveness and readiness."""

from __future__ import annotations

import httpx

from tests.harness import Stack, World


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


async def test_readyz_needs_the_bot_token_accepted_and_the_channel_and_post_routes(world: World) -> None:
    stack = world.stack  # the world puts the bot in a team, with channels to probe
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        assert (await http.get("/readyz")).status_code == 200
        for path in ("/api/v4/users/{user_id}/teams/{team_id}/channels", "/api/v4/channels/{channel_id}/posts"):
            stack.standin.add_fault("GET", path, status=500)
            try:
                down = await http.get("/readyz")
            finally:
                stack.standin.clear_faults()
            assert down.status_code == 503, path
            assert down.json()["checks"]["mattermost"].startswith("unreachable: Mattermost"), down.json()
        stack.standin.add_fault("GET", "/api/v4/users/{user_id}", status=401)
        try:
            refused = await http.get("/readyz")
        finally:
            stack.standin.clear_faults()
        assert refused.status_code == 503
        assert refused.json()["checks"]["mattermost"].startswith("refused: Mattermost refused to identify the bot")
        assert (await http.get("/readyz")).status_code == 200
