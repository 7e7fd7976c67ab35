"""Hostile arguments to `/incident`: refused with the usage reply, never a 5xx, and never a
request to some other Mattermost route made with the bot's token."""

from __future__ import annotations

from typing import Any

import pytest

from mattermost_client.gateway import Mattermost, MattermostFailure
from models.incident import incident_workflow_id
from tests.harness import World
from tests.integration.slash_helpers import command, outage, post_slash, slash_form, state


def new_requests(world: World, before: int) -> list[dict[str, Any]]:
    return world.requests_since(before)


async def test_mentions_that_are_no_username_reach_no_mattermost_route(world: World) -> None:
    incident = await outage(world)
    secret = world.standin.create_channel(world.team_id, "secret-plans", "Secret plans", type="P")
    usage = "Usage: `/incident commander [@user]`"
    hostile = [
        f"@../../channels/{secret['id']}",
        f"@../../teams/{world.team_id}",
        f"@../../users/{world.bob.id}",
        "@../../etc/passwd",
        "@bo\x00b",
        "@bob%2F..%2F..%2Fchannels",
        "@bob?x=1",
        "@bob#frag",
        "@" + "a" * 65,
        "@bób",
    ]
    for mention in hostile:
        before = len(world.standin.requests)
        reply = await command(world, world.alice, f'commander "{mention}"', incident)
        assert reply == f"There is no user {mention}.\n{usage}", mention
        looked_up = [r["path"] for r in new_requests(world, before) if "/users/username/" in r["path"]]
        assert looked_up == [], (mention, looked_up)
        leaked = [r["path"] for r in new_requests(world, before) if secret["id"] in r["path"]]
        assert leaked == [], (mention, leaked)
    assert (await state(world, incident.id)).commander_id == world.alice.id


async def test_the_gateway_puts_no_invalid_value_into_a_request_path(world: World) -> None:
    """Every gateway method that puts a value into a path refuses a value Mattermost could not
    have made, as "not found" and without sending a request."""
    mattermost = Mattermost(world.stack.settings.mattermost_url, world.stack.bot_token)
    try:
        await _every_call_refuses_bad_path_values(world, mattermost)
    finally:
        await mattermost.close()


async def _every_call_refuses_bad_path_values(world: World, mattermost: Mattermost) -> None:
    channel = world.town_square["id"]
    bad_ids = ["../../teams/" + world.team_id, world.bob.id + "\n", "ME", "me", "x" * 26 + "/..", "", "\x00" * 26]
    bad_names = ["../x", "bo\x00b", "Bob", "a" * 65, "bob/../../x", "bob\n", "bób"]
    calls: list[Any] = []
    for bad in bad_ids:
        calls += [
            lambda bad=bad: mattermost.get_user(bad),
            lambda bad=bad: mattermost.get_team(bad),
            lambda bad=bad: mattermost.get_channel(bad),
            lambda bad=bad: mattermost.get_channel_by_name(bad, "town-square"),
            lambda bad=bad: mattermost.add_channel_member(bad, world.bob.id),
            lambda bad=bad: mattermost.add_channel_member(channel, bad),
            lambda bad=bad: mattermost.set_channel_header(bad, "header"),
            lambda bad=bad: mattermost.create_post(channel_id=bad, message="hi", props={}),
            lambda bad=bad: mattermost.direct_message(bad, "hi"),
            lambda bad=bad: mattermost.find_post_with_prop(bad, "key", "value"),
            lambda bad=bad: mattermost.pin_post(bad),
            lambda bad=bad: mattermost.create_channel(
                team_id=bad, name="inc-x", display_name="x", purpose="", header="", public=True
            ),
            lambda bad=bad: mattermost.execute_command(world.alice.token, channel_id=bad, command="/incident help"),
        ]
    for bad in bad_names:
        calls += [
            lambda bad=bad: mattermost.get_user_by_username(bad),
            lambda bad=bad: mattermost.get_channel_by_name(world.team_id, bad),
        ]
    before = len(world.standin.requests)
    for call in calls:
        with pytest.raises(MattermostFailure) as failure:
            await call()
        assert failure.value.status == 404, failure.value.message
    # Lookups that answer "no" instead of failing.
    assert await mattermost.team_member("../../x" + "a" * 19, world.bob.id) is None
    assert await mattermost.is_channel_member(channel, world.bob.id + "\n") is False
    assert await mattermost.get_users_by_ids(["../../x", "bob\n"]) == []
    for token in ("bad token", "tök", "a\nb", ""):
        with pytest.raises(MattermostFailure) as failure:
            await mattermost.user_for_token(token)
        assert failure.value.status == 401
    for url in (
        f"{world.standin.url}/hooks/commands/../../api/v4/users/me/patch",
        f"{world.standin.url}/hooks/commands/{'a' * 26}/../../../api/v4/posts",
        f"{world.standin.url}/api/v4/posts",
    ):
        with pytest.raises(MattermostFailure):
            await mattermost.respond_to_command(url, {"text": "x"})
    assert new_requests(world, before) == []


async def test_numbers_that_are_not_plain_digits_get_the_usage_reply(world: World) -> None:
    incident = await outage(world)
    bob = f"@{world.bob.username}"
    huge = "9" * 5000
    cases = {
        "check ²": "The item must be a number from 1, as shown by `/incident info` (got '²').",
        "check ³ 1": "The stage must be a number from 1, as shown by `/incident info` (got '³').",
        f"assign ² 1 {bob}": "The stage must be a number from 1, as shown by `/incident info` (got '²').",
        "checkremove 1 ²": "The item must be a number from 1, as shown by `/incident info` (got '²').",
        "check \u0661": "The item must be a number from 1, as shown by `/incident info` (got '\u0661').",
        f"check {huge}": "The item must be a number from 1",
        f"check {huge} 1": "The stage must be a number from 1",
        f"checkremove 1 {huge}": "The item must be a number from 1",
        f"checkadd {huge} Title": "The stage must be a number from 1",
        f"reminder {huge}m": "is not a duration; use e.g. 15m, 1h, 4h or off.",
        "reminder ²m": "'²m' is not a duration; use e.g. 15m, 1h, 4h or off.",
        "assign 1 1 @bo\x00b": "There is no user @bo\x00b.",
        f"add @bo\x00b {bob}": "There is no user @bo\x00b.",
    }
    history_before = await _history_length(world, incident.id)
    for text, expected in cases.items():
        reply = await command(world, world.alice, text, incident)
        assert expected in reply, (text[:40], reply[:200])
        assert "\nUsage: `/incident " in reply, (text[:40], reply[:200])
        assert len(reply) < 1000, "a huge argument is not echoed back whole"
    assert await _history_length(world, incident.id) == history_before


async def test_raw_slash_requests_with_hostile_text_answer_200(world: World) -> None:
    """What Mattermost would post for the same texts, straight to our endpoint."""
    incident = await outage(world)
    channel = {"id": incident.channel_id, "name": incident.channel_name}
    for number, text in enumerate(
        ["check ²", "commander @../../etc/passwd", "assign 1 1 @bo\x00b", "check " + "1" * 5000]
    ):
        form = slash_form(world, world.alice, text, channel=channel, trigger_id=f"hostile-{number}")
        reply = await post_slash(world, form)
        assert "Usage: `/incident" in reply["text"], reply["text"][:200]


async def _history_length(world: World, incident_id: str) -> int:
    handle = world.stack.temporal.get_workflow_handle(incident_workflow_id(incident_id))
    history = await handle.fetch_history()
    return len(history.events)
