"""Scale-out: several worker and API processes on one Temporal server, some of them dying.

What this proves about the production topology (docker-compose.yml with
`--scale worker=3 --scale api=2`): every worker and API process is the production entry
point (`python worker.py`, `python -m api`) as a separate OS process; they share nothing
but the Temporal server, Mattermost and their settings. Fifty incidents are started and
commanded through both API processes, each request sent to one API process and then resent,
with the same `Idempotency-Key`, to the other (a client retrying through a load balancer).
Meanwhile one worker is killed with SIGKILL (a crashed container) and another is stopped
with SIGTERM (a rolling upgrade). Afterwards every incident has exactly one channel, every
bot post exists once (its dedupe prop is unique in its channel), every command is applied
once (timeline and state), the work was spread over several workers, and the gracefully
stopped worker left with status 0. So: nothing in a worker or an API process is
single-instance, and losing either kind of process loses or duplicates nothing. A second
test stops a worker while a Mattermost call is slow: it finishes that call itself, once.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from activities.incident_activities import DEDUPE_PROP, STABLE_PROP
from devstack.embedded_http import free_port
from models.incident import EventType, IncidentConfig, IncidentState
from tests.harness import World, eventually
from tests.integration.incident_helpers import start
from tests.integration.test_incident_durability import activity_started
from workflows.incident_workflow import IncidentWorkflow

PROJECT = Path(__file__).resolve().parents[2]
INCIDENTS = 50
CONCURRENCY = 10
KILL_AFTER = 15  # incidents started when the first worker is killed
STOP_AFTER = 30  # ...and when the second is stopped gracefully


class Processes:
    """The production entry points as child processes sharing one configuration."""

    def __init__(self, world: World, queue: str, logs: Path) -> None:
        settings = world.stack.settings
        self.logs = logs
        self.api_ports = [free_port(), free_port()]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "MATTERMOST_", "API_"))},
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TEMPORAL_TASK_QUEUE": queue,
            "MATTERMOST_URL": settings.mattermost_url,
            "MATTERMOST_BOT_TOKEN": settings.mattermost_bot_token,
            "MATTERMOST_SLASH_TOKEN": settings.mattermost_slash_token,
            "SIGNING_SECRET": settings.signing_secret,
            "PUBLIC_URL": f"http://127.0.0.1:{self.api_ports[0]}",
            "API_HOST": "127.0.0.1",
            "ACTIVITY_TIMEOUT_SECONDS": "3",
            "ACTIVITY_MAX_RETRY_INTERVAL_SECONDS": "0.5",
            "AUTH_CACHE_SECONDS": "0.5",
        }
        self.children: list[asyncio.subprocess.Process] = []

    async def spawn(self, name: str, *args: str, **env: str) -> asyncio.subprocess.Process:
        log = (self.logs / f"{name}.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=PROJECT, env={**self.env, **env}, stdout=log, stderr=log
        )
        log.close()
        self.children.append(process)
        return process

    async def worker(self, n: int) -> asyncio.subprocess.Process:
        return await self.spawn(f"worker{n}", "worker.py")

    async def api(self, n: int) -> asyncio.subprocess.Process:
        return await self.spawn(f"api{n}", "-m", "api", API_PORT=str(self.api_ports[n]))

    async def check(self) -> int:
        """`python worker.py --check`, the worker container's health check."""
        process = await self.spawn("check", "worker.py", "--check")
        return await asyncio.wait_for(process.wait(), timeout=60)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.logs.glob("*.log")))

    async def stop_all(self) -> None:
        for process in self.children:
            if process.returncode is None:
                process.kill()
            await process.wait()


@asynccontextmanager
async def processes(world: World, queue: str, logs: Path) -> AsyncIterator[Processes]:
    running = Processes(world, queue, logs)
    try:
        yield running
    finally:
        await running.stop_all()


async def pollers(world: World, queue: str) -> set[str]:
    """Identities (`pid@host`) polling both the workflow and the activity side of the queue."""
    seen: list[set[str]] = []
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        described = await world.stack.temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=world.stack.settings.temporal_namespace,
                task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=kind,
            )
        )
        seen.append({poller.identity for poller in described.pollers})
    return seen[0] & seen[1]


