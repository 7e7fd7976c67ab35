"""Interactive dialogs (open, submit) and post action buttons."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.responses import Response
from mattermostautodriver.exceptions import InvalidOrMissingParameters, ResourceNotFound, UnknownMattermostError

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, FakeClock, Received, Receiver, make_driver, refused, unique

DIALOG: dict[str, Any] = {
    "callback_id": "declare",
    "title": "Declare an incident",
    "introduction_text": "Tell us what is broken",
    "submit_label": "Declare",
    "notify_on_cancel": True,
    "state": "signed-state",
    "elements": [
        {"display_name": "Title", "name": "title", "type": "text", "max_length": 100, "min_length": 3},
        {"display_name": "Summary", "name": "summary", "type": "textarea", "optional": True},
        {
            "display_name": "Severity",
            "name": "severity",
            "type": "select",
            "default": "2",
            "options": [{"text": "SEV1", "value": "1"}, {"text": "SEV2", "value": "2"}],
        },
        {"display_name": "Page on-call", "name": "page", "type": "bool", "default": "true"},
        {
            "display_name": "Scope",
            "name": "scope",
            "type": "radio",
            "options": [{"text": "Internal", "value": "int"}, {"text": "External", "value": "ext"}],
        },
    ],
}


@pytest.fixture
async def clocked(receiver: Receiver) -> AsyncIterator[tuple[StandIn, FakeClock, dict[str, Any]]]:
    """A stand-in on a fake clock, seeded, with ``/incident`` pointing at the receiver."""
    clock = FakeClock()
    instance = StandIn(clock=clock)
    await instance.start()
    world = instance.seed_demo(command_url=receiver.url("/command"))
    yield instance, clock, world
    await instance.stop()


async def trigger_for(standin: StandIn, world: dict[str, Any], receiver: Receiver, user: str = "bob") -> str:
    """Run ``/incident`` as ``user`` in Town Square and return the trigger id the integration got."""
    driver = make_driver(standin, world["users"][user]["token"])
    try:
        await driver.commands.execute_command(channel_id=world["channels"]["town-square"]["id"], command="/incident")
    finally:
        await driver.close()
    return receiver.requests_to("/command")[-1].form["trigger_id"][0]


async def test_open_dialog_records_it_for_the_user(
    clocked: tuple[StandIn, FakeClock, dict[str, Any]], receiver: Receiver
) -> None:
    standin, _, world = clocked
    trigger_id = await trigger_for(standin, world, receiver)
    async with httpx.AsyncClient(base_url=standin.url) as http:  # no session: the trigger id is the credential
        opened = await http.post(
            "/api/v4/actions/dialogs/open",
            json={"trigger_id": trigger_id, "url": receiver.url("/dialog"), "dialog": DIALOG},
        )
    assert opened.status_code == 200
    assert opened.json() == {"status": "OK"}
    [dialog] = standin.dialogs(user_id=world["users"]["bob"]["user"]["id"])
    assert dialog["dialog"] == DIALOG
    assert dialog["url"] == receiver.url("/dialog")
    assert dialog["trigger_id"] == trigger_id
    assert dialog["channel_id"] == world["channels"]["town-square"]["id"]
    assert dialog["team_id"] == world["team"]["id"]
    assert dialog["submitted"] is False


async def test_integration_opens_a_dialog_while_handling_the_command(
    clocked: tuple[StandIn, FakeClock, dict[str, Any]], receiver: Receiver
) -> None:
    standin, _, world = clocked

    async def open_then_answer(request: Received) -> Response:
        async with httpx.AsyncClient(base_url=standin.url) as http:
            payload = {"trigger_id": request.form["trigger_id"][0], "url": receiver.url("/dialog"), "dialog": DIALOG}
            opened = await http.post("/api/v4/actions/dialogs/open", json=payload)
        assert opened.status_code == 200
        return Response(b"", status_code=200)

    receiver.reply("/command", open_then_answer)
    await trigger_for(standin, world, receiver, user="carol")
    assert [d["dialog"]["callback_id"] for d in standin.dialogs(world["users"]["carol"]["user"]["id"])] == ["declare"]


async def test_expired_and_unknown_trigger_ids_are_refused(
    clocked: tuple[StandIn, FakeClock, dict[str, Any]], receiver: Receiver, connect: Connect
) -> None:
    standin, clock, world = clocked
    trigger_id = await trigger_for(standin, world, receiver)
    driver = connect(standin, world["bot"]["token"])
    clock.advance(31)
    with refused(InvalidOrMissingParameters, "interactive_message.decode_trigger_id.expired"):
        await driver.integration_actions.open_interactive_dialog(trigger_id, receiver.url("/dialog"), DIALOG)
    forged = base64.b64encode(f"{'a' * 26}:{'b' * 26}:{int(clock() * 1000)}:c2ln".encode()).decode()
    unknown_ids = {
        "not base64!": "interactive_message.decode_trigger_id.base64_decode_failed",
        base64.b64encode(b"only:three:parts").decode(): "interactive_message.decode_trigger_id.missing_data",
        forged: "interactive_message.decode_trigger_id.verify_signature_failed",
    }
    for unknown, error_id in unknown_ids.items():
        with refused(InvalidOrMissingParameters, error_id):
            await driver.integration_actions.open_interactive_dialog(unknown, receiver.url("/dialog"), DIALOG)
    assert standin.dialogs() == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"title": "A title that is far too long"}, "title"),
        ({"title": ""}, "title"),
        ({"elements": [{"display_name": "X", "name": "x", "type": "date-picker"}]}, "invalid element type"),
        ({"elements": [{"display_name": "X", "name": "x", "type": "text"}] * 2}, "duplicate dialog element"),
        ({"elements": [{"display_name": "", "name": "x", "type": "text"}]}, "display_name cannot be empty"),
        ({"elements": [{"display_name": "X", "name": "x", "type": "bool", "default": "yes"}]}, "bool"),
        (
            {"elements": [{"display_name": "X", "name": "x", "type": "select", "default": "9", "options": []}]},
            "doesn't exist in options",
        ),
        ({"elements": "not a list"}, "elements"),
    ],
)
async def test_invalid_dialogs_are_refused(
    clocked: tuple[StandIn, FakeClock, dict[str, Any]], receiver: Receiver, change: dict[str, Any], problem: str
) -> None:
    standin, _, world = clocked
    trigger_id = await trigger_for(standin, world, receiver)
    async with httpx.AsyncClient(base_url=standin.url) as http:
        refused = await http.post(
            "/api/v4/actions/dialogs/open",
            json={"trigger_id": trigger_id, "url": receiver.url("/dialog"), "dialog": {**DIALOG, **change}},
        )
    assert refused.status_code == 400
    assert refused.json()["id"] == "api.context.invalid_body_param.app_error"
    assert problem in refused.json()["detailed_error"]
    assert standin.dialogs() == []


async def test_submit_forwards_the_real_payload_and_relays_errors(
    clocked: tuple[StandIn, FakeClock, dict[str, Any]], receiver: Receiver, connect: Connect
) -> None:
    standin, _, world = clocked
    trigger_id = await trigger_for(standin, world, receiver)
    bob = connect(standin, world["users"]["bob"]["token"])
    await bob.integration_actions.open_interactive_dialog(trigger_id, receiver.url("/dialog"), DIALOG)
    channel_id = world["channels"]["town-square"]["id"]
    submission = {"title": "DB", "severity": "1", "page": True}
    receiver.reply_json("/dialog", {"errors": {"title": "Use at least 3 characters"}})
    answer = await bob.integration_actions.submit_interactive_dialog(
        url=receiver.url("/dialog"),
        channel_id=channel_id,
        team_id="ignored",
        submission=submission,
        callback_id="declare",
        state="signed-state",
        cancelled=False,
    )
    assert answer == {"errors": {"title": "Use at least 3 characters"}}
    [forwarded] = receiver.requests_to("/dialog")
    assert forwarded.headers["content-type"] == "application/json"
    assert "authorization" not in forwarded.headers
    assert forwarded.json == {
        "type": "dialog_submission",
        "callback_id": "declare",
        "state": "signed-state",
        "user_id": world["users"]["bob"]["user"]["id"],
        "channel_id": channel_id,
        "team_id": world["team"]["id"],
        "submission": submission,
        "cancelled": False,
    }
    assert standin.dialogs()[-1]["submitted"] is False  # the dialog stays open with field errors
    receiver.replies.pop("/dialog")  # an empty 200 body means success
    done = await bob.integration_actions.submit_interactive_dialog(
        url=receiver.url("/dialog"),
        channel_id=channel_id,
        submission={**submission, "title": "Database"},
        callback_id="declare",
        state="signed-state",
    )
    assert done == {}
    assert standin.dialogs()[-1]["submitted"] is True
    receiver.reply_json("/dialog", {}, status=500)
    with refused(InvalidOrMissingParameters, "api.post.do_action.action_integration.app_error"):
        await bob.integration_actions.submit_interactive_dialog(
            url=receiver.url("/dialog"), channel_id=channel_id, submission={}
        )


def button_post(receiver: Receiver) -> dict[str, Any]:
    return {
        "attachments": [
            {
                "text": "Incident inc-7 needs a commander",
                "actions": [
                    {
                        "id": "claim",
                        "name": "Claim",
                        "type": "button",
                        "integration": {
                            "url": receiver.url("/action"),
                            "context": {"incident": "inc-7", "sig": "secret"},
                        },
                    },
                    {"name": "Unnamed", "integration": {"url": receiver.url("/action"), "context": {"n": 2}}},
                ],
            }
        ]
    }


async def test_post_actions_forward_context_and_apply_the_reply(
    standin: StandIn, world: dict[str, Any], receiver: Receiver, connect: Connect
) -> None:
    channel = standin.create_channel(
        world["team"]["id"], unique("buttons"), "Buttons", creator_id=world["bot"]["user"]["id"]
    )
    standin.add_channel_member(channel["id"], world["users"]["carol"]["user"]["id"])
    bot = connect(standin, world["bot"]["token"])
    post = await bot.posts.create_post(channel_id=channel["id"], message="Who takes it?", props=button_post(receiver))
    client_actions = post["props"]["attachments"][0]["actions"]
    assert all("integration" not in a for a in client_actions)  # stripped from what clients receive
    assert client_actions[0]["id"] == "claim"
    assert len(client_actions[1]["id"]) == 26
    stored = standin.posts(channel["id"])[-1]["props"]["attachments"][0]["actions"][0]
    assert stored["integration"]["context"] == {"incident": "inc-7", "sig": "secret"}  # kept internally
    listed = await bot.posts.get_posts_for_channel(channel["id"])
    assert "integration" not in listed["posts"][post["id"]]["props"]["attachments"][0]["actions"][0]

    receiver.reply_json(
        "/action",
        {
            "update": {"message": "Carol is the commander", "props": {"attachments": [{"text": "claimed"}]}},
            "ephemeral_text": "You are now the commander",
        },
    )
    carol = connect(standin, world["users"]["carol"]["token"])
    answer = await carol.posts.do_post_action(post["id"], "claim")
    assert answer["status"] == "OK"
    assert len(answer["trigger_id"]) == 26
    [request] = receiver.requests_to("/action")
    carol_id = world["users"]["carol"]["user"]["id"]
    sent = request.json
    assert len(sent.pop("trigger_id")) > 26
    assert sent == {
        "user_id": carol_id,
        "user_name": "carol",
        "channel_id": channel["id"],
        "channel_name": channel["name"],
        "team_id": world["team"]["id"],
        "team_domain": "demo",
        "post_id": post["id"],
        "type": "button",
        "data_source": "",
        "context": {"incident": "inc-7", "sig": "secret"},
    }
    updated = await carol.posts.get_post(post["id"])
    assert updated["message"] == "Carol is the commander"
    assert updated["props"] == {"attachments": [{"text": "claimed"}]}
    [ephemeral] = standin.ephemeral_posts(user_id=carol_id, channel_id=channel["id"])
    assert ephemeral["post"]["message"] == "You are now the commander"
    assert ephemeral["post"]["root_id"] == post["id"]


async def test_a_button_in_a_direct_message_is_sent_without_a_team(
    standin: StandIn, world: dict[str, Any], receiver: Receiver, connect: Connect
) -> None:
    """A direct channel has no team: the integration gets empty ``team_id`` and ``team_domain``."""
    bot = connect(standin, world["bot"]["token"])
    carol_id = world["users"]["carol"]["user"]["id"]
    channel = await bot.channels.create_direct_channel(options=[world["bot"]["user"]["id"], carol_id])
    post = await bot.posts.create_post(channel_id=channel["id"], message="Done. Undo?", props=button_post(receiver))
    receiver.reply_json("/action", {"ephemeral_text": "Undone"})
    answer = await connect(standin, world["users"]["carol"]["token"]).posts.do_post_action(post["id"], "claim")
    assert answer["status"] == "OK"
    [request] = receiver.requests_to("/action")
    assert (request.json["channel_id"], request.json["team_id"], request.json["team_domain"]) == (channel["id"], "", "")
    [ephemeral] = standin.ephemeral_posts(user_id=carol_id, channel_id=channel["id"])
    assert ephemeral["post"]["message"] == "Undone"


async def test_post_action_failures(
    standin: StandIn, world: dict[str, Any], receiver: Receiver, connect: Connect
) -> None:
    channel = standin.create_channel(world["team"]["id"], unique("fail"), "Fail", creator_id=world["bot"]["user"]["id"])
    bot = connect(standin, world["bot"]["token"])
    post = await bot.posts.create_post(channel_id=channel["id"], message="x", props=button_post(receiver))
    with refused(ResourceNotFound, "api.post.do_action.action_id.app_error"):
        await bot.posts.do_post_action(post["id"], "nosuchaction")
    receiver.reply_json("/action", {}, status=500)
    with pytest.raises(UnknownMattermostError) as upstream:
        await bot.posts.do_post_action(post["id"], "claim")
    assert upstream.value.status_code == 502
    assert upstream.value.error_id == "api.post.do_action.action_integration.app_error"
    receiver.reply_json("/action", {}, status=404)
    with pytest.raises(InvalidOrMissingParameters):
        await bot.posts.do_post_action(post["id"], "claim")
    assert standin.posts(channel["id"])[-1]["message"] == "x"  # nothing applied
