"""Channels: creation rules, permissions, visibility and membership."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mattermostautodriver import AsyncTypedDriver
from mattermostautodriver.exceptions import InvalidOrMissingParameters, NotEnoughPermissions, ResourceNotFound

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, refused, unique


@pytest.fixture
def people(world: dict[str, Any]) -> dict[str, str]:
    """Usernames to their ids."""
    return {name: person["user"]["id"] for name, person in world["users"].items()}


@pytest.fixture
def bot(standin: StandIn, world: dict[str, Any], connect: Connect) -> AsyncTypedDriver:
    """The bot's driver: in the project, the bot makes the channels."""
    return connect(standin, world["bot"]["token"])


async def new_channel(bot: AsyncTypedDriver, world: dict[str, Any], type: str = "O") -> dict[str, Any]:
    """A fresh channel of the demo team, made through the API by ``bot``, its channel admin."""
    channel: dict[str, Any] = await bot.channels.create_channel(
        team_id=world["team"]["id"], name=unique("channel"), display_name="Channel", type=type
    )
    return channel


async def test_create_channel_answers_201_and_creator_becomes_channel_admin(
    standin: StandIn, world: dict[str, Any], bot: AsyncTypedDriver, people: dict[str, str]
) -> None:
    name = unique("incident")
    channel = await bot.channels.create_channel(
        team_id=world["team"]["id"], name=name, display_name="Incident 1", type="P", purpose="why", header="hdr"
    )
    assert (channel["name"], channel["type"], channel["purpose"], channel["header"]) == (name, "P", "why", "hdr")
    assert channel["creator_id"] == world["bot"]["user"]["id"]
    assert standin.channel_members(channel["id"]) == [world["bot"]["user"]["id"]]
    member = await bot.channels.get_channel_member(channel["id"], "me")
    assert member["roles"] == "channel_user channel_admin"
    async with httpx.AsyncClient(base_url=standin.url) as http:
        response = await http.post(
            "/api/v4/channels",
            json={"team_id": world["team"]["id"], "name": unique("raw"), "display_name": "Raw", "type": "O"},
            headers={"Authorization": f"Bearer {world['bot']['token']}"},
        )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "name",
    ["a", "9", "incident-2024-001", "with_underscore", "double__underscore", "x" * 64, "ends-", "a-b_c"],
)
async def test_valid_channel_names(standin: StandIn, world: dict[str, Any], connect: Connect, name: str) -> None:
    team = standin.create_team(unique("names"), "Names")
    standin.add_team_member(team["id"], world["bot"]["user"]["id"])
    channel = await connect(standin, world["bot"]["token"]).channels.create_channel(
        team_id=team["id"], name=name, display_name="Valid", type="O"
    )
    assert channel["name"] == name


@pytest.mark.parametrize(
    "name",
    ["Incident", "UPPER", "x" * 65, "has space", "dot.dot", "-leading", "_leading", "émoji", "a/b", "semi;colon"],
)
async def test_invalid_channel_names_are_rejected_not_normalized(
    standin: StandIn, world: dict[str, Any], connect: Connect, name: str
) -> None:
    with refused(InvalidOrMissingParameters, "model.channel.is_valid.1_or_more.app_error"):
        await connect(standin, world["bot"]["token"]).channels.create_channel(
            team_id=world["team"]["id"], name=name, display_name="Invalid", type="O"
        )
    assert standin.find_channel(world["team"]["id"], name.lower()) is None


async def test_channel_names_that_look_like_direct_messages_are_rejected(
    standin: StandIn, world: dict[str, Any], connect: Connect, people: dict[str, str]
) -> None:
    with refused(InvalidOrMissingParameters, "model.channel.is_valid.name.app_error"):
        await connect(standin, world["bot"]["token"]).channels.create_channel(
            team_id=world["team"]["id"], name=f"{people['bob']}__{people['carol']}", display_name="DM", type="O"
        )


async def test_duplicate_channel_name_answers_400_exists(world: dict[str, Any], bot: AsyncTypedDriver) -> None:
    name = unique("dup")
    await bot.channels.create_channel(team_id=world["team"]["id"], name=name, display_name="One", type="O")
    with refused(InvalidOrMissingParameters, "store.sql_channel.save_channel.exists.app_error"):
        await bot.channels.create_channel(team_id=world["team"]["id"], name=name, display_name="Two", type="P")


