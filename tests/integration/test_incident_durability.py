"""Durability: workers killed mid-start, servers restarted, histories continued as new."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.enums.v1 import TimeoutType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from models.common import new_short_id
from models.incident import EventType, IncidentConfig, IncidentState, IncidentStatus
from models.incident_commands import EndIncident, PostStatusUpdate, SetItemState
from models.playbook import PlaybookEdit, PlaybookSpec, PlaybookStart, UpdatePlaybook, playbook_workflow_id
from service.incident_starts import incident_config
from tests.harness import World, eventually, own_server, own_worker, short_history_server
from tests.integration.incident_helpers import actor, add_steps, playbook, start, state, update
from workflows.incident_workflow import IncidentWorkflow
from workflows.playbook_workflow import PlaybookWorkflow

PROJECT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@asynccontextmanager
async def worker_process(world: World, task_queue: str, **extra: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python worker.py`, the production entry point, as a process we can kill; `extra`: more environment."""
    settings = world.stack.settings
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "MATTERMOST_URL": settings.mattermost_url,
        "MATTERMOST_BOT_TOKEN": settings.mattermost_bot_token,
        "SIGNING_SECRET": settings.signing_secret,
        "PUBLIC_URL": settings.api_public_url,
        **extra,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(PROJECT / "worker.py"), env=env, cwd=PROJECT, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def activity_started(handle: WorkflowHandle[Any, Any], activity: str, occurrence: int = 1) -> None:
    """Wait until the `occurrence`-th scheduling of `activity` has been picked up by a worker."""

    async def started() -> int:
        scheduled: dict[int, str] = {}
        count = 0
        async for event in handle.fetch_history_events():
            if event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
            elif (
                event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                and scheduled.get(event.activity_task_started_event_attributes.scheduled_event_id) == activity
            ):
                count += 1
        return count

    # A bound, not a timing: after a kill, the new worker first waits out the dead one's
    # workflow task and activity timeouts, which take long on a busy machine.
    await eventually(started, lambda n: n >= occurrence, timeout=60, what=f"{activity} to start")


@pytest.mark.slow
async def test_worker_killed_during_start_yields_one_channel_one_post_one_incident(world: World) -> None:
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    standin = world.standin
    config = IncidentConfig(activity_timeout_seconds=2, activity_max_retry_interval_seconds=0.5, reminder_min_seconds=1)
    # Slow Mattermost down so the worker is killed while it waits for the channel...
    standin.add_fault("POST", "/api/v4/channels", delay=1.0, times=1, team_id=world.team_id)
    async with worker_process(world, queue) as first:
        handle = await start(world, book=playbook(world), name="Killed worker", task_queue=queue, config=config)
        await activity_started(handle, "create_incident_channel")
        await standin.wait_for(lambda: _channels(world, "Killed worker") == 1)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    # ...and then while it posts the opening message (the live checklist post).
    [channel] = [c for c in standin.channels(world.team_id) if c["display_name"] == "Killed worker"]
    standin.add_fault("POST", "/api/v4/posts", delay=1.0, times=1, channel_id=channel["id"])
    async with worker_process(world, queue) as second:
        await activity_started(handle, "edit_post")
        current = await state(handle)
        await standin.wait_for(lambda: len(standin.posts(current.channel_id or "")) == 1)
        second.send_signal(signal.SIGKILL)
        await second.wait()
    async with worker_process(world, queue):
        settled = await eventually(
            lambda: state(handle), lambda s: "opening" in s.post_ids and not s.outbox, timeout=30, what="recovery"
        )
    assert _channels(world, "Killed worker") == 1
    posts = standin.posts(settled.channel_id or "")
    openings = [p for p in posts if p["message"].startswith("#### :rotating_light: Incident: Killed worker")]
    assert len(openings) == 1
    assert settled.post_ids["opening"] == openings[0]["id"]
    assert openings[0]["is_pinned"] is True
    running = [
        e.id
        async for e in world.stack.temporal.list_workflows(
            f"WorkflowId = '{handle.id}' AND ExecutionStatus = 'Running'"
        )
    ]
    assert running == [handle.id]


