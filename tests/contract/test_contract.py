"""What this project relies on from Mattermost, through the project's own gateway.

Each test calls `mattermost_client.gateway.Mattermost` (the only code that talks to Mattermost)
the way the workers and the API do, and checks the fields the project reads and how
failures are classified (retryable or not, not found, the error ids it branches on). It
runs against the stand-in and, with `make test-mattermost`, against a real server.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest
from mattermostautodriver.exceptions import MattermostError

from mattermost_client.gateway import CHANNEL_EXISTS, Mattermost, MattermostFailure
from tests.contract.conftest import HOW_TO_RUN, Target, server_configured


async def test_the_configured_real_mattermost_answers() -> None:
    """Without a real server, this is the one line that says how to run the suite against one."""
    if not server_configured():
        pytest.skip(HOW_TO_RUN)
    gateway = Mattermost(os.environ["MATTERMOST_URL"], os.environ["MATTERMOST_BOT_TOKEN"])
    try:
        assert (await gateway.ping())["status"] == "OK"
    finally:
        await gateway.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def fake_id() -> str:
    """Well formed, belongs to nothing."""
    return secrets.token_hex(13)


async def new_channel(target: Target, *, public: bool, name: str | None = None) -> dict[str, Any]:
    name = name or unique("contract")
    channel = await target.gateway.create_channel(
        team_id=target.team_id,
        name=name,
        display_name=f"Contract {name[-10:]}",
        purpose="Contract test",
        header="Opened by the contract suite",
        public=public,
    )
    target.created_channels.append(channel["id"])
    return channel


def refused(failure: MattermostFailure, status: int) -> None:
    """A refusal the project gives up on at once (an activity fails instead of retrying)."""
    assert failure.status == status
    assert not failure.retryable
    assert failure.error_id, "Mattermost errors carry an id"


async def test_tokens_identify_the_bot_and_the_user(target: Target) -> None:
    assert target.bot["is_bot"] is True
    assert {"id", "username", "roles"} <= set(target.bot)
    assert {"id", "username", "roles", "first_name", "last_name", "nickname"} <= set(target.user)
    assert "system_user" in target.user["roles"].split()
    assert (await target.gateway.ping())["status"] == "OK"
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.user_for_token("x" * 26)
    refused(error.value, 401)


async def test_users_by_id_by_name_and_in_bulk(target: Target) -> None:
    user = target.user
    by_id = await target.gateway.get_user(user["id"])
    assert by_id["username"] == user["username"]
    by_name = await target.gateway.get_user_by_username(user["username"])
    assert by_name["id"] == user["id"]
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.get_user_by_username(unique("nobody"))
    refused(error.value, 404)
    assert error.value.not_found
    many = await target.gateway.get_users_by_ids([user["id"], target.bot["id"], fake_id()])
    assert {u["id"] for u in many} == {user["id"], target.bot["id"]}


async def test_team_and_team_membership_with_roles(target: Target) -> None:
    team = await target.gateway.get_team(target.team_id)
    assert {"id", "name", "display_name", "type"} <= set(team)
    member = await target.gateway.team_member(target.team_id, target.user["id"])
    assert member is not None
    assert member["user_id"] == target.user["id"]
    assert "team_user" in member["roles"].split()
    assert await target.gateway.team_member(target.team_id, fake_id()) is None
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.get_team(fake_id())
    assert error.value.status in (403, 404)
    assert not error.value.retryable


async def test_roles_give_their_permissions(target: Target) -> None:
    team_user = await target.gateway.role_permissions(["team_user"])
    assert {"create_public_channel", "create_private_channel"} <= team_user
    both = await target.gateway.role_permissions(["team_user", "system_user"])
    assert team_user < both


@pytest.mark.parametrize("public", [True, False], ids=["public", "private"])
async def test_create_a_channel_and_find_it_again(target: Target, public: bool) -> None:
    name = unique("contract")
    channel = await new_channel(target, public=public, name=name)
    assert channel["type"] == ("O" if public else "P")
    assert channel["name"] == name
    assert channel["team_id"] == target.team_id
    assert channel["header"] == "Opened by the contract suite"
    # The creator (the bot) is a member: it can post and invite at once.
    assert await target.gateway.is_channel_member(channel["id"], target.bot["id"])
    # A retried create finds the channel the first attempt made (error id CHANNEL_EXISTS).
    again = await new_channel(target, public=public, name=name)
    assert again["id"] == channel["id"]
    with pytest.raises(MattermostError) as error:
        await target.driver(target.bot_token).channels.create_channel(
            team_id=target.team_id, name=name, display_name="Twice", type="O" if public else "P"
        )
    assert error.value.status_code == 400
    assert error.value.error_id == CHANNEL_EXISTS
    assert (await target.gateway.get_channel(channel["id"]))["name"] == name
    assert (await target.gateway.get_channel_by_name(target.team_id, name))["id"] == channel["id"]
    with pytest.raises(MattermostFailure) as missing:
        await target.gateway.get_channel_by_name(target.team_id, unique("missing"))
    refused(missing.value, 404)


async def test_add_members_and_patch_the_header(target: Target) -> None:
    channel = await new_channel(target, public=False)
    user_id = target.user["id"]
    assert not await target.gateway.is_channel_member(channel["id"], user_id)
    await target.gateway.add_channel_member(channel["id"], user_id)
    assert await target.gateway.is_channel_member(channel["id"], user_id)
    await target.gateway.add_channel_member(channel["id"], user_id)  # again: no error, still one member
    await target.gateway.set_channel_header(channel["id"], "**Commander:** @someone")
    assert (await target.gateway.get_channel(channel["id"]))["header"] == "**Commander:** @someone"
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.add_channel_member(channel["id"], fake_id())
    assert error.value.status in (400, 403, 404)
    assert not error.value.retryable


async def test_the_teams_people_and_a_persons_channels(target: Target) -> None:
    people = await target.gateway.users_in_team(target.team_id)
    assert {target.user["id"], target.bot["id"]} <= {u["id"] for u in people}
    assert all({"id", "username", "delete_at"} <= set(u) for u in people)
    assert [u["username"] for u in people] == sorted(u["username"] for u in people)
    channel = await new_channel(target, public=False)
    await target.gateway.add_channel_member(channel["id"], target.user["id"])
    mine = await target.gateway.channels_for_token(target.user_token, target.team_id)
    assert channel["id"] in {c["id"] for c in mine}
    assert all({"id", "name", "display_name", "type", "team_id"} <= set(c) for c in mine)
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.channels_for_token("x" * 26, target.team_id)
    refused(error.value, 401)


async def test_post_find_by_dedupe_prop_and_pin(target: Target) -> None:
    channel = await new_channel(target, public=True)
    key = unique("effect")
    post = await target.gateway.create_post(
        channel_id=channel["id"], message="#### Contract post", props={"incident_effect": key}
    )
    assert post["channel_id"] == channel["id"]
    assert post["user_id"] == target.bot["id"]
    assert post["props"]["incident_effect"] == key
    found = await target.gateway.find_post_with_prop(channel["id"], "incident_effect", key)
    assert found is not None
    assert found["id"] == post["id"]
    assert await target.gateway.find_post_with_prop(channel["id"], "incident_effect", unique("none")) is None
    await target.gateway.pin_post(post["id"])
    pinned = await target.driver(target.bot_token).posts.get_post(post["id"])
    assert pinned["is_pinned"] is True


async def test_a_post_is_edited_in_place_and_an_edit_of_a_deleted_one_is_refused(target: Target) -> None:
    """The live checklist: `PUT /posts/{id}/patch` replaces message and props. After a delete, an
    edit is refused with 403, as an edit the bot may not make (`patchPost` answers any failure to
    read the post so); only reading the post tells that it is gone (404)."""
    channel = await new_channel(target, public=True)
    post = await target.gateway.create_post(
        channel_id=channel["id"], message="v1", props={"incident_effect": unique("effect"), "attachments": []}
    )
    edited = await target.gateway.patch_post(post["id"], message="v2", props={"incident_post": "x:checklist"})
    assert (edited["id"], edited["message"]) == (post["id"], "v2")
    assert edited["props"].get("incident_post") == "x:checklist"
    assert "incident_effect" not in edited["props"], "props are replaced whole"
    await target.driver(target.bot_token).posts.delete_post(post["id"])
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.patch_post(post["id"], message="v3", props={})
    refused(error.value, 403)
    assert error.value.error_id == "api.context.permissions.app_error"
    with pytest.raises(MattermostFailure) as gone:
        await target.gateway.get_post(post["id"])
    refused(gone.value, 404)
    assert gone.value.not_found


async def test_posting_where_the_bot_is_not_a_member_is_refused_for_good(target: Target) -> None:
    user = target.driver(target.user_token)
    private = await user.channels.create_channel(
        team_id=target.team_id, name=unique("contract-own"), display_name="Not the bot's", type="P"
    )
    target.created_channels.append(private["id"])
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.create_post(channel_id=private["id"], message="hi", props={})
    refused(error.value, 403)
    assert not await target.gateway.is_channel_member(private["id"], target.bot["id"])


async def test_the_bot_direct_messages_a_user_who_reads_it_there(target: Target) -> None:
    """What the bot tells one person (a late outcome, a handoff): the direct message channel of the
    two is made on the first message and found again on the next; only the two are in it."""
    key = unique("effect")
    post = await target.gateway.direct_message(
        target.user["id"], "Your command finished", props={"incident_effect": key}
    )
    assert post["user_id"] == target.bot["id"]
    assert post["props"]["incident_effect"] == key
    user = target.driver(target.user_token)
    channel = await user.channels.get_channel(post["channel_id"])
    assert (channel["type"], channel["team_id"]) == ("D", "")
    assert channel["name"] == "__".join(sorted([target.bot["id"], target.user["id"]]))
    members = await user.channels.get_channel_members(channel["id"])
    assert {m["user_id"] for m in members} == {target.bot["id"], target.user["id"]}
    read = await user.posts.get_posts_for_channel(channel["id"])
    assert read["posts"][post["id"]]["message"] == "Your command finished"
    again = await target.gateway.direct_message(target.user["id"], "And one more thing")
    assert again["channel_id"] == channel["id"]
    # A retried direct message finds the copy an earlier attempt made, as in any channel.
    found = await target.gateway.find_post_with_prop(channel["id"], "incident_effect", key)
    assert found is not None
    assert found["id"] == post["id"]


async def test_a_direct_message_to_a_user_that_does_not_exist_is_refused(target: Target) -> None:
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.direct_message(fake_id(), "Anyone there?")
    refused(error.value, 400)
    assert error.value.error_id == "api.channel.create_direct_channel.invalid_user.app_error"
    with pytest.raises(MattermostFailure) as malformed:
        await target.gateway.direct_message("../../users/me", "Anyone there?")
    assert malformed.value.not_found


async def test_only_its_members_read_a_direct_message_channel(target: Target) -> None:
    """The test user writes to themselves; the bot, not in that channel, can neither read nor post
    there (403, for good)."""
    user = target.driver(target.user_token)
    own = await user.channels.create_direct_channel(options=[target.user["id"], target.user["id"]])
    assert own["name"] == f"{target.user['id']}__{target.user['id']}"
    note = await user.posts.create_post(channel_id=own["id"], message="Note to self", props={"incident_effect": "x"})
    assert (await user.posts.get_post(note["id"]))["message"] == "Note to self"
    for outsider_call in (
        target.gateway.get_channel(own["id"]),
        target.gateway.find_post_with_prop(own["id"], "incident_effect", "x"),
        target.gateway.create_post(channel_id=own["id"], message="Let me in", props={}),
    ):
        with pytest.raises(MattermostFailure) as error:
            await outsider_call
        refused(error.value, 403)


async def test_ephemeral_posts_are_not_for_bots(target: Target) -> None:
    """Why the project replies privately through the command's response_url: `POST
    /posts/ephemeral` needs `create_post_ephemeral`, which only system admins have."""
    channel = await new_channel(target, public=True)
    with pytest.raises(MattermostError) as error:
        await target.driver(target.bot_token).posts.create_post_ephemeral(
            user_id=target.user["id"], post={"channel_id": channel["id"], "message": "Only you can see this"}
        )
    assert error.value.status_code == 403


async def test_dialogs_need_a_live_trigger_id(target: Target) -> None:
    dialog = {"callback_id": "contract", "title": "Contract", "elements": [], "state": "signed"}
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.open_dialog(trigger_id=fake_id(), url="http://127.0.0.1:9/dialog", dialog=dialog)
    assert error.value.status == 400
    assert not error.value.retryable


async def test_command_replies_only_go_to_this_servers_hooks(target: Target) -> None:
    with pytest.raises(MattermostFailure) as error:
        await target.gateway.respond_to_command("https://elsewhere.example.com/api/v4/users", {"text": "x"})
    assert error.value.status == 400
    with pytest.raises(MattermostFailure) as unknown:
        await target.gateway.respond_to_command(f"{target.url}/hooks/commands/{fake_id()}", {"text": "x"})
    assert unknown.value.status in (400, 404)
    assert not unknown.value.retryable