@pytest.mark.parametrize(
    ("field", "limit", "error_id"),
    [
        ("display_name", 64, "model.channel.is_valid.display_name.app_error"),
        ("header", 1024, "model.channel.is_valid.header.app_error"),
        ("purpose", 250, "model.channel.is_valid.purpose.app_error"),
    ],
)
async def test_size_limits_are_counted_in_runes(
    world: dict[str, Any], bot: AsyncTypedDriver, field: str, limit: int, error_id: str
) -> None:
    fields = {"team_id": world["team"]["id"], "display_name": "Limits", "type": "O"}
    at_limit = await bot.channels.create_channel(name=unique("limit"), **{**fields, field: "é" * limit})
    assert len(at_limit[field]) == limit
    with refused(InvalidOrMissingParameters, error_id):
        await bot.channels.create_channel(name=unique("limit"), **{**fields, field: "é" * (limit + 1)})


async def test_missing_display_name_and_team_are_invalid_parameters(
    world: dict[str, Any], bot: AsyncTypedDriver
) -> None:
    with refused(InvalidOrMissingParameters, "api.context.invalid_body_param.app_error"):
        await bot.channels.create_channel(team_id=world["team"]["id"], name=unique("c"), display_name="", type="O")
    with refused(InvalidOrMissingParameters, "model.channel.is_valid.type.app_error"):
        await bot.channels.create_channel(team_id=world["team"]["id"], name=unique("c"), display_name="T", type="X")


async def test_creating_channels_needs_team_membership(standin: StandIn, connect: Connect) -> None:
    team = standin.create_team(unique("other"), "Other")
    outsider = standin.create_user(unique("outsider"))
    with refused(NotEnoughPermissions, "api.context.permissions.app_error"):
        await connect(standin, standin.create_access_token(outsider["id"])).channels.create_channel(
            team_id=team["id"], name=unique("c"), display_name="C", type="O"
        )


