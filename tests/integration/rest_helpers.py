"""Our REST API over HTTP, as its clients call it (helpers shared by the `/api/v1` test files)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import World


async def unauthenticated(world: World, path: str, authorization: str | None = None) -> dict[str, Any]:
    """GET `path` for the world's team with no Authorization header, or with `authorization` as
    given; the API must answer 401: the error it answers with."""
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(base_url=world.stack.api_url, headers=headers, timeout=30) as http:
        response = await http.get(path, params={"team_id": world.team_id})
    assert response.status_code == 401, (path, authorization, response.text)
    error: dict[str, Any] = response.json()
    return error
