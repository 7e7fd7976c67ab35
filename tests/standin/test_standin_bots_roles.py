"""Bots, their tokens, and roles."""

from __future__ import annotations

from typing import Any

import pytest
from mattermostautodriver.exceptions import NotEnoughPermissions

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, unique


async def test_admin_creates_bots_with_201(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    name = unique("pager")
    bot = await alice.bots.create_bot(username=name, display_name="Pager", description="pages people")
    assert set(bot) == {
        "user_id",
        "username",
        "display_name",
        "description",
        "owner_id",
        "create_at",
        "update_at",
        "delete_at",
    }
    assert (bot["username"], bot["owner_id"]) == (name, world["users"]["alice"]["user"]["id"])
    user = await alice.users.get_user(bot["user_id"])
    assert user["is_bot"] is True
    assert user["email"] == f"{name}@localhost"
    assert user["roles"] == "system_user"
    assert (await alice.bots.get_bot(bot["user_id"]))["username"] == name
    assert name in {b["username"] for b in await alice.bots.get_bots(per_page=200)}


async def test_regular_users_cannot_create_or_read_bots(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    with pytest.raises(NotEnoughPermissions):
        await bob.bots.create_bot(username=unique("nope"))
    with pytest.raises(NotEnoughPermissions):
        await bob.bots.get_bot(world["bot"]["user"]["id"])


async def test_bot_tokens_authenticate_the_bot(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    bot_user, token = standin.create_bot(
        unique("helper"), display_name="Helper", owner_id=world["users"]["alice"]["user"]["id"]
    )
    me = await connect(standin, token).users.get_user("me")
    assert me["id"] == bot_user["id"]
    assert me["is_bot"] is True
    alice = connect(standin, world["users"]["alice"]["token"])
    second = await alice.users.create_user_access_token(bot_user["id"], description="second token")
    assert (await connect(standin, second["token"]).users.get_user("me"))["id"] == bot_user["id"]


async def test_roles_by_name_and_names(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    team_user = await bob.roles.get_role_by_name("team_user")
    assert {"create_public_channel", "create_private_channel"} <= set(team_user["permissions"])
    assert team_user["scheme_managed"] is True
    assert len(team_user["id"]) == 26
    roles = await bob.roles.get_roles_by_names(["system_admin", "channel_user", "nope"])
    assert [r["name"] for r in roles] == ["channel_user", "system_admin"]
    by_name = {r["name"]: r for r in roles}
    assert "manage_system" in by_name["system_admin"]["permissions"]
    assert {"create_post", "manage_private_channel_members"} <= set(by_name["channel_user"]["permissions"])


async def test_only_admins_patch_roles(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    bob = connect(standin, world["users"]["bob"]["token"])
    role = await alice.roles.get_role_by_name("system_user")
    with pytest.raises(NotEnoughPermissions):
        await bob.roles.patch_role(role["id"], permissions=[])
    patched = await alice.roles.patch_role(role["id"], permissions=[*role["permissions"], "create_post_ephemeral"])
    try:
        assert "create_post_ephemeral" in patched["permissions"]
        town_square = standin.find_channel(world["team"]["id"], "town-square")
        assert town_square is not None
        sent = await bob.posts.create_post_ephemeral(
            user_id=world["users"]["carol"]["user"]["id"], post={"channel_id": town_square["id"], "message": "psst"}
        )
        assert sent["message"] == "psst"
    finally:
        await alice.roles.patch_role(role["id"], permissions=role["permissions"])


async def test_bots_post_ephemerally_only_when_given_the_admin_role(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    town_square = standin.find_channel(world["team"]["id"], "town-square")
    assert town_square is not None
    post = {"channel_id": town_square["id"], "message": "only you"}
    carol_id = world["users"]["carol"]["user"]["id"]
    with pytest.raises(NotEnoughPermissions):
        await connect(standin, world["bot"]["token"]).posts.create_post_ephemeral(user_id=carol_id, post=post)
    owner_id = world["users"]["alice"]["user"]["id"]
    admin_bot, token = standin.create_bot(unique("adminbot"), owner_id=owner_id, roles="system_admin system_user")
    assert admin_bot["roles"] == "system_admin system_user"
    sent = await connect(standin, token).posts.create_post_ephemeral(user_id=carol_id, post=post)
    assert sent["user_id"] == admin_bot["id"]