async def send(
    clients: list[httpx.AsyncClient], path: str, body: dict[str, Any], key: str, *, first: int
) -> list[dict[str, Any]]:
    """POST to one API process, then the same request (same key) to the other; both must agree.

    As a careful client does: a 202 (taken, not answered yet, e.g. while a killed worker's
    tasks move on) is asked again with the same key until it answers; a 503 (nothing was
    changed) is sent again.
    """
    answers = []
    for client in (clients[first % 2], clients[(first + 1) % 2]):
        deadline = time.monotonic() + 120
        while True:
            response = await client.post(path, json=body, headers={"Idempotency-Key": key})
            if response.status_code not in (202, 503) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert response.status_code in (200, 201), f"{path}: {response.status_code} {response.text}"
        answers.append(response.json())
    return answers


async def until_accepted(attempt: Callable[[], Awaitable[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Retry a command the incident refuses for now (its channel or a member is not there yet)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await attempt()
        except AssertionError as refused:
            if time.monotonic() > deadline or (" 409 " not in str(refused) and " 422 " not in str(refused)):
                raise
            await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_three_workers_two_apis_fifty_incidents_one_worker_killed_one_stopped(
    world: World, tmp_path: Path
) -> None:
    began = time.monotonic()
    queue = f"scale-{uuid.uuid4().hex[:8]}"
    host = socket.gethostname()
    bob = world.bob
    async with processes(world, queue, tmp_path) as procs:
        # The health check fails while no worker of this host polls the queue.
        assert await procs.check() == 1
        workers = [await procs.worker(n) for n in range(3)]
        apis = [await procs.api(n) for n in range(2)]
        expected = {f"{w.pid}@{host}" for w in workers}
        await eventually(
            lambda: pollers(world, queue), lambda seen: expected <= seen, timeout=60, what="three workers polling"
        )
        assert await procs.check() == 0
        clients = [
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {world.alice.token}"},
                timeout=60,
            )
            for port in procs.api_ports
        ]
        try:
            for client in clients:
                await eventually(
                    functools.partial(client.get, "/readyz"),
                    lambda r: r.status_code == 200,
                    timeout=60,
                    what="API ready",
                )
            ready_at = time.monotonic()

            started: list[str] = []
            killed = asyncio.Event()
            stopped = asyncio.Event()
            limit = asyncio.Semaphore(CONCURRENCY)

            def on_started(incident_id: str) -> None:
                started.append(incident_id)
                if len(started) == KILL_AFTER:
                    workers[0].send_signal(signal.SIGKILL)
                    killed.set()
                elif len(started) == STOP_AFTER:
                    workers[1].send_signal(signal.SIGTERM)
                    stopped.set()

            async def one(i: int) -> str:
                async with limit:
                    created = await send(
                        clients,
                        "/api/v1/incidents",
                        {"team_id": world.team_id, "name": f"Scale {i:02d}"},
                        f"start-{queue}-{i}",
                        first=i,
                    )
                    incident_id = str(created[0]["id"])
                    assert created[1]["id"] == incident_id, "the resent start made another incident"
                    on_started(incident_id)
                base = f"/api/v1/incidents/{incident_id}"
                await until_accepted(
                    lambda: send(clients, f"{base}/members", {"user_ids": [bob.id]}, f"invite-{i}", first=i + 1)
                )
                await until_accepted(
                    lambda: send(clients, f"{base}/status-updates", {"message": f"Update {i:02d}"}, f"up-{i}", first=i)
                )
                await until_accepted(
                    lambda: send(clients, f"{base}/commander", {"user_id": bob.id}, f"cmd-{i}", first=i + 1)
                )
                return incident_id

            ids = await asyncio.gather(*(one(i) for i in range(INCIDENTS)))
            commands_done = time.monotonic()
            assert killed.is_set()
            assert stopped.is_set()
            assert await asyncio.wait_for(workers[0].wait(), timeout=30) == -signal.SIGKILL
            # A SIGTERM'd worker finishes what it runs and leaves cleanly.
            assert await asyncio.wait_for(workers[1].wait(), timeout=60) == 0
            assert len(set(ids)) == INCIDENTS
            assert [api.returncode for api in apis] == [None, None]

            # Every incident settles: channel made, all side effects done, nothing pending.
            async def settled(incident_id: str) -> IncidentState:
                handle = world.stack.temporal.get_workflow_handle(f"incident-{incident_id}")
                try:
                    return await eventually(
                        lambda: handle.query(IncidentWorkflow.get_state),
                        lambda s: bool(s.channel_id) and not s.outbox and bob.id in s.member_ids,
                        timeout=90,
                        what=f"incident {incident_id} to settle",
                    )
                except AssertionError:
                    stuck: IncidentState = await handle.query(IncidentWorkflow.get_state)
                    waiting = [(p.seq, p.effect.kind) for p in stuck.outbox]
                    described = await handle.describe()
                    activities = [
                        (a.activity_type.name, a.attempt, a.last_failure.message)
                        for a in described.raw_description.pending_activities
                    ]
                    raise AssertionError(
                        f"incident {incident_id} did not settle: waiting effects {waiting}, failing lanes "
                        f"{stuck.failing_lanes}, access lost {stuck.channel_access_lost}, members {stuck.member_ids}, "
                        f"activities under way (type, attempt, last failure) {activities}"
                    ) from None

            states = await asyncio.gather(*(settled(i) for i in ids))
            settled_at = time.monotonic()
            records = [(await clients[n % 2].get(f"/api/v1/incidents/{i}")).json() for n, i in enumerate(ids)]
        finally:
            for client in clients:
                await client.aclose()
            diagnostics = procs.log_tail()

    # One channel per incident, none duplicated.
    channels = Counter(c["display_name"] for c in world.standin.channels(world.team_id) if c["type"] in "OP")
    scale_channels = {name: n for name, n in channels.items() if name.startswith("Scale ")}
    assert scale_channels == {f"Scale {i:02d}": 1 for i in range(INCIDENTS)}, diagnostics

    effects_total = 0
    identities: Counter[str] = Counter()
    for state, record in zip(states, records, strict=True):
        # Every command applied exactly once, as the state and the timeline tell.
        assert [u.message for u in state.status_updates] == [f"Update {record['name'][-2:]}"]
        assert state.commander_id == bob.id
        assert record["commander_id"] == bob.id
        kinds = Counter(event["type"] for event in record["timeline"])
        assert kinds[EventType.STATUS_UPDATE] == 1
        assert kinds[EventType.COMMANDER_CHANGED] == 1
        assert kinds[EventType.MEMBER_INVITED] == 1
        assert kinds[EventType.CREATED] == 1
        # Every bot post exists once: its dedupe key is unique in the channel.
        posts = world.standin.posts(state.channel_id or "")
        effects = Counter((p.get("props") or {}).get(DEDUPE_PROP) for p in posts)
        effects.pop(None, None)
        assert effects, "no bot posts"
        assert max(effects.values()) == 1, effects
        effects_total += len(effects)
        # The status update's own post (the live checklist post shows the last update too).
        updates = [
            p
            for p in posts
            if f"Update {record['name'][-2:]}" in p["message"] and STABLE_PROP not in (p.get("props") or {})
        ]
        assert len(updates) == 1
        assert bob.id in world.standin.channel_members(state.channel_id or "")
        # Who did the work.
        handle = world.stack.temporal.get_workflow_handle(f"incident-{record['id']}")
        async for event in handle.fetch_history_events():
            if event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                identities[event.activity_task_started_event_attributes.identity] += 1

    worker_ids = [f"{w.pid}@{host}" for w in workers]
    spread = {wid: identities[wid] for wid in worker_ids}
    # The work went to more than one worker, and the survivor carried it to the end.
    assert sum(1 for n in spread.values() if n) >= 2, spread
    assert spread[worker_ids[2]] > 0
    assert set(identities) <= set(worker_ids), identities

    print(
        f"\nscale-out: {INCIDENTS} incidents, {INCIDENTS * 4} commands each sent to both API processes "
        f"({INCIDENTS * 8} requests), {len(scale_channels)} channels, {effects_total} bot posts, "
        f"activities per worker {list(spread.values())} (worker 0 killed after {KILL_AFTER} starts, "
        f"worker 1 stopped after {STOP_AFTER}); ready in {ready_at - began:.1f}s, "
        f"commands done in {commands_done - ready_at:.1f}s, settled in {settled_at - ready_at:.1f}s, "
        f"total {time.monotonic() - began:.1f}s"
    )


@pytest.mark.slow
async def test_a_stopped_worker_lets_the_side_effect_it_runs_finish(world: World, tmp_path: Path) -> None:
    """SIGTERM (a rolling upgrade, a scale-down) while a Mattermost call is slow: the worker
    completes that activity itself, once, and then exits 0; nothing is left to time out."""
    queue = f"drain-{uuid.uuid4().hex[:8]}"
    host = socket.gethostname()
    world.standin.add_fault("POST", "/api/v4/channels", delay=2.0, times=1)
    async with processes(world, queue, tmp_path) as procs:
        procs.env["ACTIVITY_TIMEOUT_SECONDS"] = "10"
        worker = await procs.worker(0)
        identity = f"{worker.pid}@{host}"
        await eventually(lambda: pollers(world, queue), lambda seen: identity in seen, timeout=60, what="polling")
        config = IncidentConfig(activity_timeout_seconds=10, activity_max_retry_interval_seconds=0.5)
        handle = await start(world, name="Drained", task_queue=queue, config=config)
        await activity_started(handle, "create_incident_channel")
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), timeout=30) == 0, procs.log_tail()

    started: list[tuple[int, str]] = []
    completed: list[str] = []
    async for event in handle.fetch_history_events():
        if event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            started.append((attributes.attempt, attributes.identity))
        elif event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed.append(event.activity_task_completed_event_attributes.identity)
    assert started[0] == (1, identity)
    assert completed[:1] == [identity]
    assert len([c for c in world.standin.channels(world.team_id) if c["display_name"] == "Drained"]) == 1