@pytest.mark.slow
async def test_a_post_whose_worker_died_mid_call_is_retried_within_seconds_and_made_once(world: World) -> None:
    """A worker killed while Mattermost holds its post: the next worker retries the post as soon
    as the attempt stops heartbeating, though one attempt may last two minutes, and the post that
    Mattermost carries out after the worker died is the only one."""
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    standin = world.standin
    config = IncidentConfig(activity_timeout_seconds=120, activity_max_retry_interval_seconds=0.5)
    async with worker_process(world, queue) as first:
        handle = await start(world, book=playbook(world), name="Dies mid-post", task_queue=queue, config=config)
        opened = await eventually(
            lambda: state(handle), lambda s: "opening" in s.post_ids and not s.outbox, timeout=30, what="the opening"
        )
        channel_id = opened.channel_id or ""
        held = len(standin.faults_taken)
        # Held past the moment a quick retry first looks for it, and within one request timeout
        # (10 s) of the worker's death: the retry must wait for it, not post a second one.
        standin.add_fault("POST", "/api/v4/posts", delay=8.0, times=1, channel_id=channel_id)
        alice = actor(world.alice)
        await update(handle, PostStatusUpdate(actor=alice, message="Failing over"))
        await eventually(lambda: _read(lambda: len(standin.faults_taken)), lambda n: n > held, what="the post held")
        first.send_signal(signal.SIGKILL)
        await first.wait()
    async with worker_process(world, queue):
        # An attempt may take 120 s here: only the heartbeat timeout can retry it this soon.
        started = await eventually(
            lambda: _completed_attempt(handle, "post_message"), lambda e: e is not None, timeout=30, what="the post"
        )
        await eventually(lambda: _read(lambda: standin.in_flight), lambda n: n == 0, what="the held post to land")
    assert started.attempt >= 2
    assert started.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    updates = [p["message"] for p in standin.posts(channel_id) if p["message"].startswith("#### Status update")]
    assert updates == [f"#### Status update\nfrom @{world.alice.username}\n\n> Failing over"]


async def _read(value: Callable[[], T]) -> T:
    """`value()` as a probe for `eventually`."""
    return value()


async def _completed_attempt(handle: WorkflowHandle[Any, Any], activity: str) -> Any:
    """The start of the attempt that completed the first scheduling of `activity` (None: not yet)."""
    events: list[HistoryEvent] = [event async for event in handle.fetch_history_events()]
    scheduled = next(
        (
            e.event_id
            for e in events
            if e.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == activity
        ),
        None,
    )
    completed = any(
        e.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id == scheduled
        for e in events
    )
    return next(
        (
            e.activity_task_started_event_attributes
            for e in events
            if completed
            and e.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and e.activity_task_started_event_attributes.scheduled_event_id == scheduled
        ),
        None,
    )


