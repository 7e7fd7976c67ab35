"""Record the event histories of representative workflows (`make histories`).

`tests/test_replay.py` replays every history saved here on each test run, so a change to
a workflow that would break running incidents fails the suite. Re-record only when a
change is meant to be incompatible and is released with `workflow.patched` or a new
workflow version; otherwise fix the change.

While an incident is recorded, its live state is sampled (the workflow's query, each time it
changes) and saved beside its history in `live-states/<name>.json`: `tests/test_rebuild.py`
rebuilds the incident from its history at each sample's time and finds that very state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import TimeSkipper

from activities.stats_activities import StatsActivities
from models import incident_commands as cmd
from models.common import ChannelFact, new_short_id
from models.conditions import StepCondition
from models.custom_fields import FieldSpec, FieldType
from models.due_dates import ItemDue
from models.incident import EventType, IncidentStart, IncidentState, IncidentStatus
from models.paging import EscalationPolicy, EscalationTier, PageTarget
from models.pending_commands import LateReply, PendingCommand
from models.playbook import (
    ArchivePlaybook,
    ChecklistItemSpec,
    OpenPlaybook,
    PlaybookCommand,
    PlaybookEdit,
    PlaybookFacts,
    PlaybookStart,
    StageSpec,
    UpdatePlaybook,
    playbook_workflow_id,
)
from models.retrospective import RetrospectiveSpec
from models.schedules import ChangeSchedule, DeleteSchedule, Rotation, Schedule, ScheduleState, schedule_workflow_id
from models.severity import DEFAULT_LEVELS, SeverityLevelSpec, numbered
from models.signed_out_sessions import SignedOutSessions, SignOut, session_hash, signed_out_workflow_id
from models.stats import FactsStatus, IncidentFacts, stats_month, stats_workflow_id
from models.team_settings import SetSeverityLevels, TeamSettings, team_settings_workflow_id
from process_exit import exit_process
from service.incident_starts import incident_config, start_options
from tests.harness import World, eventually, make_world, own_server, own_worker, short_history_server, start_stack
from tests.histories import RECORDING_SIGNING_SECRET
from tests.integration.incident_helpers import actor, add_steps, fact, playbook, settled, state
from tests.integration.incident_helpers import start as start_incident
from workflows.command_outcome_workflow import CommandOutcomeWorkflow, outcome_workflow_id
from workflows.incident_workflow import IncidentWorkflow
from workflows.playbook_workflow import PlaybookWorkflow
from workflows.schedule_workflow import ScheduleWorkflow
from workflows.signed_out_sessions_workflow import SignedOutSessionsWorkflow
from workflows.team_settings_workflow import TeamSettingsWorkflow

HERE = Path(__file__).parent
LIVE_STATES = HERE / "live-states"
# How often a watched incident's state is read while it is recorded.
SAMPLE_SECONDS = 0.025


class Watcher:
    """Samples the live state of the incidents being recorded: each distinct state, with the
    time just before the query that read it (`at`) and just after (`until`). A workflow task that
    started in between may or may not be in it; the rebuild test allows for either."""

    def __init__(self) -> None:
        self.samples: dict[str, list[dict[str, Any]]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def watch(self, client: Client, workflow_id: str) -> None:
        if workflow_id not in self.tasks:
            self.samples[workflow_id] = []
            self.tasks[workflow_id] = asyncio.create_task(self._sample(client, workflow_id))

    async def _sample(self, client: Client, workflow_id: str) -> None:
        handle = client.get_workflow_handle(workflow_id)
        samples = self.samples[workflow_id]
        last = ""
        while True:
            at = datetime.now(UTC)
            try:
                live: IncidentState = await handle.query(IncidentWorkflow.get_state)
            except Exception:  # not started yet, or between runs: the next sample
                await asyncio.sleep(SAMPLE_SECONDS)
                continue
            until = datetime.now(UTC)
            dumped = live.model_dump(mode="json")
            text = json.dumps(dumped, sort_keys=True)
            if text != last:
                samples.append({"at": at.isoformat(), "until": until.isoformat(), "state": dumped})
                last = text
            await asyncio.sleep(SAMPLE_SECONDS)

    async def stop(self, workflow_id: str) -> list[dict[str, Any]] | None:
        task = self.tasks.pop(workflow_id, None)
        if task is None:
            return None
        await asyncio.sleep(SAMPLE_SECONDS * 4)  # the last state, read once more
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return self.samples.pop(workflow_id)

    async def stop_all(self) -> None:
        for workflow_id in list(self.tasks):
            await self.stop(workflow_id)


WATCHER = Watcher()


async def start(world: World, **fields: Any) -> WorkflowHandle[Any, Any]:
    """An incident started directly on Temporal (`incident_helpers.start`), watched while recorded."""
    handle = await start_incident(world, **fields)
    WATCHER.watch(fields.get("client") or world.stack.temporal, handle.id)
    return handle


async def save(client: Client, handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Every run of the workflow, oldest first: `<name>.<n>.json` (and an incident's sampled
    live states: `live-states/<name>.json`)."""
    samples = await WATCHER.stop(handle.id)
    runs = sorted([e async for e in client.list_workflows(f"WorkflowId = '{handle.id}'")], key=lambda e: e.start_time)
    for n, run in enumerate(runs, start=1):
        history = await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history()
        (HERE / f"{name}.{n}.json").write_text(history.to_json())
        print(f"saved {name}.{n}.json ({len(history.events)} events)")
    if samples:
        LIVE_STATES.mkdir(exist_ok=True)
        (LIVE_STATES / f"{name}.json").write_text(json.dumps(samples, separators=(",", ":")) + "\n")
        print(f"saved live-states/{name}.json ({len(samples)} states)")