@pytest.mark.timeout(180)
async def test_two_api_processes_receiving_one_alert_group_at_once_open_one_incident(
    world: World, tmp_path: Path
) -> None:
    """The alert group names the incident's workflow, whichever API process a notification
    reaches: two processes taking the same group's notifications at once open one incident,
    and every alert is on its timeline once."""
    from tests.integration.test_alert_intake import make_integration, team_admin

    queue = f"alerts-{uuid.uuid4().hex[:8]}"
    tess = team_admin(world)
    integration = await make_integration(world, tess, "generic")
    async with processes(world, queue, tmp_path) as procs:
        await procs.worker(0)
        await procs.api(0)
        await procs.api(1)
        clients = [
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {integration['token']}"},
                timeout=60,
            )
            for port in procs.api_ports
        ]
        try:
            for client in clients:
                await eventually(
                    functools.partial(client.get, "/readyz"), lambda r: r.status_code == 200, timeout=60, what="ready"
                )
            path = f"/hooks/alerts/{integration['id']}"
            bodies = [{"title": "Cache stampede", "group_key": "cache", "labels": {"node": str(n)}} for n in range(20)]

            async def deliver(n: int) -> httpx.Response:
                # Each notification reaches both processes, as a retry through a load balancer would.
                while True:
                    answer = await clients[n % 2].post(path, json=bodies[n // 2])
                    if answer.status_code != 503:
                        return answer
                    await asyncio.sleep(0.2)

            answers = await asyncio.gather(*(deliver(n) for n in range(40)))
        finally:
            for client in clients:
                await client.aclose()
        assert {a.status_code for a in answers} == {200}, procs.log_tail()
        ids = {a.json()["incident_id"] for a in answers}
        assert len(ids) == 1
        (incident_id,) = ids
        handle = world.stack.temporal.get_workflow_handle(f"incident-{incident_id}")
        state = IncidentState.model_validate(await handle.query("get_state"))
        fired = [e.details["fingerprint"] for e in state.timeline if e.type == EventType.ALERT_FIRING]
        assert len(fired) == 20
        assert len(set(fired)) == 20