async def test_channel_creation_follows_role_permissions(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    bob = connect(standin, world["users"]["bob"]["token"])
    role = await alice.roles.get_role_by_name("team_user")
    standin.set_role_permissions("team_user", [p for p in role["permissions"] if p != "create_private_channel"])
    try:
        with pytest.raises(NotEnoughPermissions):
            await bob.channels.create_channel(team_id=world["team"]["id"], name=unique("p"), display_name="P", type="P")
        public = await bob.channels.create_channel(
            team_id=world["team"]["id"], name=unique("o"), display_name="O", type="O"
        )
        assert public["type"] == "O"
        admin_private = await alice.channels.create_channel(
            team_id=world["team"]["id"], name=unique("p"), display_name="P", type="P"
        )
        assert admin_private["type"] == "P"
    finally:
        standin.set_role_permissions("team_user", role["permissions"])


async def test_private_channels_are_invisible_to_non_members(
    standin: StandIn, world: dict[str, Any], connect: Connect, people: dict[str, str]
) -> None:
    team_id = world["team"]["id"]
    secret = standin.create_channel(team_id, unique("secret"), "Secret", type="P", creator_id=people["bob"])
    carol = connect(standin, world["users"]["carol"]["token"])
    with refused(ResourceNotFound, "app.channel.get.existing.app_error"):
        await carol.channels.get_channel(secret["id"])
    with refused(ResourceNotFound, "app.channel.get_by_name.missing.app_error"):
        await carol.channels.get_channel_by_name(team_id, secret["name"])
    with pytest.raises(ResourceNotFound):
        await carol.channels.get_channel_members(secret["id"])
    with pytest.raises(ResourceNotFound):
        await carol.posts.get_posts_for_channel(secret["id"])
    bob = connect(standin, world["users"]["bob"]["token"])
    alice = connect(standin, world["users"]["alice"]["token"])
    assert (await bob.channels.get_channel(secret["id"]))["name"] == secret["name"]
    assert (await alice.channels.get_channel_by_name(team_id, secret["name"]))["id"] == secret["id"]


async def test_public_channels_are_readable_by_team_members_only(
    standin: StandIn, world: dict[str, Any], connect: Connect, people: dict[str, str]
) -> None:
    open_channel = standin.create_channel(world["team"]["id"], unique("open"), "Open", creator_id=people["bob"])
    carol = connect(standin, world["users"]["carol"]["token"])
    assert (await carol.channels.get_channel(open_channel["id"]))["id"] == open_channel["id"]
    outsider = standin.create_user(unique("outsider"))
    with pytest.raises(NotEnoughPermissions):
        await connect(standin, standin.create_access_token(outsider["id"])).channels.get_channel(open_channel["id"])
    with refused(ResourceNotFound, "app.channel.get_by_name.missing.app_error"):
        await carol.channels.get_channel_by_name(world["team"]["id"], "no-such-channel")


async def test_patch_channel(
    standin: StandIn, world: dict[str, Any], connect: Connect, bot: AsyncTypedDriver, people: dict[str, str]
) -> None:
    channel = await new_channel(bot, world)
    patched = await bot.channels.patch_channel(channel["id"], header="**SEV1** ongoing", display_name=" After ")
    assert (patched["header"], patched["display_name"], patched["name"]) == (
        "**SEV1** ongoing",
        "After",
        channel["name"],
    )
    assert patched["update_at"] >= channel["update_at"]
    with refused(InvalidOrMissingParameters, "model.channel.is_valid.purpose.app_error"):
        await bot.channels.patch_channel(channel["id"], purpose="p" * 251)
    with refused(InvalidOrMissingParameters, "api.channel.patch_update_channel.no_changes.app_error"):
        await bot.channels.patch_channel(channel["id"])
    town_square = standin.find_channel(world["team"]["id"], "town-square")
    assert town_square is not None
    with refused(InvalidOrMissingParameters, "api.channel.update_channel.tried.app_error"):
        await connect(standin, world["users"]["alice"]["token"]).channels.patch_channel(
            town_square["id"], name="renamed"
        )
    with pytest.raises(NotEnoughPermissions):
        await connect(standin, world["users"]["carol"]["token"]).channels.patch_channel(channel["id"], header="x")


async def test_adding_members(
    standin: StandIn, world: dict[str, Any], bot: AsyncTypedDriver, people: dict[str, str]
) -> None:
    channel = await new_channel(bot, world, type="P")
    member = await bot.channels.add_channel_member(channel["id"], user_id=people["bob"])
    assert (member["channel_id"], member["user_id"], member["roles"]) == (channel["id"], people["bob"], "channel_user")
    again = await bot.channels.add_channel_member(channel["id"], user_id=people["bob"])
    assert again == member  # adding a member again returns the membership
    several = await bot.channels.add_channel_member(channel["id"], user_ids=[people["carol"], people["dave"]])
    assert [m["user_id"] for m in several] == [people["carol"], people["dave"]]
    assert set(standin.channel_members(channel["id"])) == {
        world["bot"]["user"]["id"],
        people["bob"],
        people["carol"],
        people["dave"],
    }
    listed = await bot.channels.get_channel_members(channel["id"], per_page=2)
    assert len(listed) == 2


async def test_only_team_members_can_join_team_channels(
    standin: StandIn, world: dict[str, Any], bot: AsyncTypedDriver
) -> None:
    outsider = standin.create_user(unique("outsider"))
    channel = await new_channel(bot, world)
    with refused(ResourceNotFound, "app.team.get_member.missing.app_error"):
        await bot.channels.add_channel_member(channel["id"], user_id=outsider["id"])
    with pytest.raises(InvalidOrMissingParameters):
        await bot.channels.add_channel_member(channel["id"], user_id="not-an-id")


async def test_adding_others_needs_channel_permission(
    standin: StandIn, world: dict[str, Any], connect: Connect, people: dict[str, str]
) -> None:
    private = standin.create_channel(world["team"]["id"], unique("priv"), "Priv", type="P", creator_id=people["bob"])
    carol = connect(standin, world["users"]["carol"]["token"])
    with pytest.raises(ResourceNotFound):  # carol cannot see the channel at all
        await carol.channels.add_channel_member(private["id"], user_id=people["carol"])
    public = standin.create_channel(world["team"]["id"], unique("pub"), "Pub", creator_id=people["bob"])
    joined = await carol.channels.add_channel_member(public["id"], user_id=people["carol"])  # joining oneself
    assert joined["user_id"] == people["carol"]


async def test_get_and_remove_members(
    standin: StandIn, world: dict[str, Any], connect: Connect, bot: AsyncTypedDriver, people: dict[str, str]
) -> None:
    channel = await new_channel(bot, world)
    await bot.channels.add_channel_member(channel["id"], user_id=people["dave"])
    assert (await bot.channels.get_channel_member(channel["id"], people["dave"]))["user_id"] == people["dave"]
    assert await bot.channels.remove_user_from_channel(channel["id"], people["dave"]) == {"status": "OK"}
    with refused(ResourceNotFound, "app.channel.get_member.missing.app_error"):
        await bot.channels.get_channel_member(channel["id"], people["dave"])
    town_square = standin.find_channel(world["team"]["id"], "town-square")
    assert town_square is not None
    with refused(InvalidOrMissingParameters, "api.channel.remove.default.app_error"):
        await connect(standin, world["users"]["dave"]["token"]).channels.remove_user_from_channel(
            town_square["id"], "me"
        )
