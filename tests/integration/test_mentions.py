"""Channel-wide and group mentions people type, through the whole stack: the bot posts them
where nobody gets notified, except an incident channel author's own, when Mattermost lets
that author make them there."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import World, eventually
from tests.integration.test_incidents_api import cache_expired, playbook, ready, start
from tests.mattermost_mentions import Mentions, mentions


async def _bot_posts(world: World, channel_id: str) -> list[str]:
    """The bot's posts in a channel, oldest first, read over HTTP from the stand-in."""
    async with httpx.AsyncClient(base_url=world.standin.url) as http:
        response = await http.get(f"/_standin/channels/{channel_id}/posts")
    response.raise_for_status()
    posts: list[dict[str, Any]] = response.json()
    return [post["message"] for post in posts if post["user_id"] == world.stack.bot["id"]]


def _updates(posts: list[str]) -> list[Mentions]:
    return [mentions(post) for post in posts if post.startswith("#### Status update")]


async def test_typed_mentions_reach_no_one_outside_and_the_incident_channel_only_with_permission(
    world: World,
) -> None:
    alice, off_topic, town = world.alice, world.channels["off-topic"], world.town_square
    book = await playbook(world, alice, broadcast_channel_ids=[off_topic["id"]])
    incident = await start(world, alice, playbook_id=book["id"], name="@channel db down", description="@all read this")
    record = await ready(world, alice, incident["id"])
    channel = str(record["channel_id"])
    api = world.api(alice)
    base = f"/api/v1/incidents/{incident['id']}"
    # Alice is a channel member; by default Mattermost lets members use channel mentions.
    first = await api.post(f"{base}/status-updates", json={"message": "@here @all look, @devs too"})
    assert first.status_code == 200, first.text
    announced = await api.post(f"{base}/announcements", json={"channel_ids": [town["id"]]})
    assert announced.status_code == 200, announced.text
    # An admin takes channel mentions away from channel members (System Console > Permissions).
    role = await world.driver(world.admin).roles.get_role_by_name("channel_user")
    world.standin.set_role_permissions("channel_user", [p for p in role["permissions"] if p != "use_channel_mentions"])
    try:
        await cache_expired(world)
        reply = await world.slash(alice, "update @here @all again", channel_id=channel)
        assert reply["text"] == "Status update posted.", reply
        await eventually(lambda: _bot_posts(world, channel), lambda p: len(_updates(p)) == 2, what="both updates")
    finally:
        world.standin.set_role_permissions("channel_user", role["permissions"])
        await cache_expired(world)

    members = {alice.username}
    told = await eventually(lambda: _bot_posts(world, off_topic["id"]), lambda p: len(p) == 3, what="3 broadcasts")
    announced_posts = await eventually(lambda: _bot_posts(world, town["id"]), lambda p: len(p) == 2)
    assert "@\u2060channel db down" in told[0]
    for post in told + announced_posts:
        found = mentions(post)
        assert found.channel_wide == set(), post
        # "commander @alice." is also looked up as "alice.": the bot's own sentence, not typed.
        assert {name.rstrip(".") for name in found.names} <= members, post
    here = await _bot_posts(world, channel)
    first_update, second_update = _updates(here)
    assert first_update.channel_wide == {"here", "all"}
    assert "devs" not in first_update.names  # group mentions: channel admins only, by default
    assert second_update.channel_wide == set()
    assert mentions(here[0]).channel_wide == set()  # the live checklist: name and description
    stored = await api.get(base)
    assert stored.json()["name"] == "@channel db down"
