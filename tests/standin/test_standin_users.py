"""Authentication, users and personal access tokens."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mattermostautodriver.exceptions import (
    InvalidOrMissingParameters,
    NoAccessTokenProvided,
    NotEnoughPermissions,
    ResourceNotFound,
)

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, refused, unique


async def test_ping_needs_no_session_and_answers_exact_json(standin: StandIn) -> None:
    async with httpx.AsyncClient(base_url=standin.url) as http:
        response = await http.get("/api/v4/system/ping")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "OK"}
    assert len(response.headers["x-request-id"]) == 26


async def test_missing_token_answers_401_session_expired(standin: StandIn) -> None:
    async with httpx.AsyncClient(base_url=standin.url) as http:
        response = await http.get("/api/v4/users/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["id"] == "api.context.session_expired.app_error"
    assert body["status_code"] == 401
    assert body["request_id"] == response.headers["x-request-id"]
    assert set(body) == {"id", "message", "detailed_error", "request_id", "status_code"}


async def test_bad_token_answers_401_through_the_driver(standin: StandIn, connect: Connect) -> None:
    with refused(NoAccessTokenProvided, "api.context.session_expired.app_error"):
        await connect(standin, "x" * 26).users.get_user("me")


async def test_token_header_and_query_forms_are_accepted(standin: StandIn, world: dict[str, Any]) -> None:
    token = world["users"]["bob"]["token"]
    async with httpx.AsyncClient(base_url=standin.url) as http:
        by_token = await http.get("/api/v4/users/me", headers={"Authorization": f"Token {token}"})
        by_query = await http.get("/api/v4/users/me", params={"access_token": token})
    assert by_token.json()["username"] == by_query.json()["username"] == "bob"


async def test_users_me_and_lookups(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    me = await bob.users.get_user("me")
    assert me["username"] == "bob"
    assert me["roles"] == "system_user"
    assert len(me["id"]) == 26
    assert me["id"].isalnum()
    assert me["id"] == me["id"].lower()
    assert me["create_at"] > 1_600_000_000_000  # milliseconds
    alice_id = world["users"]["alice"]["user"]["id"]
    alice = await bob.users.get_user(alice_id)
    assert alice["roles"] == "system_admin system_user"
    assert "notify_props" not in alice  # only for oneself and admins
    assert (await bob.users.get_user_by_username("carol"))["first_name"] == "Carol"
    by_ids = await bob.users.get_users_by_ids([alice_id, "n" * 26])
    assert [u["username"] for u in by_ids] == ["alice"]
    by_names = await bob.users.get_users_by_usernames(["dave", "nobody"])
    assert [u["username"] for u in by_names] == ["dave"]


async def test_admin_creates_users_with_201_and_model_rules(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    name = unique("erin")
    async with httpx.AsyncClient(base_url=standin.url) as http:
        response = await http.post(
            "/api/v4/users",
            json={"username": name.upper(), "email": f"{name}@example.com", "password": "longenough"},
            headers={"Authorization": f"Bearer {world['users']['alice']['token']}"},
        )
    assert response.status_code == 201
    assert response.json()["username"] == name  # usernames are lowercased
    with refused(InvalidOrMissingParameters, "app.user.save.username_exists.app_error"):
        await alice.users.create_user(email="other@example.com", username=name, password="longenough")
    with refused(InvalidOrMissingParameters, "model.user.is_valid.username.app_error"):
        await alice.users.create_user(email="x@example.com", username="1abc", password="longenough")
    with refused(InvalidOrMissingParameters, "model.user.is_valid.pwd.app_error"):
        await alice.users.create_user(email="y@example.com", username=unique("y"), password="short")


async def test_non_admins_cannot_create_users(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    with refused(NotEnoughPermissions, "api.user.create_user.no_open_server"):
        await bob.users.create_user(email="z@example.com", username=unique("z"), password="longenough")


async def test_list_users_in_team_and_channel_with_paging(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    team_id = world["team"]["id"]
    in_team = await bob.users.get_users(in_team=team_id)
    assert [u["username"] for u in in_team] == sorted(["alice", "bob", "carol", "dave", "incident-bot"])
    second_page = await bob.users.get_users(in_team=team_id, page=1, per_page=2)
    assert [u["username"] for u in second_page] == ["carol", "dave"]
    channel = standin.create_channel(team_id, unique("small"), "Small", creator_id=world["users"]["bob"]["user"]["id"])
    in_channel = await bob.users.get_users(in_channel=channel["id"])
    assert [u["username"] for u in in_channel] == ["bob"]
    outsider = standin.create_user(unique("out"))
    outsider_token = standin.create_access_token(outsider["id"])
    with pytest.raises(NotEnoughPermissions):
        await connect(standin, outsider_token).users.get_users(in_team=team_id)


async def test_access_tokens_created_201_and_revoked(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    carol_id = world["users"]["carol"]["user"]["id"]
    created = await alice.users.create_user_access_token(carol_id, description="for tests")
    assert set(created) >= {"id", "token", "user_id", "description", "is_active"}
    carol = connect(standin, created["token"])
    assert (await carol.users.get_user("me"))["username"] == "carol"
    assert await alice.users.revoke_user_access_token(created["id"]) == {"status": "OK"}
    with pytest.raises(NoAccessTokenProvided):
        await carol.users.get_user("me")
    with refused(ResourceNotFound, "app.user_access_token.get_by_user.app_error"):
        await alice.users.revoke_user_access_token(created["id"])


async def test_only_permitted_users_create_tokens(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    with refused(NotEnoughPermissions, "api.context.permissions.app_error"):
        await bob.users.create_user_access_token(world["users"]["bob"]["user"]["id"], description="mine")


async def test_teams_and_channels_of_a_user(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    teams = await bob.teams.get_teams_for_user("me")
    assert [t["name"] for t in teams] == ["demo"]
    assert teams[0]["invite_id"] == ""  # only team managers see it
    joined = await bob.channels.get_channels_for_team_for_user("me", world["team"]["id"])
    assert {"town-square", "off-topic"} <= {c["name"] for c in joined}
    with pytest.raises(NotEnoughPermissions):
        await bob.teams.get_teams_for_user(world["users"]["alice"]["user"]["id"])


async def test_unknown_routes_and_methods_answer_mattermost_404(standin: StandIn, world: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {world['users']['bob']['token']}"}
    async with httpx.AsyncClient(base_url=standin.url, headers=headers) as http:
        unknown = await http.get("/api/v4/no/such/route")
        wrong_method = await http.delete("/api/v4/system/ping")
    for response in (unknown, wrong_method):
        assert response.status_code == 404
        assert response.json()["id"] == "api.context.404.app_error"
