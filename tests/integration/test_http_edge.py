"""The HTTP boundary (api.request_guard): body size limit, authentication before the body is read, content types,
405 with Allow, and an OpenAPI document that names every status a route answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from tests.harness import World
from tests.integration.slash_helpers import slash_form

SLASH_MAX_BODY_BYTES = 64 * 1024  # api.request_guard: a slash command form is a few kilobytes

LIMIT = 1_048_576  # MAX_BODY_BYTES's default, which the test stack keeps


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error", "message", "fields"}, body
    code: str = body["error"]
    return code


async def test_large_bodies_are_refused_413_before_they_are_read(world: World) -> None:
    before = len(world.standin.requests)
    async with httpx.AsyncClient(base_url=world.stack.api_url, timeout=30) as anonymous:
        huge = b"title: x\n" + b"#" * (10 * LIMIT)
        refused = await anonymous.post(
            f"/api/v1/playbooks/import?team_id={world.team_id}",
            content=huge,
            headers={"Content-Type": "application/yaml"},
        )
        assert refused.status_code == 413, refused.text
        assert error_code(refused) == "payload_too_large"
        # Nobody was identified for it: refused on its declared size alone.
        assert world.requests_since(before) == []

    api = world.api(world.alice)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"[" + b"1," * 16_000 + b"1]"

    streamed = await api.post("/api/v1/playbooks", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413, streamed.text
    assert error_code(streamed) == "payload_too_large"

    form = slash_form(
        world, world.alice, "help " + "x" * SLASH_MAX_BODY_BYTES, channel=world.town_square, trigger_id="t"
    )
    async with httpx.AsyncClient(base_url=world.stack.api_url, timeout=30) as http:
        slash = await http.post("/mattermost/slash", data=form)
    assert slash.status_code == 413
    assert error_code(slash) == "payload_too_large"


async def test_authentication_comes_before_the_body(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.stack.api_url, timeout=30) as anonymous:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
            response = await anonymous.post(
                "/api/v1/playbooks", content=b"{not json", headers={**headers, "Content-Type": "application/json"}
            )
            assert response.status_code == 401, (headers, response.text)
            assert error_code(response) == "unauthorized"
        form = slash_form(world, world.alice, "help", channel=world.town_square, trigger_id="t")
        wrong = await anonymous.post("/mattermost/slash", data=form, headers={"Authorization": "Token wrong-token"})
        assert wrong.status_code == 401
        assert error_code(wrong) == "unauthorized"


async def test_content_types_and_unreadable_json(world: World) -> None:
    api = world.api(world.alice)
    body = b'{"team_id": "%s", "title": "x", "checklists": [{"title": "a", "items": []}]}' % world.team_id.encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml", ""):
        response = await api.post("/api/v1/playbooks", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 415, (content_type, response.text)
        assert error_code(response) == "unsupported_media_type"
    imported = await api.post(
        f"/api/v1/playbooks/import?team_id={world.team_id}", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert imported.status_code == 415
    not_utf8 = await api.post(
        "/api/v1/playbooks", content=b'{"title": "\xff"}', headers={"Content-Type": "application/json"}
    )
    assert not_utf8.status_code == 422, not_utf8.text
    assert error_code(not_utf8) == "validation_error"


async def test_yaml_that_would_explode_is_refused_quickly(world: World) -> None:
    api = world.api(world.alice)
    url = f"/api/v1/playbooks/import?team_id={world.team_id}"
    yaml_type = {"Content-Type": "application/yaml"}
    deep = "title: x\nchecklists: " + "[" * 5000 + "]" * 5000 + "\n"
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
    )
    for text, expected in ((deep, "nested deeper than 20 levels"), (laughs, "aliases (*name) are not supported")):
        began = asyncio.get_running_loop().time()
        response = await api.post(url, content=text.encode(), headers=yaml_type)
        assert response.status_code == 422, response.text
        assert expected in response.json()["message"]
        assert asyncio.get_running_loop().time() - began < 5


async def test_405_names_the_allowed_methods(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.stack.api_url, timeout=30) as http:
        health = await http.delete("/healthz")
    incidents = await world.api(world.alice).patch("/api/v1/incidents", json={})
    assert health.status_code == 405
    assert health.headers["allow"] == "GET"
    assert error_code(health) == "method_not_allowed"
    assert incidents.status_code == 405
    assert incidents.headers["allow"] == "GET, POST"


async def test_every_status_a_route_answers_is_documented(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.stack.api_url, timeout=30) as http:
        spec = (await http.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "500" in responses, (method, path)
            if "requestBody" in operation:
                assert {"413", "415", "422"} <= set(responses), (method, path)
            if "422" in responses:
                assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
