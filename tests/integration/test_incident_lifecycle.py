"""Reminders, restart and time to resolution, and what the Temporal Web UI shows."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy

from models import search_attributes as sa
from models.incident import EventType, IncidentConfig, IncidentStart, IncidentState, IncidentStatus
from models.incident_commands import (
    ChangeCommander,
    ChangeStage,
    CommandResult,
    EndIncident,
    InviteMembers,
    PostStatusUpdate,
    RestartIncident,
    SetItemState,
    SetReminder,
)
from models.incident_views import to_record
from service.incident_starts import incident_config, start_options
from tests.harness import World, eventually
from tests.integration.incident_helpers import actor, fact, playbook, ready, settled, start, state, update
from workflows.incident_workflow import IncidentWorkflow


def reminders(current: IncidentState) -> list[Any]:
    return [e for e in current.timeline if e.type == EventType.REMINDER_SENT]


async def history_types(handle: Any) -> list[int]:
    return [event.event_type async for event in handle.fetch_history_events()]


async def test_reminders_fire_once_per_interval_reset_change_and_stop(world: World) -> None:
    handle = await start(world, book=playbook(world, reminder_timer_default_seconds=1))
    first = await eventually(lambda: state(handle), lambda s: len(reminders(s)) >= 2, what="two reminders")
    sent = reminders(first)
    assert (sent[1].at - sent[0].at).total_seconds() >= 1
    assert sent[0].actor_id == "system"
    post = next(p for p in world.standin.posts(first.channel_id or "") if "no status update" in p["message"])
    assert post["message"].startswith(f"@{world.alice.username}, there has been no status update for")
    actions = post["props"]["attachments"][0]["actions"]
    assert [a["name"] for a in actions] == ["Post update", "Snooze 1h"]
    assert actions[0]["integration"]["url"] == f"{world.stack.api_url}/mattermost/action"

    alice = actor(world.alice)
    await update(handle, SetReminder(actor=alice, seconds=3600))
    changed = await settled(handle)
    assert changed.reminder_seconds == 3600
    assert changed.reminder_due_at is not None
    assert (changed.reminder_due_at - changed.timeline[-1].at).total_seconds() == 3600
    await update(handle, PostStatusUpdate(actor=alice, message="Still on it"))
    reset = await settled(handle)
    assert reset.reminder_due_at is not None
    assert (reset.reminder_due_at - reset.status_updates[-1].at).total_seconds() == 3600

    await update(handle, SetReminder(actor=alice, seconds=0))
    off = await settled(handle)
    assert off.reminder_due_at is None
    types = await history_types(handle)
    last_update = max(
        i for i, t in enumerate(types) if t == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
    )
    assert HistoryEventType.EVENT_TYPE_TIMER_STARTED not in types[last_update:], "no reminder timer once it is off"

    await update(handle, SetReminder(actor=alice, seconds=1))
    await eventually(lambda: state(handle), lambda s: len(reminders(s)) > len(reminders(off)), what="reminders again")
    await update(handle, EndIncident(actor=alice))
    final: IncidentState = await handle.result()
    assert final.reminder_due_at is None
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_restart_reopens_with_full_state_and_counts_only_ongoing_time(world: World) -> None:
    handle = await start(world, book=playbook(world))
    await ready(world, handle)
    alice = actor(world.alice)
    await update(handle, SetItemState(actor=alice, stage=0, item=0, state="done"))
    await update(handle, EndIncident(actor=alice))
    ended: IncidentState = await handle.result()
    first_end = ended.ended_at
    assert first_end is not None
    record = to_record(ended, first_end)
    assert record.time_to_resolution_seconds == round((first_end - ended.started_at).total_seconds())

    # Restart: a new run of the same workflow id, started from the ended state (update-with-start).
    resume = IncidentStart.resuming(ended, alice)
    stack = world.stack
    operation = WithStartWorkflowOperation(
        IncidentWorkflow.run,
        resume,
        **start_options(stack.settings, resume, ended.playbook, "Team"),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    result = await stack.temporal.execute_update_with_start_workflow(
        "restart_incident",
        RestartIncident(actor=alice),
        start_workflow_operation=operation,
        result_type=CommandResult,
    )
    assert result.message == "Incident restarted."
    restarted_handle = stack.temporal.get_workflow_handle_for(IncidentWorkflow.run, handle.id)
    reopened = await settled(restarted_handle)
    assert reopened.status == IncidentStatus.ONGOING
    assert reopened.checklists[0].items[0].state == "done"
    assert [e.type for e in reopened.timeline][-2:] == [EventType.ENDED, EventType.RESTARTED]
    assert to_record(reopened, reopened.started_at).time_to_resolution_seconds is None
    assert (await restarted_handle.describe()).status == WorkflowExecutionStatus.RUNNING

    await update(restarted_handle, EndIncident(actor=alice))
    final: IncidentState = await restarted_handle.result()
    assert final.ended_at is not None
    assert final.ended_at > first_end
    assert len(final.periods) == 2
    ongoing = sum(((p.ended_at or final.ended_at) - p.started_at).total_seconds() for p in final.periods)
    assert to_record(final, final.ended_at).time_to_resolution_seconds == round(ongoing)
    assert to_record(final, final.ended_at).duration_seconds == round(
        (final.ended_at - final.started_at).total_seconds()
    )


async def runs_of(world: World, workflow_id: str) -> list[Any]:
    return [e async for e in world.stack.temporal.list_workflows(f"WorkflowId = '{workflow_id}'")]


async def incident_status_of_runs(world: World, workflow_id: str) -> list[str]:
    runs = await runs_of(world, workflow_id)
    return [r.typed_search_attributes.get(sa.INCIDENT_STATUS) or "" for r in runs]


async def test_a_restart_inside_the_reopen_window_reopens_the_same_run(world: World) -> None:
    """The Web UI never lists an `ended` run beside a restarted incident's live one: an ended
    incident's run stays open (idle) for REOPEN_WINDOW_SECONDS, and a restart reopens it."""
    book = playbook(world)
    config = incident_config(world.stack.settings, "x").model_copy(update={"reopen_window_seconds": 3600})
    handle = await start(world, book=book, config=config)
    await ready(world, handle)
    alice = actor(world.alice)
    first_run = (await handle.describe()).run_id
    await update(handle, EndIncident(actor=alice))
    await eventually(lambda: incident_status_of_runs(world, handle.id), lambda s: s == ["ended"], what="ended")
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    # The API's restart (update-with-start, USE_EXISTING) reaches the open run.
    resume = IncidentStart.resuming(await state(handle), alice)
    operation = WithStartWorkflowOperation(
        IncidentWorkflow.run,
        resume,
        **start_options(world.stack.settings, resume, book, "Team"),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    result = await world.stack.temporal.execute_update_with_start_workflow(
        "restart_incident",
        RestartIncident(actor=alice),
        start_workflow_operation=operation,
        result_type=CommandResult,
    )
    assert result.message == "Incident restarted."
    reopened = await settled(handle)
    assert reopened.status == IncidentStatus.ONGOING
    assert (await handle.describe()).run_id == first_run
    # One run, listed as what the incident is now: nothing says `ended` any more.
    assert await eventually(
        lambda: incident_status_of_runs(world, handle.id), lambda s: s == ["ongoing"], what="ongoing"
    ) == ["ongoing"]
    assert [e.type for e in reopened.timeline][-2:] == [EventType.ENDED, EventType.RESTARTED]


async def test_the_reopen_window_closes_the_run_when_it_is_over(world: World) -> None:
    config = incident_config(world.stack.settings, "x").model_copy(update={"reopen_window_seconds": 1})
    handle = await start(world, book=playbook(world), config=config)
    await ready(world, handle)
    await update(handle, EndIncident(actor=actor(world.alice)))
    final: IncidentState = await handle.result()
    assert final.status == IncidentStatus.ENDED
    assert final.ended_at is not None
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert description.close_time is not None
    assert (description.close_time - final.ended_at).total_seconds() >= 1
    # One wait for the window (the others gather changes for the checklist post and webhooks).
    windows = [
        event.timer_started_event_attributes
        async for event in handle.fetch_history_events()
        if event.event_type == HistoryEventType.EVENT_TYPE_TIMER_STARTED
        and b"reopens it" in event.user_metadata.summary.data
    ]
    assert len(windows) == 1
    assert await incident_status_of_runs(world, handle.id) == ["ended"]


async def test_web_ui_summary_details_search_attributes_and_event_summaries(world: World) -> None:
    handle = await start(world, book=playbook(world))
    current = await ready(world, handle)
    description = await handle.describe()
    assert (
        await description.static_summary()
        == f"Primary DB down · {world.team['display_name']} · playbook Database outage"
    )
    alice = actor(world.alice)
    await update(handle, SetItemState(actor=alice, stage=0, item=0, state="done"))
    await update(handle, InviteMembers(actor=alice, users=[fact(world.bob, member=False)]))
    await eventually(lambda: state(handle), lambda s: world.bob.id in s.member_ids)
    await update(handle, ChangeCommander(actor=alice, commander=fact(world.bob)))
    await update(handle, ChangeStage(actor=alice, direction="next", force=True))
    await settled(handle)

    metadata = await handle.query("__temporal_workflow_metadata")
    details = metadata.current_details
    assert f"**Status:** ongoing · **Commander:** @{world.bob.username} · **Stage:** 2/2 Mitigate" in details
    assert "#### 1. Triage — 1/2 done\n- [x] Page DBA\n- [ ] Logs" in details
    assert "#### 2. Mitigate (active) — 0/1 done" in details

    async def attributes() -> Any:
        return (await handle.describe()).typed_search_attributes

    found = await eventually(attributes, lambda a: a.get(sa.INCIDENT_STAGE) == "Mitigate", what="stage attribute")
    assert found.get(sa.INCIDENT_TEAM_ID) == world.team_id
    assert found.get(sa.INCIDENT_STATUS) == "ongoing"
    assert found.get(sa.INCIDENT_COMMANDER_ID) == world.bob.id
    assert found.get(sa.INCIDENT_PLAYBOOK_ID) == current.playbook_id
    assert found.get(sa.INCIDENT_CHANNEL_ID) == current.channel_id
    assert set(found.get(sa.INCIDENT_MEMBER_IDS) or []) == {world.alice.id, world.bob.id}
    assert found.get(sa.INCIDENT_STARTED_AT) == current.started_at
    assert found.get(sa.INCIDENT_NAME) == "Primary DB down"
    assert found.get(sa.INCIDENT_PUBLIC) is False
    listed = [
        e.id
        async for e in world.stack.temporal.list_workflows(
            f"IncidentTeamId = '{world.team_id}' AND IncidentCommanderId = '{world.bob.id}' "
            "AND IncidentStage = 'Mitigate'"
        )
    ]
    assert listed == [handle.id]

    summaries = [
        json.loads(event.user_metadata.summary.data)
        async for event in handle.fetch_history_events()
        if event.user_metadata.HasField("summary")
    ]
    assert f"create channel ~{current.channel_name}" in summaries
    assert "post to the incident channel" in summaries
    assert f"add @{world.alice.username}" in summaries


# --------------------------------------------------------------------------- operators in the Web UI


def window(world: World, seconds: float) -> IncidentConfig:
    return incident_config(world.stack.settings, "x").model_copy(update={"reopen_window_seconds": seconds})


async def stats_of_team(world: World) -> dict[str, Any]:
    response = await world.api(world.admin).get("/api/v1/stats", params={"team_id": world.team_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_operators_cancellation_ends_the_incident_on_record_and_loses_nothing(world: World) -> None:
    handle = await start(world, book=playbook(world), config=window(world, 3600))
    opened = await ready(world, handle)
    opened_run = (await handle.describe()).run_id
    channel_id = opened.channel_id or ""
    alice = actor(world.alice)
    # A post under way when the request comes: the effects in flight are carried out all the same.
    world.standin.add_fault("POST", "/api/v4/posts", delay=1.0, times=1, channel_id=channel_id)
    await update(handle, PostStatusUpdate(actor=alice, message="Draining"))
    await handle.cancel(reason="stuck, says the on-call")

    ended = await eventually(
        lambda: state(handle), lambda s: s.status == IncidentStatus.ENDED and not s.outbox, what="the end"
    )
    [cancelled] = [e for e in ended.timeline if e.type == EventType.CANCELLED]
    assert cancelled.summary.startswith(
        "A Temporal operator cancelled the incident's workflow (stuck, says the on-call): the incident ended after"
    )
    assert cancelled.details["ended_it"] is True
    posts = [p["message"] for p in world.standin.posts(channel_id)]
    assert [m for m in posts if m.startswith("#### Status update")] == [
        f"#### Status update\nfrom @{world.alice.username}\n\n> Draining"
    ]
    assert posts[-1] == cancelled.summary
    checklist = next(p for p in world.standin.posts(channel_id) if p["id"] == ended.post_ids["opening"])
    assert ":white_check_mark: **Ended**" in checklist["message"]
    # Like any ended incident: its run waits in the reopen window, and the statistics count it ended once.
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    counted = await eventually(lambda: stats_of_team(world), lambda s: s["ended"] == 1, what="statistics")
    assert (counted["total"], counted["ongoing"]) == (1, 0)

    # Temporal keeps one cancellation request per run: a second one is accepted and changes nothing.
    await handle.cancel(reason="again")
    types = await history_types(handle)
    assert types.count(HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED) == 1
    await update(handle, RestartIncident(actor=alice))
    reopened = await settled(handle)
    assert reopened.status == IncidentStatus.ONGOING
    assert [e.type for e in reopened.timeline].count(EventType.CANCELLED) == 1
    assert (await handle.describe()).run_id == opened_run


async def test_a_cancellation_while_the_channel_is_being_created_opens_it_once_then_ends(world: World) -> None:
    before = len(world.standin.faults_taken)
    world.standin.add_fault("POST", "/api/v4/channels", delay=1.0, times=1, team_id=world.team_id)
    handle = await start(world, book=playbook(world), name="Cancelled early")
    await eventually(lambda: faults_taken(world), lambda n: n > before, what="the channel's creation under way")
    await handle.cancel()
    final: IncidentState = await handle.result()
    assert final.status == IncidentStatus.ENDED
    [channel] = [c for c in world.standin.channels(world.team_id) if c["display_name"] == "Cancelled early"]
    assert final.channel_id == channel["id"]
    posts = [p["message"] for p in world.standin.posts(channel["id"])]
    assert posts[0].startswith("#### :rotating_light: Incident: Cancelled early")
    assert posts[-1].startswith("A Temporal operator cancelled the incident's workflow: the incident ended after")
    assert set(world.standin.channel_members(channel["id"])) >= {world.alice.id}
    counted = await eventually(lambda: stats_of_team(world), lambda s: s["ended"] == 1, what="statistics")
    assert counted["total"] == 1


async def faults_taken(world: World) -> int:
    return len(world.standin.faults_taken)


async def test_an_ended_incident_waiting_in_its_reopen_window_says_so_in_the_web_ui(world: World) -> None:
    handle = await start(world, book=playbook(world), config=window(world, 30))
    await ready(world, handle)
    alice = actor(world.alice)
    await update(handle, EndIncident(actor=alice))
    ended = await settled(handle)
    assert ended.ended_at is not None
    until = f"{ended.ended_at + timedelta(seconds=30):%Y-%m-%d %H:%M:%S} UTC"
    told = (
        f"Ended; /incident restart reopens it in this run until {until}. The workflow stays Running until "
        "then, for that alone, then completes."
    )
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert (await description.memo())["incident_status"] == told
    metadata = await handle.query("__temporal_workflow_metadata")
    assert metadata.current_details.splitlines()[0] == f"**{told}**"
    timers = [
        json.loads(event.user_metadata.summary.data)
        async for event in handle.fetch_history_events()
        if event.event_type == HistoryEventType.EVENT_TYPE_TIMER_STARTED and event.user_metadata.HasField("summary")
    ]
    assert timers[-1] == f"incident ended · /incident restart reopens it in this run until {until}"


async def test_an_incident_terminated_by_mistake_is_brought_back_by_a_reset_with_its_whole_state(world: World) -> None:
    handle = await start(world, book=playbook(world))
    await ready(world, handle)
    alice = actor(world.alice)
    await update(handle, SetItemState(actor=alice, stage=0, item=0, state="done"))
    before = await settled(handle)
    terminated_run = (await handle.describe()).run_id
    await handle.terminate(reason="clicked by mistake")
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED

    # What `temporal workflow reset --type LastWorkflowTask` (or the Web UI's Reset) sends.
    last_task = max(
        [
            event.event_id
            async for event in handle.fetch_history_events()
            if event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        ]
    )
    temporal = world.stack.temporal
    reset = await temporal.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal.namespace,
            workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=terminated_run),
            reason="terminated by mistake",
            workflow_task_finish_event_id=last_task,
            request_id=str(uuid.uuid4()),
        )
    )
    back = temporal.get_workflow_handle_for(IncidentWorkflow.run, handle.id)
    result = await update(back, SetItemState(actor=alice, stage=0, item=1, state="done"))
    assert result.message.startswith("Marked")
    after = await settled(back)
    assert [item.state for item in after.checklists[0].items] == ["done", "done"]
    assert after.timeline[: len(before.timeline)] == before.timeline
    assert after.post_ids == before.post_ids
    description = await back.describe()
    assert (description.run_id, description.status) == (reset.run_id, WorkflowExecutionStatus.RUNNING)
