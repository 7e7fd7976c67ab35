"""Who may run `/incident` commands where, and requests Mattermost (or a proxy) sends twice.

Commands that act on an incident run only in its channel, and only for its members;
the API does not rely on Mattermost keeping others out, so the same requests are
also sent straight to `POST /mattermost/slash`, exactly as Mattermost would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mattermostautodriver.exceptions import NotEnoughPermissions

from models.incident import EventType, IncidentStatus, ItemState
from tests.harness import World, eventually
from tests.integration.slash_helpers import (
    Started,
    bot_posted,
    bot_posts,
    command,
    create_playbook,
    dialogs,
    outage,
    post_slash,
    settled,
    slash_form,
    state,
    submit_dialog,
)

# Every command that acts on an incident, with valid arguments, and what the refusal elsewhere says.
INCIDENT_COMMANDS = {
    "end": "end an incident",
    "restart": "restart an incident",
    "info": "see an incident's details",
    "check 1": "check items",
    "checkadd 1 Call the vendor": "edit the checklist",
    "checkremove 1 1": "edit the checklist",
    "assign 1 1 @none": "assign items",
    "stage next": "change stages",
    "commander": "see or change the commander",
    "add @nobody": "invite people",
    "announce ~off-topic": "announce an incident",
    "update All good": "post status updates",
    "reminder 1h": "change the reminder",
    "note Paged the vendor": "add notes",
    "timeline": "see the timeline",
}


def channel_of(world: World, incident: Started) -> dict[str, Any]:
    channel = world.standin.get_channel(incident.channel_id)
    assert channel is not None
    return channel


async def test_incident_commands_elsewhere_are_refused(world: World) -> None:
    incident = await outage(world)
    before = await state(world, incident.id)
    for channel in (world.town_square, world.channels["off-topic"]):
        for text, what in INCIDENT_COMMANDS.items():
            reply = await world.slash(world.alice, text, channel_id=channel["id"])
            assert reply["response_type"] == "ephemeral"
            assert reply["text"] == f"You can only {what} from within the incident's channel.", text
    assert not dialogs(world, world.alice, "end")
    assert not dialogs(world, world.alice, "stage")
    after = await settled(world, incident.id)
    assert after.timeline == before.timeline
    assert len(bot_posts(world, incident.channel_id)) == 1, "only the opening post"


async def test_non_members_of_a_private_incident_learn_nothing(world: World) -> None:
    incident = await outage(world)
    channel = channel_of(world, incident)
    # Mattermost does not let carol (in the team, not in the channel) type there at all...
    with pytest.raises(NotEnoughPermissions):
        await world.slash(world.carol, "check 1", channel_id=incident.channel_id)
    # ...and the API refuses the same request sent for her, or for mallory (not in the team).
    for user in (world.carol, world.mallory):
        for n, (text, what) in enumerate(INCIDENT_COMMANDS.items()):
            form = slash_form(world, user, text, channel=channel, trigger_id=f"{user.username}-{n}")
            reply = await post_slash(world, form)
            assert reply["text"] == f"You can only {what} from within the incident's channel.", (user, text)
    after = await settled(world, incident.id)
    assert [e.type for e in after.timeline] == [EventType.CREATED]


async def test_non_members_of_a_public_incident_are_refused_by_the_workflow(world: World) -> None:
    incident = await outage(world, create_public_incident=True)
    channel = channel_of(world, incident)
    assert channel["type"] == "O"
    change = "Only members of the incident channel can change this incident. Ask someone in the channel to add you."
    refusals = {
        "check 1": change,
        "checkadd 1 Call the vendor": change,
        "checkremove 1 1": change,
        f"assign 1 1 @{world.alice.username}": change,
        "stage next": change,  # refused before a confirmation dialog is offered
        "stage next --force": change,
        f"commander @{world.alice.username}": change,
        f"add @{world.dave.username}": change,
        "announce ~off-topic": change,
        "update All good": change,
        "reminder 1h": change,
        "end": "Only members of the incident channel can end this incident.",
        "restart": "Only members of the incident channel can restart this incident.",
    }
    for n, (text, expected) in enumerate(refusals.items()):
        reply = await post_slash(world, slash_form(world, world.carol, text, channel=channel, trigger_id=f"t{n}"))
        assert reply["text"] == expected, text
    # Reading a public incident is fine.
    info = await post_slash(world, slash_form(world, world.carol, "info", channel=channel, trigger_id="info"))
    assert info["text"].startswith("#### Incident: Primary DB down")
    after = await settled(world, incident.id)
    assert [e.type for e in after.timeline] == [EventType.CREATED]
    assert world.dave.id not in world.standin.channel_members(incident.channel_id)


# ---------------------------------------------------------------------------- resent requests


async def test_a_resent_command_is_applied_once(world: World) -> None:
    incident = await outage(world)
    channel = channel_of(world, incident)
    alice = f"@{world.alice.username}"
    check = slash_form(world, world.alice, "check 1", channel=channel, trigger_id="resent-check")
    first = await post_slash(world, check)
    second = await post_slash(world, check)
    assert (
        first
        == second
        == {
            "response_type": "ephemeral",
            "text": "Marked 'Page the DBA' as done.",
            "props": {},
            "goto_location": "",
            "extra_responses": [],
        }
    )
    # Sent twice at the same moment (a proxy retrying while the first is in flight).
    update = slash_form(world, world.alice, "update Failing over", channel=channel, trigger_id="resent-update")
    replies = await asyncio.gather(post_slash(world, update), post_slash(world, update))
    assert [r["text"] for r in replies] == ["Status update posted."] * 2

    await bot_posted(world, incident.channel_id, "#### Status update")
    current = await settled(world, incident.id)
    assert current.checklists[0].items[0].state == ItemState.DONE, "a second toggle would have reopened it"
    kinds = [e.type for e in current.timeline]
    assert kinds.count(EventType.ITEM_STATE_CHANGED) == kinds.count(EventType.STATUS_UPDATE) == 1
    assert len(current.status_updates) == 1
    posts = bot_posts(world, incident.channel_id)
    assert not [p for p in posts if f"{alice} marked **Page the DBA**" in p], "shown by the checklist post only"
    assert len([p for p in posts if p.startswith("#### Status update")]) == 1


async def test_a_resent_start_starts_one_incident(world: World) -> None:
    await create_playbook(world, world.alice)
    form = slash_form(
        world, world.alice, 'start "Database outage" Once only', channel=world.town_square, trigger_id="t"
    )
    first = await post_slash(world, form)
    second = await post_slash(world, form)
    assert first == second
    assert first["text"].startswith("Starting incident **Once only**")

    async def incident_channels() -> list[dict[str, Any]]:
        return [c for c in world.standin.channels(world.team_id) if c["display_name"] == "Once only"]

    [channel] = await eventually(incident_channels, lambda found: len(found) == 1, what="the incident channel")
    incident_id = channel["name"].rsplit("-", 1)[1]
    await settled(world, incident_id)
    assert len(await incident_channels()) == 1
    assert len([p for p in bot_posts(world, channel["id"]) if "Incident: Once only" in p]) == 1


async def test_a_resent_restart_restarts_once(world: World) -> None:
    incident = await outage(world)
    await command(world, world.alice, "end", incident)
    await submit_dialog(world, world.alice, dialogs(world, world.alice, "end")[-1])
    await eventually(lambda: state(world, incident.id), lambda s: s.status == IncidentStatus.ENDED, what="ended")
    form = slash_form(world, world.alice, "restart", channel=channel_of(world, incident), trigger_id="resent-restart")
    replies = [await post_slash(world, form), await post_slash(world, form)]
    assert [r["text"] for r in replies] == ["Incident restarted."] * 2
    current = await settled(world, incident.id)
    assert (current.status, len(current.periods)) == (IncidentStatus.ONGOING, 2)
    assert [e.type for e in current.timeline].count(EventType.RESTARTED) == 1
    assert len([p for p in bot_posts(world, incident.channel_id) if p.endswith("restarted the incident")]) == 1