@pytest.mark.slow
async def test_an_ended_incident_whose_worker_was_killed_in_its_reopen_window_reopens_in_the_same_run(
    world: World,
) -> None:
    """The run waits out the reopen window on a durable timer: a worker SIGKILLed while it waits
    takes nothing with it, and a restart sent through the API to the next worker reopens that run."""
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    incident_id = new_short_id()
    window = incident_config(world.stack.settings, incident_id).model_copy(update={"reopen_window_seconds": 3600})
    async with worker_process(world, queue) as first:
        handle = await start(world, id=incident_id, book=playbook(world), task_queue=queue, config=window)
        await eventually(lambda: state(handle), lambda s: "opening" in s.post_ids and not s.outbox, what="opened")
        first_run = (await handle.describe()).run_id
        await update(handle, EndIncident(actor=actor(world.alice)))
        ended = await eventually(lambda: state(handle), lambda s: not s.outbox, what="the end told")
        assert ended.status == IncidentStatus.ENDED
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    async with worker_process(world, queue):
        # As a client does: resent with its Idempotency-Key until it is answered (202: Temporal took it
        # but had not answered yet; 503: the new worker was not polling yet).
        api = world.api(world.alice)
        restart = f"/api/v1/incidents/{incident_id}/restart"
        answer = await eventually(
            lambda: api.post(restart, headers={"Idempotency-Key": "reopen-1"}),
            lambda r: r.status_code not in (202, 503),
            timeout=60,
            what="the restart answered",
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["message"] == "Incident restarted."
        reopened = await eventually(lambda: state(handle), lambda s: not s.outbox, what="the restart told")
    assert reopened.status == IncidentStatus.ONGOING
    assert [e.type for e in reopened.timeline][-2:] == [EventType.ENDED, EventType.RESTARTED]
    assert [e.type for e in reopened.timeline].count(EventType.RESTARTED) == 1
    description = await handle.describe()
    assert (description.run_id, description.status) == (first_run, WorkflowExecutionStatus.RUNNING)
    runs = [r.run_id async for r in world.stack.temporal.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert runs == [first_run]
    failed = [e async for e in handle.fetch_history_events() if e.event_type == _TASK_FAILED]
    assert failed == []


_TASK_FAILED = HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_FAILED


def _channels(world: World, display_name: str) -> int:
    return len([c for c in world.standin.channels(world.team_id) if c["display_name"] == display_name])


@pytest.mark.slow
async def test_reminder_survives_worker_and_server_restarts_and_fires_once(world: World, tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    async with own_server(db_file=db) as (_, client), own_worker(world, client):
        handle = await start(world, client=client, book=playbook(world, reminder_timer_default_seconds=2))
        before = await eventually(lambda: state(handle), lambda s: s.channel_id is not None and not s.outbox)
    assert before.reminder_due_at is not None
    due = before.reminder_due_at
    # Everything is down past the due time, long enough to miss several intervals.
    await eventually(_now, lambda now: now > due + timedelta(seconds=5), timeout=30, what="the reminder to be overdue")
    async with own_server(db_file=db) as (_, client), own_worker(world, client):
        back = client.get_workflow_handle_for(IncidentWorkflow.run, handle.id)
        after = await eventually(lambda: state(back), lambda s: len(_reminders(s)) >= 1, what="the overdue reminder")
        restarted_at = datetime.now(UTC)
        later = await eventually(lambda: state(back), lambda s: len(_reminders(s)) >= 2, what="the next reminder")
    sent = _reminders(later)
    assert sent[0].at >= due
    # One reminder for the missed time, not one per missed interval; then the normal rhythm.
    assert (sent[1].at - sent[0].at).total_seconds() >= 2
    assert len([e for e in _reminders(after) if e.at <= restarted_at]) == 1


async def _now() -> datetime:
    return datetime.now(UTC)


def _reminders(current: IncidentState) -> list[Any]:
    return [e for e in current.timeline if e.type == EventType.REMINDER_SENT]


@pytest.mark.slow
async def test_continue_as_new_carries_everything_across_runs(world: World) -> None:
    async with short_history_server(world, 100) as client:
        handle = await start(world, client=client)
        alice = actor(world.alice)
        await add_steps(handle, alice, 10)

        async def toggle(item: int, times: int) -> None:
            for _ in range(times):
                await handle.execute_update(
                    "set_item_state", SetItemState(actor=alice, stage=0, item=item, state="toggle")
                )

        # 10 concurrent streams of 25 toggles each: 250 changes, while runs roll over.
        await asyncio.gather(*(toggle(item, 25) for item in range(10)))
        final = await eventually(lambda: state(handle), lambda s: not s.outbox, timeout=60, what="all posts made")
        runs = [e.status async for e in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    changes = [e for e in final.timeline if e.type == EventType.ITEM_STATE_CHANGED]
    assert len(changes) == 250
    assert len([e for e in final.timeline if e.type == EventType.ITEM_ADDED]) == 10
    assert all(item.state == "done" for item in final.checklists[0].items)  # 25 toggles from open
    assert len(runs) >= 4, f"expected several runs, got {len(runs)}"
    posts = world.standin.posts(final.channel_id or "")
    assert not [p for p in posts if "marked **Step" in p["message"]], "item changes are shown by the checklist post"
    # One live checklist post, showing the final state (every item done), edited in place.
    live = [p for p in posts if p["id"] == final.post_ids["opening"]]
    assert len(live) == 1
    assert live[0]["message"].count("[x]") == 10


@pytest.mark.slow
async def test_playbook_continues_as_new_with_its_whole_history(world: World) -> None:
    async with short_history_server(world, 30) as client:
        book = playbook(world)
        now = datetime.now(UTC)
        handle = await client.start_workflow(
            PlaybookWorkflow.run,
            PlaybookStart(
                playbook=book, edits=[PlaybookEdit(version=1, editor_id=world.alice.id, at=now, summary=["created"])]
            ),
            id=playbook_workflow_id(book.id),
            task_queue=world.stack.settings.temporal_task_queue,
        )
        alice = actor(world.alice)
        for version in range(1, 61):
            spec = PlaybookSpec.model_validate(
                {**book.model_dump(include=set(PlaybookSpec.model_fields)), "title": f"Outage v{version + 1}"}
            )
            await handle.execute_update(
                PlaybookWorkflow.update_playbook,
                UpdatePlaybook(actor=alice, is_team_member=True, spec=spec, expected_version=version),
            )
        current = await handle.query(PlaybookWorkflow.get_playbook)
        history = await handle.query(PlaybookWorkflow.get_history)
        runs = [e async for e in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert (current.version, current.title) == (61, "Outage v61")
    assert [h.version for h in history] == list(range(1, 62))
    assert len(runs) >= 3
