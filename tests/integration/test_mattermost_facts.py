"""Facts read from Mattermost (over HTTP, from the stand-in) and how long they are trusted."""

from __future__ import annotations

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
