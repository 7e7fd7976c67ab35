"""Custom slash commands: registration, execution end to end, replies and ``response_url``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi.responses import PlainTextResponse
from mattermostautodriver.exceptions import (
    InvalidOrMissingParameters,
    NotEnoughPermissions,
    ResourceNotFound,
    UnknownMattermostError,
)

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, FakeClock, Receiver, refused, unique


@pytest.fixture
def town_square(standin: StandIn, world: dict[str, Any]) -> dict[str, Any]:
    channel = standin.find_channel(world["team"]["id"], "town-square")
    assert channel is not None
    return channel


def register(standin: StandIn, world: dict[str, Any], receiver: Receiver, path: str = "/command") -> dict[str, Any]:
    return standin.register_command(
        world["team"]["id"],
        trigger=unique("cmd"),
        url=receiver.url(path),
        creator_id=world["users"]["alice"]["user"]["id"],
    )


async def test_register_commands_through_the_api(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    team_id = world["team"]["id"]
    trigger = unique("Deploy")
    command = await alice.commands.create_command(team_id=team_id, method="P", trigger=trigger, url="http://h/x")
    assert command["trigger"] == trigger.lower()
    assert len(command["token"]) == 26
    assert command["creator_id"] == world["users"]["alice"]["user"]["id"]
    listed = await alice.commands.list_commands(team_id=team_id)
    assert command["token"] in {c["token"] for c in listed}
    for taken in (trigger, "echo"):
        with refused(InvalidOrMissingParameters, "api.command.duplicate_trigger.app_error"):
            await alice.commands.create_command(team_id=team_id, method="P", trigger=taken, url="http://h/x")
    with refused(InvalidOrMissingParameters, "model.command.is_valid.url_http.app_error"):
        await alice.commands.create_command(team_id=team_id, method="P", trigger=unique("u"), url="ftp://h/x")
    bob = connect(standin, world["users"]["bob"]["token"])
    with pytest.raises(NotEnoughPermissions):
        await bob.commands.create_command(team_id=team_id, method="P", trigger=unique("b"), url="http://h/x")
    visible = await bob.commands.list_commands(team_id=team_id)
    assert world["command"]["trigger"] in {c["trigger"] for c in visible}  # autocomplete commands
    assert all(c["token"] == "" and c["url"] == "" for c in visible)


async def test_execute_posts_the_real_form_to_the_integration(
    standin: StandIn, world: dict[str, Any], connect: Connect, receiver: Receiver, town_square: dict[str, Any]
) -> None:
    command = register(standin, world, receiver)
    receiver.reply_json("/command", {"text": "Working on it"})
    people = {name: person["user"]["id"] for name, person in world["users"].items()}
    off_topic = standin.find_channel(world["team"]["id"], "off-topic")
    assert off_topic is not None
    bob = connect(standin, world["users"]["bob"]["token"])

    reply = await bob.commands.execute_command(
        channel_id=town_square["id"], command=f"/{command['trigger'].upper()}  start DB down @carol. ~off-topic"
    )

    [request] = receiver.requests_to("/command")
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == f"Token {command['token']}"
    assert request.headers["accept"] == "application/json"
    fields = parse_qsl(request.body.decode(), keep_blank_values=True)
    assert [key for key, _ in fields] == sorted(key for key, _ in fields)  # Go's url.Values.Encode order
    form = request.form
    hook_id = form["response_url"][0].rsplit("/", 1)[1]
    assert form == {
        "token": [command["token"]],
        "team_id": [world["team"]["id"]],
        "team_domain": ["demo"],
        "channel_id": [town_square["id"]],
        "channel_name": ["town-square"],
        "user_id": [people["bob"]],
        "user_name": ["bob"],
        "command": [f"/{command['trigger']}"],
        "text": [" start DB down @carol. ~off-topic"],
        "trigger_id": form["trigger_id"],
        "root_id": [""],
        "response_url": [f"{standin.url}/hooks/commands/{hook_id}"],
        "user_mentions": ["carol"],
        "user_mentions_ids": [people["carol"]],
        "channel_mentions": ["off-topic"],
        "channel_mentions_ids": [off_topic["id"]],
    }
    assert len(hook_id) == 26
    client_trigger_id, user_id, _, _ = base64.b64decode(form["trigger_id"][0]).decode().split(":")
    assert user_id == people["bob"]
    assert reply["trigger_id"] == client_trigger_id
    assert (reply["response_type"], reply["text"]) == ("", "Working on it")
    [shown] = standin.ephemeral_posts(user_id=people["bob"], channel_id=town_square["id"])[-1:]
    assert shown["post"]["message"] == "Working on it"
    assert shown["post"]["props"]["from_webhook"] == "true"


async def test_in_channel_and_extra_responses(
    standin: StandIn, world: dict[str, Any], connect: Connect, receiver: Receiver, town_square: dict[str, Any]
) -> None:
    command = register(standin, world, receiver)
    receiver.reply_json(
        "/command",
        {
            "response_type": "in_channel",
            "text": "Incident declared",
            "props": {"incident": "inc-7"},
            "attachments": [{"text": "details"}],
            "goto_location": "http://example.com/incident/7",
            "extra_responses": [{"text": "Only you: your role is commander"}],
        },
    )
    carol_id = world["users"]["carol"]["user"]["id"]
    reply = await connect(standin, world["users"]["carol"]["token"]).commands.execute_command(
        channel_id=town_square["id"], command=f"/{command['trigger']} declare"
    )
    assert reply["goto_location"] == "http://example.com/incident/7"
    post = standin.posts(town_square["id"])[-1]
    assert (post["message"], post["user_id"]) == ("Incident declared", carol_id)  # posted as the user
    assert post["props"] == {"incident": "inc-7", "from_webhook": "true", "attachments": [{"text": "details"}]}
    assert standin.ephemeral_posts(user_id=carol_id)[-1]["post"]["message"] == "Only you: your role is commander"


async def test_plain_text_replies_are_ephemeral_text(
    standin: StandIn, world: dict[str, Any], connect: Connect, receiver: Receiver, town_square: dict[str, Any]
) -> None:
    command = register(standin, world, receiver)
    receiver.reply("/command", PlainTextResponse("plain answer"))
    dave_id = world["users"]["dave"]["user"]["id"]
    reply = await connect(standin, world["users"]["dave"]["token"]).commands.execute_command(
        channel_id=town_square["id"], command=f"/{command['trigger']}"
    )
    assert reply["text"] == "plain answer"
    assert receiver.requests_to("/command")[0].form["text"] == [""]
    assert standin.ephemeral_posts(user_id=dave_id)[-1]["post"]["message"] == "plain answer"


async def test_refusals_before_calling_the_integration(
    standin: StandIn, world: dict[str, Any], connect: Connect, receiver: Receiver, town_square: dict[str, Any]
) -> None:
    command = register(standin, world, receiver)
    bob = connect(standin, world["users"]["bob"]["token"])
    with refused(ResourceNotFound, "api.command.execute_command.not_found.app_error"):
        await bob.commands.execute_command(channel_id=town_square["id"], command="/no-such-command now")
    with refused(InvalidOrMissingParameters, "api.command.execute_command.start.app_error"):
        await bob.commands.execute_command(channel_id=town_square["id"], command="incident")
    elsewhere = standin.create_channel(
        world["team"]["id"], unique("private"), "Private", type="P", creator_id=world["users"]["alice"]["user"]["id"]
    )
    with pytest.raises(NotEnoughPermissions):  # the executing user must be a member
        await bob.commands.execute_command(channel_id=elsewhere["id"], command=f"/{command['trigger']}")
    assert receiver.requests_to("/command") == []


async def test_integration_failures_answer_500_and_show_an_ephemeral_error(
    standin: StandIn, world: dict[str, Any], connect: Connect, receiver: Receiver, town_square: dict[str, Any]
) -> None:
    command = register(standin, world, receiver)
    receiver.reply_json("/command", {"error": "boom"}, status=500)
    bob_id = world["users"]["bob"]["user"]["id"]
    bob = connect(standin, world["users"]["bob"]["token"])
    with pytest.raises(UnknownMattermostError) as failed:
        await bob.commands.execute_command(channel_id=town_square["id"], command=f"/{command['trigger']} x")
    assert failed.value.status_code == 500
    assert failed.value.error_id == "api.command.execute_command.failed_resp.app_error"
    assert "returned response 500" in standin.ephemeral_posts(user_id=bob_id)[-1]["post"]["message"]
    unreachable = standin.register_command(
        world["team"]["id"], trigger=unique("down"), url="http://127.0.0.1:9/down", creator_id=bob_id
    )
    with refused(UnknownMattermostError, "api.command.execute_command.failed.app_error"):
        await bob.commands.execute_command(channel_id=town_square["id"], command=f"/{unreachable['trigger']}")


async def test_get_commands_send_the_fields_as_query(
    standin: StandIn, world: dict[str, Any], connect: Connect, receiver: Receiver, town_square: dict[str, Any]
) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    command = await alice.commands.create_command(
        team_id=world["team"]["id"], method="G", trigger=unique("get"), url=receiver.url("/get?fixed=1")
    )
    await alice.commands.execute_command(channel_id=town_square["id"], command=f"/{command['trigger']} hello")
    [request] = receiver.requests_to("/get")
    assert request.method == "GET"
    assert request.body == b""
    assert request.query["fixed"] == ["1"]
    assert request.query["text"] == ["hello"]


async def test_response_url_accepts_five_replies_then_refuses(
    standin: StandIn, world: dict[str, Any], connect: Connect, receiver: Receiver, town_square: dict[str, Any]
) -> None:
    command = register(standin, world, receiver)
    root = standin.create_channel(
        world["team"]["id"], unique("thread"), "Thread", creator_id=world["users"]["bob"]["user"]["id"]
    )
    bob = connect(standin, world["users"]["bob"]["token"])
    root_post = await bob.posts.create_post(channel_id=root["id"], message="root")
    async with httpx.AsyncClient(base_url=standin.url) as http:
        executed = await http.post(
            "/api/v4/commands/execute",
            json={"channel_id": root["id"], "command": f"/{command['trigger']}", "root_id": root_post["id"]},
            headers={"Authorization": f"Bearer {world['users']['bob']['token']}"},
        )
        assert executed.status_code == 200
        [request] = receiver.requests_to("/command")
        assert request.form["root_id"] == [root_post["id"]]
        response_url = request.form["response_url"][0]
        for n in range(5):
            answer = await http.post(response_url, json={"response_type": "in_channel", "text": f"update {n}"})
            assert (answer.status_code, answer.text) == (200, "ok")
        refused = await http.post(response_url, json={"text": "one too many"})
        unknown = await http.post(f"{standin.url}/hooks/commands/{'n' * 26}", json={"text": "x"})
    assert refused.status_code == 400
    assert refused.json()["id"] == "app.command_webhook.try_use.invalid"
    assert unknown.status_code == 404
    updates = [p for p in standin.posts(root["id"]) if p["message"].startswith("update")]
    assert [p["message"] for p in updates] == [f"update {n}" for n in range(5)]
    assert all(p["root_id"] == root_post["id"] and p["user_id"] == world["users"]["bob"]["user"]["id"] for p in updates)


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[StandIn, FakeClock]]:
    clock = FakeClock()
    instance = StandIn(clock=clock)
    await instance.start()
    yield instance, clock
    await instance.stop()


async def test_response_url_expires_after_thirty_minutes(
    clocked: tuple[StandIn, FakeClock], connect: Connect, receiver: Receiver
) -> None:
    standin, clock = clocked
    world = standin.seed_demo(command_url=receiver.url("/command"))
    town_square = world["channels"]["town-square"]
    await connect(standin, world["users"]["bob"]["token"]).commands.execute_command(
        channel_id=town_square["id"], command="/incident"
    )
    response_url = receiver.requests_to("/command")[0].form["response_url"][0]
    async with httpx.AsyncClient() as http:
        clock.advance(29 * 60)
        assert (await http.post(response_url, json={"text": "still fine"})).status_code == 200
        clock.advance(2 * 60)
        expired = await http.post(response_url, json={"text": "too late"})
    assert expired.status_code == 404
    assert expired.json()["id"] == "app.command_webhook.get.missing"
