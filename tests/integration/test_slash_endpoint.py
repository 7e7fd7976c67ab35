"""`POST /mattermost/slash`: Mattermost's protocol, token checks, malformed requests."""

from __future__ import annotations

import httpx

from tests.harness import World


def form(world: World, **overrides: str) -> dict[str, str]:
    fields = {
        "token": world.command["token"],
        "team_id": world.team_id,
        "team_domain": world.team["name"],
        "channel_id": world.town_square["id"],
        "channel_name": "town-square",
        "user_id": world.alice.id,
        "user_name": world.alice.username,
        "command": "/incident",
        "text": "help",
        "trigger_id": "trigger",
        "response_url": f"{world.standin.url}/hooks/commands/nothing",
    }
    fields.update(overrides)
    return fields


async def test_help_through_mattermost(world: World) -> None:
    reply = await world.slash(world.alice, "help")
    assert reply["response_type"] == "ephemeral"
    assert "/incident start" in reply["text"]
    ephemeral = world.standin.ephemeral_posts(user_id=world.alice.id)
    assert ephemeral[-1]["post"]["message"] == reply["text"]


async def test_unknown_subcommand_answers_with_help(world: World) -> None:
    reply = await world.slash(world.alice, "frobnicate now")
    assert reply["text"].startswith("Unknown command `frobnicate`.")
    assert "| Command | What it does |" in reply["text"]


async def test_empty_command_shows_help(world: World) -> None:
    reply = await world.slash(world.alice, "")
    assert "| Command | What it does |" in reply["text"]


async def test_token_in_header_only(world: World) -> None:
    fields = form(world)
    del fields["token"]
    async with httpx.AsyncClient(base_url=world.stack.api_url) as http:
        response = await http.post(
            "/mattermost/slash", data=fields, headers={"Authorization": f"Token {world.command['token']}"}
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "| Command |" in response.json()["text"]


async def test_wrong_or_missing_token_is_refused_without_effect(world: World) -> None:
    before = len(world.standin.requests)
    async with httpx.AsyncClient(base_url=world.stack.api_url) as http:
        wrong = await http.post("/mattermost/slash", data=form(world, token="not-the-token", text="start x y"))
        missing_fields = form(world, text="start x y")
        del missing_fields["token"]
        missing = await http.post("/mattermost/slash", data=missing_fields)
        mismatched = await http.post(
            "/mattermost/slash", data=form(world), headers={"Authorization": "Token someone-elses"}
        )
    for response in (wrong, missing, mismatched):
        assert response.status_code == 401
        assert response.json() == {
            "error": "unauthorized",
            "message": "Invalid or missing slash command token.",
            "fields": {},
        }
    # Nothing reached Mattermost: no user lookup, no post, no channel.
    assert world.requests_since(before) == []


async def test_malformed_requests_get_clear_4xx(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.stack.api_url) as http:
        as_json = await http.post("/mattermost/slash", json=form(world))
        no_user = form(world)
        del no_user["user_id"]
        missing = await http.post("/mattermost/slash", data=no_user)
        garbage = await http.post(
            "/mattermost/slash",
            content=b"\xff\xfe=\x00",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        unbalanced = await http.post("/mattermost/slash", data=form(world, text='start "Database outage'))
    assert as_json.status_code == 415
    assert "application/x-www-form-urlencoded" in as_json.json()["message"]
    assert missing.status_code == 400
    assert "user_id" in missing.json()["message"]
    assert garbage.status_code == 400
    assert unbalanced.status_code == 200
    assert unbalanced.json()["text"].startswith("Unbalanced quotes")
