"""Teams and team membership."""

from __future__ import annotations

from typing import Any

import pytest
from mattermostautodriver.exceptions import InvalidOrMissingParameters, NotEnoughPermissions, ResourceNotFound

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, refused, unique


async def test_create_team_answers_201_with_default_channels_and_creator_as_admin(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    name = unique("team")
    team = await bob.teams.create_team(name=name, display_name="Ops", type="O")
    assert team["name"] == name
    assert team["type"] == "O"
    assert team["invite_id"]  # the creator manages the team
    member = await bob.teams.get_team_member(team["id"], "me")
    assert member["roles"] == "team_user team_admin"
    names = {c["name"] for c in standin.channels(team["id"])}
    assert names == {"town-square", "off-topic"}
    town_square = standin.find_channel(team["id"], "town-square")
    assert town_square is not None
    assert town_square["display_name"] == "Town Square"
    assert world["users"]["bob"]["user"]["id"] in standin.channel_members(town_square["id"])


async def test_team_rules(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    bob = connect(standin, world["users"]["bob"]["token"])
    for name, error_id in (
        ("Upper", "model.team.is_valid.characters.app_error"),
        ("a", "model.team.is_valid.url.app_error"),
        ("api", "model.team.is_valid.reserved.app_error"),
        ("demo", "app.team.save.existing.app_error"),
    ):
        with refused(InvalidOrMissingParameters, error_id):
            await bob.teams.create_team(name=name, display_name="X", type="O")


async def test_get_team_by_id_and_name(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    carol = connect(standin, world["users"]["carol"]["token"])
    team_id = world["team"]["id"]
    assert (await carol.teams.get_team(team_id))["name"] == "demo"
    assert (await carol.teams.get_team_by_name("demo"))["id"] == team_id


async def test_non_members_cannot_see_invite_only_teams(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    team = standin.create_team(unique("closed"), "Closed", type="I")
    with pytest.raises(NotEnoughPermissions):
        await connect(standin, world["users"]["bob"]["token"]).teams.get_team(team["id"])


async def test_team_members_add_list_and_get(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    owner = standin.create_user(unique("owner"))
    team = standin.create_team(unique("squad"), "Squad")
    standin.add_team_member(team["id"], owner["id"], roles="team_user team_admin")
    newcomer = standin.create_user(unique("new"))
    driver = connect(standin, standin.create_access_token(owner["id"]))
    member = await driver.teams.add_team_member(team["id"], user_id=newcomer["id"])
    assert member["user_id"] == newcomer["id"]
    assert member["roles"] == "team_user"
    again = await driver.teams.add_team_member(team["id"], user_id=newcomer["id"])
    assert again == member
    off_topic = standin.find_channel(team["id"], "off-topic")
    assert off_topic is not None
    assert newcomer["id"] in standin.channel_members(off_topic["id"])
    listed = await driver.teams.get_team_members(team["id"])
    assert {m["user_id"] for m in listed} == {owner["id"], newcomer["id"]}
    with refused(ResourceNotFound, "app.team.get_member.missing.app_error"):
        await driver.teams.get_team_member(team["id"], world["users"]["bob"]["user"]["id"])


async def test_adding_team_members_needs_permission(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    team = standin.create_team(unique("locked"), "Locked")
    member = standin.create_user(unique("member"))
    standin.add_team_member(team["id"], member["id"])
    outsider = standin.create_user(unique("outsider"))
    driver = connect(standin, standin.create_access_token(member["id"]))
    role = await connect(standin, world["users"]["alice"]["token"]).roles.get_role_by_name("team_user")
    standin.set_role_permissions("team_user", [p for p in role["permissions"] if p != "add_user_to_team"])
    try:
        with refused(NotEnoughPermissions, "api.context.permissions.app_error"):
            await driver.teams.add_team_member(team["id"], user_id=outsider["id"])
    finally:
        standin.set_role_permissions("team_user", role["permissions"])
    assert (await driver.teams.add_team_member(team["id"], user_id=outsider["id"]))["user_id"] == outsider["id"]
