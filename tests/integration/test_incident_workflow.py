"""The incident as a durable workflow, through its client API, against the real server and stand-in."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from models import incident_commands as cmd
from models.command_table import update_name
from models.common import Actor, ChannelFact
from models.incident import EventType, IncidentState, IncidentStatus, ItemState
from tests.harness import World, eventually
from tests.integration.incident_helpers import (
    actor,
    fact,
    messages,
    playbook,
    ready,
    settled,
    start,
    state,
    update,
)


async def refused(handle: Any, command: cmd.IncidentCommand) -> ApplicationError:
    """Send a command that must be refused; check the refusal left nothing in history."""
    await settled(handle)
    before = len([e async for e in handle.fetch_history_events()])
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update_name(command), command)
    after = len([e async for e in handle.fetch_history_events()])
    assert after == before, "a refused command must leave no trace in history"
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_start_creates_channel_people_opening_post_and_announcement(world: World) -> None:
    off_topic = world.channels["off-topic"]
    book = playbook(
        world,
        description="x",
        default_commander_id=world.bob.id,
        invited_user_ids=[world.carol.id],
        broadcast_channel_ids=[off_topic["id"]],
    )
    handle = await start(
        world,
        book=book,
        name="Primary DB down",
        description="Writes fail on the primary",
        commander=fact(world.bob, member=False),
        invited=[fact(world.carol, member=False)],
    )
    current = await settled(handle)
    channel = world.standin.get_channel(current.channel_id or "")
    assert channel is not None
    assert channel["type"] == "P"  # the playbook decides: private
    assert channel["display_name"] == "Primary DB down"
    assert channel["name"] == f"inc-primary-db-down-{current.id}"
    assert channel["purpose"] == "Writes fail on the primary"
    assert f"http://localhost:8233/namespaces/default/workflows/incident-{current.id}" in channel["header"]
    members = set(world.standin.channel_members(channel["id"]))
    assert {world.alice.id, world.bob.id, world.carol.id} <= members
    assert current.commander_id == world.bob.id
    assert current.playbook is not None
    assert current.playbook.version == 1
    opening = world.standin.posts(channel["id"])[0]
    assert opening["is_pinned"] is True
    assert opening["message"].startswith("#### :rotating_light: Incident: Primary DB down")
    assert "**Stage 1/2 Triage** · **active** · 0/2 done\n1. [ ] Page DBA\n2. [ ] Logs" in opening["message"]
    assert "**Stage 2/2 Mitigate** · 0/1 done\n1. [ ] Fail over" in opening["message"]
    buttons = [a["name"] for att in opening["props"]["attachments"] for a in att.get("actions", [])]
    assert buttons == ["☐ Page DBA", "☐ Logs", "Next stage", "Post update"]
    assert opening["props"]["incident_id"] == current.id
    announcement = world.standin.posts(off_topic["id"])[-1]["message"]
    assert announcement.startswith(
        f"**Incident Primary DB down** (~{channel['name']}): started by @{world.alice.username}"
    )
    assert handle.id == f"incident-{current.id}"
    assert current.timeline[0].type == EventType.CREATED


async def test_public_blank_and_multibyte_incidents(world: World) -> None:
    public = await start(
        world, book=playbook(world, create_public_incident=True, channel_name_template="{date}-{name}")
    )
    blank = await start(world, name="障害: データベース停止")
    public_state, blank_state = await ready(world, public), await ready(world, blank)
    public_channel = world.standin.get_channel(public_state.channel_id or "")
    blank_channel = world.standin.get_channel(blank_state.channel_id or "")
    assert public_channel is not None
    assert blank_channel is not None
    assert public_channel["type"] == "O"
    assert public_channel["name"] == f"{public_state.started_at:%Y-%m-%d}-primary-db-down-{public_state.id}"
    assert blank_channel["type"] == "P"
    assert blank_channel["display_name"] == "障害: データベース停止"
    assert blank_channel["name"] == f"inc-incident-{blank_state.id}"
    assert [(s.title, s.items) for s in blank_state.checklists] == [("Checklist", [])]


async def test_a_failing_invite_is_reported_not_fatal(world: World) -> None:
    handle = await start(world, invited=[fact(world.mallory, member=False), fact(world.dave, member=False)])
    current = await eventually(
        lambda: state(handle), lambda s: any(e.type == EventType.INVITE_FAILED for e in s.timeline)
    )
    assert world.dave.id in world.standin.channel_members(current.channel_id or "")
    failure = next(e for e in current.timeline if e.type == EventType.INVITE_FAILED)
    assert failure.summary.startswith(f"Could not add @{world.mallory.username} to the channel")
    await eventually(
        lambda: _messages(world, handle), lambda posted: any(m.startswith("Could not add") for m in posted)
    )
    assert current.status == IncidentStatus.ONGOING


async def _messages(world: World, handle: Any) -> list[str]:
    return messages(world, (await state(handle)).channel_id or "")


async def test_channel_creation_refused_means_no_incident(world: World) -> None:
    world.standin.add_fault("POST", "/api/v4/channels", status=403, times=1, team_id=world.team_id)
    handle = await start(world, name="Cannot open")
    result: IncidentState = await handle.result()
    assert result.status == IncidentStatus.FAILED
    assert result.failure is not None
    assert "Mattermost refused to create channel" in result.failure
    assert not [c for c in world.standin.channels(world.team_id) if c["display_name"] == "Cannot open"]


async def test_stages_and_items(world: World) -> None:
    handle = await start(world, book=playbook(world))
    await ready(world, handle)
    alice = actor(world.alice)
    error = await refused(handle, cmd.ChangeStage(actor=alice, direction="next"))
    assert error.type == "ConfirmationRequired"
    assert error.message == ("Stage 'Triage' still has 2 open item(s). Move on anyway?")
    # Each change of an item, and the one event it leaves on the timeline.
    item_changes: list[tuple[cmd.IncidentCommand, EventType]] = [
        (cmd.SetItemState(actor=alice, stage=0, item=0, state="in_progress"), EventType.ITEM_STATE_CHANGED),
        (cmd.SetItemState(actor=alice, stage=0, item=0, state="done"), EventType.ITEM_STATE_CHANGED),
        (cmd.AssignItem(actor=alice, stage=0, item=1, assignee=fact(world.alice)), EventType.ITEM_ASSIGNED),
        (cmd.AddItem(actor=alice, stage=0, title="Tell support", position=0), EventType.ITEM_ADDED),
        (cmd.EditItem(actor=alice, stage=0, item=0, title="Tell support now"), EventType.ITEM_RENAMED),
        (cmd.MoveItem(actor=alice, stage=0, item=0, to_position=2), EventType.ITEM_MOVED),
        (cmd.RemoveItem(actor=alice, stage=0, item=2), EventType.ITEM_REMOVED),
    ]
    for command, _ in item_changes:
        await update(handle, command)
    result = await update(handle, cmd.ChangeStage(actor=alice, direction="next", force=True))
    assert result.message == "Moved to stage 2/2 Mitigate."
    await update(handle, cmd.RunItemCommand(actor=alice, stage=1, item=0))
    error = await refused(handle, cmd.ChangeStage(actor=alice, direction="next"))
    assert error.message == "Stage 'Mitigate' is already the last stage."
    await update(handle, cmd.ChangeStage(actor=alice, direction="prev"))

    current = await settled(handle)
    triage = current.checklists[0]
    assert [(i.title, i.state, i.assignee_id) for i in triage.items] == [
        ("Page DBA", ItemState.DONE, None),
        ("Logs", ItemState.OPEN, world.alice.id),
    ]
    assert triage.items[0].state_changed_at is not None
    assert current.checklists[1].items[0].command_last_run is not None
    assert current.active_stage == 0
    assert [e.type for e in current.timeline] == [
        EventType.CREATED,
        *(event for _, event in item_changes),
        EventType.STAGE_CHANGED,
        EventType.COMMAND_RUN,
        EventType.STAGE_CHANGED,
    ]
    posted = messages(world, current.channel_id or "")
    mention = f"@{world.alice.username}"
    # Item changes are on the timeline and the live checklist post, not announced one by one.
    summaries = [e.summary for e in current.timeline]
    assert f"{mention} marked **Page DBA** as done (stage 1/2 Triage)" in summaries
    assert f"{mention} removed **Tell support now** from stage 'Triage'" in summaries
    assert not [m for m in posted if " marked **" in m or " removed **" in m]
    assert any(m.startswith(f"{mention} moved the incident to stage 2/2 Mitigate (leaving 1 open") for m in posted)
    assert f"{mention} ran `/db failover` for **Fail over**" in posted


async def test_people_commander_members_and_access(world: World) -> None:
    handle = await start(world, book=playbook(world))
    await ready(world, handle)
    alice = actor(world.alice)
    error = await refused(handle, cmd.ChangeCommander(actor=alice, commander=fact(world.bob, member=False)))
    assert error.message == f"@{world.bob.username} must be part of this channel to make them commander."
    error = await refused(handle, cmd.ChangeCommander(actor=alice, commander=fact(world.alice)))
    assert error.message == f"@{world.alice.username} is already the commander."
    error = await refused(handle, cmd.InviteMembers(actor=alice, users=[fact(world.mallory, team=False)]))
    assert error.message.endswith("not in this team; only team members can join the incident channel.")
    outsider = actor(world.carol, member=False)
    error = await refused(handle, cmd.SetItemState(actor=outsider, stage=0, item=0, state="done"))
    # The incident is private: for someone outside it, it does not exist.
    assert error.type == "NotFound"

    await update(handle, cmd.InviteMembers(actor=alice, users=[fact(world.bob, member=False)]))
    await eventually(lambda: state(handle), lambda s: world.bob.id in s.member_ids)
    assert world.bob.id in world.standin.channel_members((await state(handle)).channel_id or "")
    await update(handle, cmd.ChangeCommander(actor=alice, commander=fact(world.bob)))
    admin = Actor(user_id=world.admin.id, username=world.admin.username, is_system_admin=True)
    await update(handle, cmd.SetItemState(actor=admin, stage=0, item=0, state="done"))
    current = await settled(handle)
    assert current.commander_id == world.bob.id
    channel = world.standin.get_channel(current.channel_id or "")
    assert channel is not None
    assert f"Commander @{world.bob.username}" in channel["header"]
    posted = messages(world, current.channel_id or "")
    assert (
        f"@{world.alice.username} changed the commander from @{world.alice.username} to @{world.bob.username}" in posted
    )
    assert f"@{world.alice.username} added @{world.bob.username} to the incident" in posted


async def test_status_updates_and_announcements_reach_channels(world: World) -> None:
    off_topic = world.channels["off-topic"]
    handle = await start(world, book=playbook(world, broadcast_channel_ids=[off_topic["id"]]))
    await ready(world, handle)
    alice = actor(world.alice)
    await update(
        handle,
        cmd.PostStatusUpdate(actor=alice, message="Failing over to the replica", status="identified"),
    )
    town = ChannelFact(
        channel_id=world.town_square["id"], name="town-square", team_id=world.team_id, actor_can_post=True
    )
    await update(handle, cmd.Announce(actor=alice, channels=[town]))
    current = await settled(handle)
    assert current.first_status_update_at is not None
    assert [(u.message, u.status) for u in current.status_updates] == [("Failing over to the replica", "identified")]
    channel_posts = messages(world, current.channel_id or "")
    assert any(m.startswith("#### Status update — **Identified**") for m in channel_posts)
    assert "> Failing over to the replica" in channel_posts[-2]
    broadcast = messages(world, off_topic["id"])[-1]
    assert "status update (identified)" in broadcast
    assert "Failing over to the replica" in broadcast
    assert messages(world, world.town_square["id"])[-1].startswith("#### :rotating_light: Incident: Primary DB down")


async def test_end_completes_the_workflow_and_stays_queryable(world: World) -> None:
    off_topic = world.channels["off-topic"]
    handle = await start(
        world, book=playbook(world, broadcast_channel_ids=[off_topic["id"]], reminder_timer_default_seconds=3600)
    )
    await ready(world, handle)
    result = await update(handle, cmd.EndIncident(actor=actor(world.alice)))
    assert result.message.startswith("Incident ended after")
    final: IncidentState = await handle.result()
    assert final.status == IncidentStatus.ENDED
    assert final.ended_at is not None
    assert final.reminder_due_at is None
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    queried = await state(handle)
    assert queried.status == IncidentStatus.ENDED
    assert messages(world, final.channel_id or "")[-1].startswith(f"@{world.alice.username} ended the incident after")
    assert messages(world, off_topic["id"])[-1].endswith(
        f"ended by @{world.alice.username} after {result.message.split()[-1]}"
    )
    channel = world.standin.get_channel(final.channel_id or "")
    assert channel is not None
    assert channel["header"].startswith(":white_check_mark: Ended")
    attributes = description.typed_search_attributes
    from models import search_attributes as sa

    assert attributes.get(sa.INCIDENT_STATUS) == "ended"
    assert attributes.get(sa.INCIDENT_ENDED_AT) is not None