async def full_incident(world: World) -> WorkflowHandle[Any, Any]:
    off_topic = world.channels["off-topic"]
    book = playbook(world, broadcast_channel_ids=[off_topic["id"]], reminder_timer_default_seconds=1)
    handle = await start(world, book=book, invited=[fact(world.carol, member=False), fact(world.mallory, member=False)])
    alice = actor(world.alice)
    await eventually(lambda: state(handle), lambda s: any(e.type == EventType.REMINDER_SENT for e in s.timeline))
    commands: list[tuple[Any, Any]] = [
        ("set_item_state", cmd.SetItemState(actor=alice, stage=0, item=0, state="in_progress")),
        ("set_item_state", cmd.SetItemState(actor=alice, stage=0, item=0, state="toggle")),
        ("assign_item", cmd.AssignItem(actor=alice, stage=0, item=1, assignee=fact(world.carol))),
        ("add_item", cmd.AddItem(actor=alice, stage=0, title="Tell support")),
        ("edit_item", cmd.EditItem(actor=alice, stage=0, item=2, title="Tell support now")),
        ("move_item", cmd.MoveItem(actor=alice, stage=0, item=2, to_position=0)),
        ("remove_item", cmd.RemoveItem(actor=alice, stage=0, item=0)),
        ("change_stage", cmd.ChangeStage(actor=alice, direction="next", force=True)),
        ("run_item_command", cmd.RunItemCommand(actor=alice, stage=1, item=0)),
        ("invite_members", cmd.InviteMembers(actor=alice, users=[fact(world.bob, member=False)])),
        ("change_commander", cmd.ChangeCommander(actor=alice, commander=fact(world.carol))),
        (
            "post_status_update",
            cmd.PostStatusUpdate(actor=alice, message="Failing over", status="identified"),
        ),
        ("snooze_reminder", cmd.SnoozeReminder(actor=alice, seconds=3600)),
        (
            "announce",
            cmd.Announce(
                actor=alice,
                channels=[
                    ChannelFact(
                        channel_id=world.town_square["id"],
                        name="town-square",
                        team_id=world.team_id,
                        actor_can_post=True,
                    )
                ],
            ),
        ),
        ("set_reminder", cmd.SetReminder(actor=alice, seconds=0)),
        ("end_incident", cmd.EndIncident(actor=alice)),
    ]
    for update, command in commands:
        await handle.execute_update(update, command)
    await handle.result()
    return handle


