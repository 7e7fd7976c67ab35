"""Every create endpoint answers 201, as the API reference says; reads answer 200; a lookup of
what does not exist answers 404 with the id the real server gives it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from mattermostautodriver import AsyncTypedDriver
from mattermostautodriver.exceptions import ResourceNotFound

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, refused, unique

_UNKNOWN_ID = "n" * 26  # a valid id that nothing has


async def test_creates_answer_201(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    team_id = world["team"]["id"]
    user = await alice.users.create_user(
        email=f"{unique('f')}@example.com", username=unique("frank"), password="longenough"
    )
    await alice.users.create_user_access_token(user["id"], description="status codes")
    team = await alice.teams.create_team(name=unique("status"), display_name="Status", type="O")
    await alice.teams.add_team_member(team["id"], user_id=user["id"])
    channel = await alice.channels.create_channel(team_id=team_id, name=unique("status"), display_name="S", type="O")
    await alice.channels.add_channel_member(channel["id"], user_id=world["users"]["bob"]["user"]["id"])
    await alice.posts.create_post(channel_id=channel["id"], message="201")
    await alice.posts.create_post_ephemeral(user_id=user["id"], post={"channel_id": channel["id"], "message": "e"})
    await alice.bots.create_bot(username=unique("statusbot"))
    await alice.commands.create_command(team_id=team_id, method="P", trigger=unique("status"), url="http://h/x")
    await alice.channels.get_channel(channel["id"])

    statuses = {(r["method"], r["path"]): r["status"] for r in standin.requests}
    assert statuses[("POST", "/api/v4/users")] == 201
    assert statuses[("POST", f"/api/v4/users/{user['id']}/tokens")] == 201
    assert statuses[("POST", "/api/v4/teams")] == 201
    assert statuses[("POST", f"/api/v4/teams/{team['id']}/members")] == 201
    assert statuses[("POST", "/api/v4/channels")] == 201
    assert statuses[("POST", f"/api/v4/channels/{channel['id']}/members")] == 201
    assert statuses[("POST", "/api/v4/posts")] == 201
    assert statuses[("POST", "/api/v4/posts/ephemeral")] == 201
    assert statuses[("POST", "/api/v4/bots")] == 201
    assert statuses[("POST", "/api/v4/commands")] == 201
    assert statuses[("GET", f"/api/v4/channels/{channel['id']}")] == 200


@pytest.mark.parametrize(
    ("username", "lookup", "error_id"),
    [
        ("carol", lambda mm: mm.teams.get_team(_UNKNOWN_ID), "app.team.get.find.app_error"),
        ("carol", lambda mm: mm.teams.get_team_by_name("nope"), "app.team.get_by_name.missing.app_error"),
        ("bob", lambda mm: mm.users.get_user(_UNKNOWN_ID), "app.user.missing_account.const"),
        ("bob", lambda mm: mm.users.get_user_by_username("nobody"), "app.user.get_by_username.app_error"),
        ("alice", lambda mm: mm.bots.get_bot(_UNKNOWN_ID), "store.sql_bot.get.missing.app_error"),
        ("bob", lambda mm: mm.roles.get_role_by_name("nope"), "app.role.get_by_name.app_error"),
    ],
    ids=["team", "team by name", "user", "user by username", "bot", "role by name"],
)
async def test_unknown_records_answer_404_with_the_servers_ids(
    standin: StandIn,
    world: dict[str, Any],
    connect: Connect,
    username: str,
    lookup: Callable[[AsyncTypedDriver], Awaitable[object]],
    error_id: str,
) -> None:
    with refused(ResourceNotFound, error_id):
        await lookup(connect(standin, world["users"][username]["token"]))
