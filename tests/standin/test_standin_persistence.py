"""The data file round trip and the idempotent demo seed."""

from __future__ import annotations

import json
from pathlib import Path

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, unique


async def test_world_survives_a_restart_from_the_data_file(tmp_path: Path, connect: Connect) -> None:
    data_file = tmp_path / "nested" / "mattermost-standin.json"
    first = StandIn(data_file=data_file)
    await first.start()
    world = first.seed_demo(command_url="http://127.0.0.1:9/command")
    bot = connect(first, world["bot"]["token"])
    channel = await bot.channels.create_channel(
        team_id=world["team"]["id"], name=unique("kept"), display_name="Kept", type="P"
    )
    post = await bot.posts.create_post(channel_id=channel["id"], message="remember me", props={"k": [1, 2]})
    extra_token = first.create_access_token(world["users"]["carol"]["user"]["id"], "extra")
    await first.stop()
    assert json.loads(data_file.read_text())["version"] == 1
    assert [p.name for p in data_file.parent.iterdir()] == [data_file.name]  # no temporary files left

    second = StandIn(data_file=data_file)
    await second.start()
    try:
        again = connect(second, world["bot"]["token"])
        assert (await again.channels.get_channel(channel["id"]))["name"] == channel["name"]
        assert (await again.posts.get_post(post["id"]))["props"] == {"k": [1, 2]}
        assert (await connect(second, extra_token).users.get_user("me"))["username"] == "carol"
        assert second.seed_demo(command_url="http://127.0.0.1:9/command") == world
        assert second.channel_members(channel["id"]) == [world["bot"]["user"]["id"]]
    finally:
        await second.stop()


async def test_changes_are_saved_shortly_without_a_stop(tmp_path: Path) -> None:
    data_file = tmp_path / "state.json"
    standin = StandIn(data_file=data_file)
    await standin.start()
    try:
        team = standin.create_team(unique("later"), "Later")
        await standin.wait_for(lambda: data_file.exists() and team["id"] in json.loads(data_file.read_text())["teams"])
    finally:
        await standin.stop()


def test_helpers_save_at_once_outside_an_event_loop(tmp_path: Path) -> None:
    data_file = tmp_path / "state.json"
    user = StandIn(data_file=data_file).create_user(unique("saved"))
    assert user["id"] in json.loads(data_file.read_text())["users"]


async def test_seed_demo_is_idempotent_and_follows_the_command_url() -> None:
    standin = StandIn(site_url="http://mattermost.test:8065/")
    first = standin.seed_demo(command_url="http://127.0.0.1:8000/mattermost/command")
    assert sorted(first["users"]) == ["alice", "bob", "carol", "dave"]
    assert first["users"]["alice"]["user"]["roles"] == "system_admin system_user"
    assert first["bot"]["user"]["is_bot"] is True
    assert first["bot"]["user"]["username"] == "incident-bot"
    assert first["command"]["trigger"] == "incident"
    assert first["command"]["auto_complete"] is True
    assert sorted(first["channels"]) == ["off-topic", "town-square"]
    assert first["channels"]["town-square"]["display_name"] == "Town Square"
    everyone = {p["user"]["id"] for p in first["users"].values()} | {first["bot"]["user"]["id"]}
    for channel in first["channels"].values():
        assert set(standin.channel_members(channel["id"])) == everyone
    assert standin.seed_demo(command_url="http://127.0.0.1:8000/mattermost/command") == first
    moved = standin.seed_demo(command_url="http://127.0.0.1:9000/mattermost/command")
    assert moved["command"]["url"] == "http://127.0.0.1:9000/mattermost/command"
    assert moved["command"]["token"] == first["command"]["token"]
    updated = standin.update_command(moved["command"]["id"], auto_complete_hint="[start|end]")
    assert updated["auto_complete_hint"] == "[start|end]"
    assert standin.url == "http://mattermost.test:8065"
