"""Every answer is true under load: what each command was told, against what happened to it.

Three loads, on the same stack as the rest of `make bench`:
- `/incident update` typed by one person many times at once in one incident (Mattermost's
  callers wait `SLASH_REPLY_SECONDS`, so under load many are "Received, applying it…");
- REST starts sent all at once (each with its own Idempotency-Key);
- `/incident update` typed many times at once in an incident whose worker (a real
  `python worker.py`) is SIGKILLed in the middle and started again a moment later.
Every command carries a text of its own. Once every outcome is in, each answer is held
against the incident: "applied" was applied exactly once; "refused" and "not applied"
were not applied; "received" got its outcome through `response_url`, and that outcome is
what happened; a 202 start, asked again with its key, names the one incident it made. The
counts are the figures; an untrue answer is listed, and makes `make bench` fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from api.app import create_app
from api.slash.slash_registry import RECEIVED_HERE
from devstack.embedded_http import free_port, serve
from devstack.stack import process_environment
from devstack.worlds import World, eventually

POSTED = "Status update posted."


@dataclass
class Tally:
    told: Counter[str] = field(default_factory=Counter)
    untrue: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {**dict(sorted(self.told.items())), "untrue": len(self.untrue), "untrue_examples": self.untrue[:5]}


def kind_of(reply: str) -> str:
    if reply == POSTED:
        return "applied"
    if reply == RECEIVED_HERE:
        return "received"
    if "nothing was changed" in reply:
        return "not_applied"
    return "refused"


async def typed_updates(world: World, channel_id: str, texts: list[str]) -> list[str]:
    """`/incident update <text>` for each text, all at once, typed through the stand-in."""

    async def one(text: str) -> str:
        return str((await world.slash(world.alice, f"update {text}", channel_id=channel_id))["text"])

    return list(await asyncio.gather(*(one(text) for text in texts)))


async def status_updates(world: World, incident_id: str) -> list[str]:
    """Every status update the incident applied, from its timeline (the state keeps only the
    last 50 in full: `incident_rules.STATUS_UPDATES_KEPT`)."""
    record = await world.api(world.alice).get(f"/api/v1/incidents/{incident_id}")
    timeline = record.json()["timeline"]
    return [str(e["details"].get("message", "")) for e in timeline if e["type"] == "status_update"]


async def hold_against(world: World, incident_id: str, texts: list[str], replies: list[str]) -> Tally:
    """Wait until every received command has its outcome, then check each answer."""
    received = {text for text, reply in zip(texts, replies, strict=True) if kind_of(reply) == "received"}

    async def outcomes() -> dict[str, str]:
        """The late replies, by the command they answer ("`/incident update <text>`: <outcome>")."""
        late = [e["post"]["message"] for e in world.standin.ephemeral_posts(user_id=world.alice.id)]
        asked = "`/incident update "
        by_text = {m[len(asked) : m.index("`:")]: m for m in late if m.startswith(asked) and "`:" in m}
        return {text: message for text, message in by_text.items() if text in received}

    late = await eventually(outcomes, lambda found: len(found) == len(received), timeout=900, what="every outcome")
    applied = Counter(await status_updates(world, incident_id))
    tally = Tally()
    for text, reply in zip(texts, replies, strict=True):
        kind = kind_of(reply)
        tally.told[kind] += 1
        if kind == "received":
            kind = "applied" if late[text].endswith(POSTED) else "refused"
            tally.told[f"received_then_{kind}"] += 1
        if applied[text] != (1 if kind == "applied" else 0):
            tally.untrue.append(f"{text}: told {reply[:60]!r}, applied {applied[text]} time(s)")
    return tally


async def new_incident(world: World, api_url: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {world.alice.token}"}) as api:
        started = await api.post("/api/v1/incidents", json={"team_id": world.team_id, "name": "Truth"})
    assert started.status_code == 201, started.text
    incident_id = str(started.json()["id"])

    async def record() -> dict[str, Any]:
        # Under the bench's load a read may be answered "unavailable, try again" (503): ask again.
        read = await world.api(world.alice).get(f"/api/v1/incidents/{incident_id}")
        body: dict[str, Any] = read.json() if read.status_code == 200 else {}
        return body

    ready = await eventually(record, lambda r: r.get("channel_id") is not None and not r["failure"], timeout=120)
    return incident_id, str(ready["channel_id"])


async def under_load(world: World, count: int) -> dict[str, Any]:
    incident_id, channel_id = await new_incident(world, world.stack.api_url)
    texts = [f"load-{n:04}" for n in range(count)]
    replies = await typed_updates(world, channel_id, texts)
    return {"truth_slash_updates": (await hold_against(world, incident_id, texts, replies)).figures()}


async def concurrent_starts(world: World, count: int) -> dict[str, Any]:
    """REST starts all at once; a 202 is asked again with its key until it names its incident."""
    tally = Tally()
    headers = {"Authorization": f"Bearer {world.alice.token}"}
    async with httpx.AsyncClient(base_url=world.stack.api_url, headers=headers, timeout=120) as api:

        async def start(n: int) -> httpx.Response:
            body = {"team_id": world.team_id, "name": f"Start {n:03}"}
            return await api.post("/api/v1/incidents", json=body, headers={"Idempotency-Key": f"start-{n}"})

        answers = await asyncio.gather(*(start(n) for n in range(count)))
        named: dict[int, str] = {}
        for n, answer in enumerate(answers):
            tally.told[str(answer.status_code)] += 1
            if answer.status_code == 201:
                named[n] = str(answer.json()["id"])
            elif answer.status_code == 202:
                pending = str(answer.json()["incident_id"])
                again = await eventually(partial(start, n), lambda r: r.status_code == 201, timeout=900)
                named[n] = str(again.json()["id"])
                if named[n] != pending:
                    tally.untrue.append(f"start {n}: 202 named {pending}, the start made {named[n]}")
    made = Counter(
        [
            execution.id.removeprefix("incident-")
            async for execution in world.stack.temporal.list_workflows(
                f"WorkflowType = 'IncidentWorkflow' AND IncidentTeamId = '{world.team_id}'"
            )
        ]
    )
    for n, answer in enumerate(answers):
        expected = 1 if answer.status_code in (201, 202) else 0
        if (made[named[n]] if n in named else 0) != expected:
            tally.untrue.append(f"start {n}: told {answer.status_code}, made {made.get(named.get(n, ''), 0)}")
    if len(made) != len(named):
        tally.untrue.append(f"{len(made)} incidents made for {len(named)} starts told they were made")
    return {"truth_rest_starts": tally.figures()}


async def worker_killed(world: World, count: int) -> dict[str, Any]:
    """Updates to an incident whose `python worker.py` is SIGKILLed while they arrive."""
    settings = world.stack.settings.model_copy(update={"temporal_task_queue": f"truth-{os.getpid()}"})
    env = process_environment(settings)

    async def worker() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )

    # The incident runs on a task queue of its own, served by that process; an API with that
    # queue starts it (commands reach a workflow whatever its queue).
    starting = settings.model_copy(update={"api_port": free_port(), "public_url": ""})
    starter = await serve(create_app(starting, temporal=world.stack.temporal), host="127.0.0.1", port=starting.api_port)
    process = await worker()
    try:
        incident_id, channel_id = await new_incident(world, starting.api_public_url)
    finally:
        await starter.stop()
    texts = [f"kill-{n:03}" for n in range(count)]
    typing = asyncio.create_task(typed_updates(world, channel_id, texts))
    await eventually(lambda: status_updates(world, incident_id), lambda done: len(done) >= count // 5, timeout=300)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    replies = await typing
    process = await worker()
    try:
        tally = await hold_against(world, incident_id, texts, replies)
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    return {"truth_worker_killed": tally.figures()}


def untrue(results: dict[str, Any]) -> list[str]:
    return [line for key, value in results.items() if key.startswith("truth_") for line in value["untrue_examples"]]
