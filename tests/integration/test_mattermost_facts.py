"""Facts read from Mattermost (over HTTP, from the stand-in) and how long they are trusted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mattermost_client.gateway import Mattermost
from service.mattermost_facts import MattermostFacts
from tests.harness import World


async def test_a_person_added_to_a_channel_is_a_member_at_once_though_they_were_not_a_moment_ago(
    world: World,
) -> None:
    """Defect: a read of the incident (the backstage page, a GET) while the bot was still adding
    the commander to the new channel cached "not a member" for AUTH_CACHE_SECONDS (30 s), and a
    status update sent meanwhile lost the commander's @here and @all."""
    # The bot's new incident channel, before it added the incident's people.
    channel = world.standin.create_channel(world.team_id, "facts-new-incident", "New incident", type="P")
    world.standin.add_channel_member(channel["id"], world.stack.bot["id"])
    mattermost = Mattermost(world.stack.settings.mattermost_url, world.stack.bot_token)
    facts = MattermostFacts(mattermost, ttl=3600)
    try:
        before, _ = await facts.channel_membership(channel["id"], world.alice.id)
        assert before.is_member is False
        world.standin.add_channel_member(channel["id"], world.alice.id)
        after, _ = await facts.channel_membership(channel["id"], world.alice.id)
        assert after.is_member is True
        caller = await facts.caller_for_user_id(world.alice.id)
        alice = await facts.for_incident(caller, team_id=world.team_id, channel_id=channel["id"])
        assert alice.is_channel_member is True
        assert alice.can_mention_channel is True
        # A "member" is kept: no request for it within the hour.
        asked = len(world.standin.requests)
        again, _ = await facts.channel_membership(channel["id"], world.alice.id)
        assert again.is_member is True
        assert [r["path"] for r in world.standin.requests[asked:] if "/members/" in r["path"]] == []
    finally:
        await mattermost.close()


async def test_a_membership_is_dated_when_it_was_asked_not_when_a_slow_answer_came_back(world: World) -> None:
    """Defect (seen once under load in the scale-out test): a "not a member" read of the commander
    while the bot was adding them to the new channel, its answer slow to come back, was dated after
    the join the incident recorded; the incident then took the stale "no" as newer than its own
    word and answered a private incident's commander "Incident not found."."""
    channel = world.standin.create_channel(world.team_id, "facts-slow-answer", "Slow answer", type="P")
    world.standin.add_channel_member(channel["id"], world.stack.bot["id"])
    world.standin.add_fault("GET", "/api/v4/channels/{channel_id}/members/{user_id}", delay=1.0, times=1)
    mattermost = Mattermost(world.stack.settings.mattermost_url, world.stack.bot_token)
    facts = MattermostFacts(mattermost, ttl=3600)
    try:
        asked = datetime.now(UTC)
        membership, observed_at = await facts.channel_membership(channel["id"], world.alice.id)
        answered = datetime.now(UTC)
        assert membership.is_member is False
        assert answered - asked >= timedelta(seconds=1)
        assert observed_at is not None
        assert asked <= observed_at < asked + (answered - asked) / 2
    finally:
        world.standin.clear_faults()
        await mattermost.close()