async def restarted_incident(world: World) -> WorkflowHandle[Any, Any]:
    handle = await start(world, book=playbook(world))
    alice = actor(world.alice)
    await settled(handle)
    await handle.execute_update("end_incident", cmd.EndIncident(actor=alice))
    ended: IncidentState = await handle.result()
    resume = IncidentStart.resuming(ended, alice)
    operation = WithStartWorkflowOperation(
        IncidentWorkflow.run,
        resume,
        **start_options(world.stack.settings, resume, ended.playbook, "Team"),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await world.stack.temporal.execute_update_with_start_workflow(
        "restart_incident",
        cmd.RestartIncident(actor=alice),
        start_workflow_operation=operation,
        result_type=cmd.CommandResult,
    )
    again = world.stack.temporal.get_workflow_handle_for(IncidentWorkflow.run, handle.id)
    await settled(again)
    await again.execute_update("end_incident", cmd.EndIncident(actor=alice))
    await again.result()
    return again


async def reopened_incident(world: World) -> WorkflowHandle[Any, Any]:
    """Ended, restarted inside the reopen window (the same run), ended again; still open."""
    book = playbook(world)
    config = incident_config(world.stack.settings, "x").model_copy(update={"reopen_window_seconds": 3600})
    handle = await start(world, book=book, config=config)
    alice = actor(world.alice)
    await settled(handle)
    await handle.execute_update("end_incident", cmd.EndIncident(actor=alice))
    await handle.execute_update("restart_incident", cmd.RestartIncident(actor=alice))
    await settled(handle)
    await handle.execute_update("end_incident", cmd.EndIncident(actor=alice))
    await eventually(lambda: state(handle), lambda s: s.status == IncidentStatus.ENDED and not s.outbox)
    return handle


async def failed_incident(world: World) -> WorkflowHandle[Any, Any]:
    world.standin.add_fault("POST", "/api/v4/channels", status=403, times=1)
    handle = await start(world, name="Cannot open")
    result: IncidentState = await handle.result()
    assert result.status == IncidentStatus.FAILED
    return handle


async def continued_incident(world: World) -> None:
    async with short_history_server(world, 60) as client:
        handle = await start(world, client=client)
        alice = actor(world.alice)
        await add_steps(handle, alice, 8)
        await eventually(lambda: state(handle), lambda s: not s.outbox and s.channel_id is not None)
        await handle.execute_update("end_incident", cmd.EndIncident(actor=alice))
        await handle.result()
        await save(client, handle, "incident-continued-as-new")


async def edited_playbook(world: World) -> WorkflowHandle[Any, Any]:
    """Created as the service creates one (update-with-start, its rules run on the facts),
    edited (the rules again), archived."""
    now = datetime.now(UTC)
    book = playbook(world)
    alice = actor(world.alice)
    facts = PlaybookFacts(users={world.alice.id: fact(world.alice)}, reminder_min_seconds=1)
    start = WithStartWorkflowOperation(
        PlaybookWorkflow.run,
        PlaybookStart(
            playbook=book,
            edits=[PlaybookEdit(version=1, editor_id=world.alice.id, at=now, summary=["created"])],
            creator=PlaybookCommand(actor=alice, is_team_member=True),
            facts=facts,
        ),
        id=playbook_workflow_id(book.id),
        task_queue=world.stack.settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    await world.stack.temporal.execute_update_with_start_workflow(
        PlaybookWorkflow.open_playbook, OpenPlaybook(), start_workflow_operation=start
    )
    handle = world.stack.temporal.get_workflow_handle_for(PlaybookWorkflow.run, playbook_workflow_id(book.id))
    spec = book.model_copy(update={"title": "Database outage v2"})
    await handle.execute_update(
        PlaybookWorkflow.update_playbook,
        UpdatePlaybook(actor=alice, is_team_member=True, spec=spec, expected_version=1, facts=facts),
    )
    await handle.execute_update(PlaybookWorkflow.archive_playbook, ArchivePlaybook(actor=alice, is_team_member=True))
    await handle.result()
    return handle


async def refused_playbook(world: World) -> WorkflowHandle[Any, Any]:
    """A creation its rules refuse (a member outside the team): nothing is made."""
    book = playbook(world, member_ids=[world.alice.id, world.mallory.id])
    facts = PlaybookFacts(users={world.alice.id: fact(world.alice), world.mallory.id: fact(world.mallory, team=False)})
    start = WithStartWorkflowOperation(
        PlaybookWorkflow.run,
        PlaybookStart(
            playbook=book,
            edits=[],
            creator=PlaybookCommand(actor=actor(world.alice), is_team_member=True),
            facts=facts,
        ),
        id=playbook_workflow_id(book.id),
        task_queue=world.stack.settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    with contextlib.suppress(WorkflowUpdateFailedError):
        await world.stack.temporal.execute_update_with_start_workflow(
            PlaybookWorkflow.open_playbook, OpenPlaybook(), start_workflow_operation=start
        )
    handle = world.stack.temporal.get_workflow_handle_for(PlaybookWorkflow.run, playbook_workflow_id(book.id))
    await handle.result()
    return handle


async def cancelled_incident(world: World) -> WorkflowHandle[Any, Any]:
    """An operator's *Request Cancellation* while the incident runs: it ends on record."""
    handle = await start(world, book=playbook(world))
    await settled(handle)
    await handle.execute_update("post_status_update", cmd.PostStatusUpdate(actor=actor(world.alice), message="Looking"))
    await handle.cancel()
    await handle.result()
    return handle


async def command_outcome(world: World) -> WorkflowHandle[Any, Any]:
    """A command whose caller stopped waiting: its follow-up asks the incident and tells the person."""
    incident = await start(world, book=playbook(world))
    await settled(incident)
    command = cmd.PostStatusUpdate(
        actor=actor(world.alice), message="Late", request=cmd.RequestKey(id="recorded-late-update", fingerprint="f")
    )
    now = datetime.now(UTC)
    pending = PendingCommand(
        incident_id=incident.id.removeprefix("incident-"),
        update="post_status_update",
        update_id="recorded-late-update",
        command=command.model_dump(mode="json"),
        asked="`/incident update Late`",
        reply=LateReply(user_id=world.alice.id),
        received_at=now,
        expires_at=now + timedelta(minutes=30),
    )
    await WATCHER.stop(incident.id)  # only the command's outcome is saved
    handle = await world.stack.temporal.start_workflow(
        CommandOutcomeWorkflow.run,
        pending,
        id=outcome_workflow_id(pending.update_id),
        task_queue=world.stack.settings.temporal_task_queue,
    )
    await handle.result()
    return handle


async def signed_out_sessions(world: World) -> WorkflowHandle[Any, Any]:
    hashed = session_hash("recorded-session")
    start = WithStartWorkflowOperation(
        SignedOutSessionsWorkflow.run,
        SignedOutSessions(shard=hashed[0]),
        id=f"recorded-{signed_out_workflow_id(hashed)}",
        task_queue=world.stack.settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await world.stack.temporal.execute_update_with_start_workflow(
        SignedOutSessionsWorkflow.end_session,
        SignOut(session_hash=hashed, expires_at=int(datetime.now(UTC).timestamp()) + 3600),
        start_workflow_operation=start,
    )
    recorded = await start.workflow_handle()
    assert await recorded.query(SignedOutSessionsWorkflow.has_ended, hashed)
    await recorded.terminate("recorded for replay tests")
    return recorded


async def team_statistics(world: World) -> WorkflowHandle[Any, Any]:
    reporter = StatsActivities(world.stack.temporal, task_queue=world.stack.settings.temporal_task_queue)
    started = datetime(2025, 6, 1, 9, tzinfo=UTC)
    for n in range(5):
        await reporter.report_incident_facts(
            IncidentFacts(
                incident_id=new_short_id(),
                team_id=world.team_id,
                playbook_id="pb",
                status=FactsStatus.ENDED if n % 2 else FactsStatus.ONGOING,
                started_at=started + timedelta(hours=n),
                ended_at=started + timedelta(hours=n, minutes=30) if n % 2 else None,
                time_to_resolution_seconds=1800 if n % 2 else None,
                participant_ids=[world.alice.id],
            )
        )
    handle = world.stack.temporal.get_workflow_handle(stats_workflow_id(world.team_id, stats_month(started)))
    await handle.terminate("recorded for replay tests")
    return handle


async def alert_incident(world: World) -> WorkflowHandle[Any, Any]:
    """An integration made, its token rotated, and an incident it opened: alerts firing, joining,
    a repeat, resolving, and the automatic end called off by a note."""
    tess = world.new_user("tess", in_team=False)
    world.standin.add_team_member(world.team_id, tess.id, roles="team_user team_admin")
    api = world.api(tess)
    made = await api.post(
        "/api/v1/integrations",
        json={
            "team_id": world.team_id,
            "kind": "generic",
            "name": "recorded",
            "routes": [{"match": {"service": "/check.*/"}, "auto_end_after_minutes": 60}],
        },
    )
    assert made.status_code == 201, made.text
    integration = made.json()
    rotated = (await api.post(f"/api/v1/integrations/{integration['id']}/token")).json()

    async def send(body: dict[str, Any]) -> str:
        sent = await api.post(integration["url"], json=body, headers={"Authorization": f"Bearer {rotated['token']}"})
        assert sent.status_code == 200, sent.text
        return str(sent.json()["incident_id"])

    labels = {"service": "checkout"}
    incident_id = await send({"title": "Checkout errors", "group_key": "checkout", "labels": {**labels, "n": "1"}})
    WATCHER.watch(world.stack.temporal, f"incident-{incident_id}")
    await send({"title": "Checkout errors", "group_key": "checkout", "labels": {**labels, "n": "2"}})
    await send({"title": "Checkout errors", "group_key": "checkout", "labels": {**labels, "n": "2"}})
    for n in ("1", "2"):
        await send(
            {"title": "Checkout errors", "group_key": "checkout", "status": "resolved", "labels": {**labels, "n": n}}
        )
    handle = world.stack.temporal.get_workflow_handle(f"incident-{incident_id}")
    await settled(handle)
    noted = await api.post(f"/api/v1/incidents/{incident_id}/notes", json={"text": "Flapped after the deploy"})
    assert noted.status_code == 200, noted.text
    ended = await api.post(f"/api/v1/incidents/{incident_id}/end")
    assert ended.status_code == 200, ended.text
    await handle.result()
    await save(
        world.stack.temporal,
        world.stack.temporal.get_workflow_handle(f"integration-{integration['id']}"),
        "integration-rotated",
    )
    return handle


async def webhook_deliveries(world: World) -> WorkflowHandle[Any, Any]:
    """A playbook's webhook (made, rotated) receiving an incident's events: one refused (410),
    the next delivered; the subscriptions' and the incident's webhooks workflows are saved too."""
    from tests.webhook_receiver import WebhookReceiver

    alice = world.alice
    async with WebhookReceiver() as receiver, world.api(alice) as api:
        made = await api.post(
            "/api/v1/playbooks", json={"team_id": world.team_id, "title": "Hooks", "checklists": [{"title": "Triage"}]}
        )
        assert made.status_code == 201, made.text
        playbook_id = made.json()["id"]
        base = f"/api/v1/playbooks/{playbook_id}/webhooks"
        hook = await api.post(base, json={"url": receiver.url, "events": ["*"], "description": "status page"})
        assert hook.status_code == 201, hook.text
        rotated = await api.post(f"{base}/{hook.json()['id']}/secret")
        receiver.secret = rotated.json()["secret"]
        receiver.answer(410, "gone")
        started = await api.post(
            "/api/v1/incidents", json={"team_id": world.team_id, "name": "Hooked", "playbook_id": playbook_id}
        )
        assert started.status_code == 201, started.text
        incident_id = started.json()["id"]
        WATCHER.watch(world.stack.temporal, f"incident-{incident_id}")
        await receiver.wait_for(lambda r: len(r.requests) >= 1, what="the refused start")
        receiver.accept()
        updated = await api.post(f"/api/v1/incidents/{incident_id}/status-updates", json={"message": "Looking"})
        assert updated.status_code == 200, updated.text
        await receiver.wait_for(
            lambda r: any(s.payload["type"] == "incident.status_updated" for s in r.deliveries), what="the update"
        )
        ended = await api.post(f"/api/v1/incidents/{incident_id}/end")
        assert ended.status_code == 200, ended.text
        await receiver.wait_for(
            lambda r: any(s.payload["type"] == "incident.ended" for s in r.deliveries), what="the end"
        )
    handle = world.stack.temporal.get_workflow_handle(f"incident-{incident_id}")
    await handle.result()
    client = world.stack.temporal
    await save(client, client.get_workflow_handle(f"webhooks-playbook-{playbook_id}"), "webhook-subscriptions")
    await save(client, client.get_workflow_handle(f"incident-webhooks-{incident_id}"), "incident-webhooks")
    return handle


async def schedule_handoffs(world: World) -> WorkflowHandle[Any, Any]:
    """A schedule whose time skips past a handoff (told by direct message and in a channel),
    then changed and deleted; recorded on a server of its own, where time may skip."""
    now = datetime.now(UTC)
    handoff = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    rotation = Rotation(
        members=[world.alice.id, world.bob.id], shift="1d", handoff=handoff.strftime("%H:%M"), start=handoff.date()
    )
    schedule = Schedule(
        id=new_short_id(),
        team_id=world.team_id,
        name="recorded",
        rotations=[rotation],
        channel_id=world.town_square["id"],
    )
    skipping = {"frontend.WorkflowTimeSkippingEnabled": "true"}
    async with own_server(dynamic_config=skipping) as (_, client), own_worker(world, client):
        handle = await client.start_workflow(
            ScheduleWorkflow.run,
            ScheduleState(schedule=schedule, told_until=now),
            id=schedule_workflow_id(schedule.id),
            task_queue=world.stack.settings.temporal_task_queue,
        )
        await TimeSkipper(client).fast_forward(handle, timedelta(days=1, hours=3))
        await eventually(lambda: _told(world), what="the handoff told")
        changed = schedule.model_copy(update={"name": "recorded-again"})
        await handle.execute_update(ScheduleWorkflow.update_schedule, ChangeSchedule(schedule=changed))
        await handle.execute_update(ScheduleWorkflow.delete_schedule, DeleteSchedule(actor_id=world.alice.id))
        await handle.result()
        await save(client, handle, "schedule-handoffs")
    return handle


async def paged_incident(world: World) -> WorkflowHandle[Any, Any]:
    """A playbook's escalation: tier 1 not acknowledged in time, tier 2 paged and acknowledging,
    a page by hand declined; then the end."""
    bob, carol, dave = world.bob, world.carol, world.dave
    escalation = EscalationPolicy(
        tiers=[
            EscalationTier(targets=[PageTarget(user_id=bob.id)], ack_within="5s"),
            EscalationTier(targets=[PageTarget(user_id=carol.id)], ack_within="1h"),
        ]
    )
    handle = await start(world, book=playbook(world, escalation=escalation))
    paged = await eventually(lambda: state(handle), lambda s: len(s.pages) >= 2 and s.pages[1].sent, what="tier 2")
    await handle.execute_update(
        "acknowledge_page", cmd.AcknowledgePage(actor=actor(carol, member=False), page_id=paged.pages[1].id)
    )
    await handle.execute_update("page", cmd.PageSomeone(actor=actor(world.alice), target=fact(dave), reason="DBA"))
    by_hand = await eventually(lambda: state(handle), lambda s: len(s.pages) >= 3 and s.pages[2].sent, what="dave")
    await handle.execute_update("decline_page", cmd.DeclinePage(actor=actor(dave), page_id=by_hand.pages[2].id))
    await settled(handle)
    await handle.execute_update("end_incident", cmd.EndIncident(actor=actor(world.alice)))
    await settled(handle)
    return handle


async def severity_incident(world: World) -> WorkflowHandle[Any, Any]:
    """An incident started with a severity (its playbook's default), raised, lowered, then ended."""
    levels = list(DEFAULT_LEVELS)
    handle = await start(world, book=playbook(world, default_severity=3), severity_levels=levels)
    await settled(handle)
    for severity in ("sev1", "2"):
        await handle.execute_update(
            "set_severity", cmd.SetSeverity(actor=actor(world.alice), severity=severity, levels=levels)
        )
        await settled(handle)
    await handle.execute_update("end_incident", cmd.EndIncident(actor=actor(world.alice)))
    await settled(handle)
    return handle


async def fields_incident(world: World) -> WorkflowHandle[Any, Any]:
    """An incident with custom fields and conditional steps: started at SEV3 in eu-west, raised to
    SEV1 (steps gained), a gained step checked, lowered again (the rest skipped), a field changed."""
    levels = list(DEFAULT_LEVELS)
    sev1_only = StepCondition(severity=[1])
    book = playbook(
        world,
        fields=[
            FieldSpec(name="region", type=FieldType.SELECT, options=["eu-west", "us-east"], required=True),
            FieldSpec(name="customers", type=FieldType.NUMBER, min=0),
        ],
        checklists=[
            StageSpec(
                title="Triage",
                items=[
                    ChecklistItemSpec(title="Page DBA"),
                    ChecklistItemSpec(title="Tell the CEO", when=sev1_only),
                    ChecklistItemSpec(title="Call the EU regulator", when=StepCondition(field={"region": ["eu-west"]})),
                ],
            ),
            StageSpec(title="War room", when=sev1_only, items=[ChecklistItemSpec(title="Open a bridge")]),
        ],
    )
    handle = await start(
        world, book=book, severity="3", severity_levels=levels, fields={"region": "EU-West", "customers": "120"}
    )
    await settled(handle)
    alice = actor(world.alice)
    commands: list[tuple[str, Any]] = [
        ("set_severity", cmd.SetSeverity(actor=alice, severity="1", levels=levels)),
        ("set_item_state", cmd.SetItemState(actor=alice, stage=1, item=0, state="done")),
        ("set_severity", cmd.SetSeverity(actor=alice, severity="3", levels=levels)),
        ("set_field", cmd.SetField(actor=alice, name="region", value="us-east")),
        ("set_field", cmd.SetField(actor=alice, name="customers", value="none")),
    ]
    for name, command in commands:
        await handle.execute_update(name, command)
        await settled(handle)
    await handle.execute_update("end_incident", cmd.EndIncident(actor=alice))
    await settled(handle)
    return handle


async def team_settings(world: World) -> WorkflowHandle[Any, Any]:
    """A team's settings workflow, started by its first change (update-with-start), changed again."""
    client = world.stack.temporal
    admin = actor(world.alice, admin=True)
    renamed = numbered(
        [SeverityLevelSpec(name=name, description=f"{name} incidents") for name in ("Critical", "Major", "Minor")]
    )
    operation = WithStartWorkflowOperation(
        TeamSettingsWorkflow.run,
        TeamSettings(team_id=world.team_id),
        id=team_settings_workflow_id(world.team_id),
        task_queue=world.stack.settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await client.execute_update_with_start_workflow(
        TeamSettingsWorkflow.set_severity_levels,
        SetSeverityLevels(actor=admin, levels=renamed, expected_version=0, at=datetime.now(UTC)),
        start_workflow_operation=operation,
    )
    handle = await operation.workflow_handle()
    back = list(DEFAULT_LEVELS)
    await handle.execute_update(
        TeamSettingsWorkflow.set_severity_levels,
        SetSeverityLevels(actor=admin, levels=back, expected_version=1, at=datetime.now(UTC)),
    )
    return handle


async def due_dates_incident(world: World) -> WorkflowHandle[Any, Any]:
    """Dated items: one due 2s after the start (nobody assigned: the commander is told), one
    assigned (who has open items is indexed) and given a due time by hand, one checked; then the end."""
    alice = actor(world.alice)
    stages = [
        StageSpec(title="Triage", items=[ChecklistItemSpec(title="Page DBA", due=ItemDue(after="2s", from_="start"))]),
        StageSpec(title="Mitigate", items=[ChecklistItemSpec(title="Fail over", due=ItemDue(after="1h"))]),
    ]
    handle = await start(world, book=playbook(world, checklists=stages))
    await settled(handle)
    await handle.execute_update("assign_item", cmd.AssignItem(actor=alice, stage=1, item=0, assignee=fact(world.bob)))
    await handle.execute_update("set_item_due", cmd.SetItemDue(actor=alice, stage=1, item=0, due="1h"))
    await eventually(
        lambda: state(handle),
        lambda s: any(e.type == EventType.ITEM_OVERDUE for e in s.timeline) and not s.outbox,
        what="the overdue item told",
    )
    await handle.execute_update("set_item_state", cmd.SetItemState(actor=alice, stage=0, item=0, state="done"))
    await settled(handle)
    await handle.execute_update("end_incident", cmd.EndIncident(actor=alice))
    await settled(handle)
    return handle


async def retrospective_incident(world: World) -> WorkflowHandle[Any, Any]:
    """A playbook with a retrospective: the end opens it and the run stays open; its commander is
    reminded (due 1s after the end, then every 1s) twice; a version saved; published: the run closes."""
    alice = actor(world.alice)
    book = playbook(world, retrospective=RetrospectiveSpec(due_after="1s", reminder_every="1s"))
    handle = await start(world, book=book)
    await settled(handle)
    await handle.execute_update("end_incident", cmd.EndIncident(actor=alice))
    await eventually(
        lambda: state(handle),
        lambda s: s.retrospective is not None and s.retrospective.reminders_sent >= 2 and not s.outbox,
        what="two reminders sent",
    )
    text = "# Retrospective\n\n## Summary\n\nThe disk filled up."
    await handle.execute_update("save_retrospective", cmd.SaveRetrospective(actor=alice, text=text, version=1))
    await handle.execute_update("publish_retrospective", cmd.PublishRetrospective(actor=alice))
    await handle.result()
    return handle


async def _told(world: World) -> bool:
    return any("On-call handoff" in p["message"] for p in world.standin.posts(world.town_square["id"]))


RECORDINGS = {
    "incident-full-lifecycle": full_incident,
    "incident-restarted": restarted_incident,
    "incident-reopened": reopened_incident,
    "incident-failed-start": failed_incident,
    "incident-cancelled": cancelled_incident,
    "playbook-edited-archived": edited_playbook,
    "playbook-refused": refused_playbook,
    "command-outcome": command_outcome,
    "signed-out-sessions": signed_out_sessions,
    "incident-stats": team_statistics,
    "incident-from-alerts": alert_incident,
    "incident-with-webhooks": webhook_deliveries,
    "incident-with-severity": severity_incident,
    "incident-with-fields": fields_incident,
    "team-settings": team_settings,
    "incident-paged": paged_incident,
    "incident-with-due-dates": due_dates_incident,
    "incident-with-retrospective": retrospective_incident,
}
# Saved by the recording itself (its workflow ran on a server of its own).
SELF_SAVED = {"schedule-handoffs": schedule_handoffs}


async def main(names: list[str]) -> None:
    """Every recording anew (none named), or only the named ones, the others kept as they are."""
    if not names:
        for old in [*HERE.glob("*.json"), *LIVE_STATES.glob("*.json")]:
            old.unlink()
    # A known secret: the replay test opens what the payload codec sealed with it.
    stack = await start_stack(signing_secret=RECORDING_SIGNING_SECRET)
    try:
        client = stack.temporal
        if names:
            for name in names:
                if name in SELF_SAVED:
                    await SELF_SAVED[name](make_world(stack))
                    continue
                await save(client, await RECORDINGS[name](make_world(stack)), name)
            return
        await save(client, await full_incident(make_world(stack)), "incident-full-lifecycle")
        await save(client, await restarted_incident(make_world(stack)), "incident-restarted")
        await save(client, await reopened_incident(make_world(stack)), "incident-reopened")
        await save(client, await failed_incident(make_world(stack)), "incident-failed-start")
        await continued_incident(make_world(stack))
        await save(client, await cancelled_incident(make_world(stack)), "incident-cancelled")
        await save(client, await edited_playbook(make_world(stack)), "playbook-edited-archived")
        await save(client, await refused_playbook(make_world(stack)), "playbook-refused")
        await save(client, await command_outcome(make_world(stack)), "command-outcome")
        await save(client, await signed_out_sessions(make_world(stack)), "signed-out-sessions")
        await save(client, await team_statistics(make_world(stack)), "incident-stats")
        await save(client, await alert_incident(make_world(stack)), "incident-from-alerts")
        await save(client, await webhook_deliveries(make_world(stack)), "incident-with-webhooks")
        await save(client, await paged_incident(make_world(stack)), "incident-paged")
        await save(client, await due_dates_incident(make_world(stack)), "incident-with-due-dates")
        await save(client, await retrospective_incident(make_world(stack)), "incident-with-retrospective")
        await save(client, await severity_incident(make_world(stack)), "incident-with-severity")
        await save(client, await fields_incident(make_world(stack)), "incident-with-fields")
        await save(client, await team_settings(make_world(stack)), "team-settings")
        await schedule_handoffs(make_world(stack))
    finally:
        await WATCHER.stop_all()
        await stack.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
    exit_process(0)
