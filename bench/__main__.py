"""`make bench`: how fast the things people wait for are, on the real stack.

Measures, against the same stack the tests use (Temporal dev server, stand-in, worker,
API over HTTP):
- a slash command's reply, typed through Mattermost's `commands/execute` (`info`, `check`);
- a REST command's round trip (`PUT .../items/{item}/state`);
- `GET /api/v1/stats` over a team with 10,000 ended incidents.
Results are printed and written to `.bench/results.json`. Timings are not asserted in
tests; compare runs on the same machine.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from activities.stats import StatsActivities
from lifecycle import exit_process
from models.common import new_short_id
from models.stats import FactsStatus, IncidentFacts
from tests.harness import World, eventually, make_world, start_stack

RESULTS = Path(".bench/results.json")


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def timed(samples: list[float], call: Any) -> Any:
    began = time.perf_counter()
    result = await call
    samples.append(time.perf_counter() - began)
    return result


async def incident_channel(world: World) -> tuple[str, str]:
    api = world.api(world.alice)
    items = [{"title": f"Step {n}"} for n in range(20)]
    book = await api.post(
        "/api/v1/playbooks",
        json={"team_id": world.team_id, "title": "Bench", "checklists": [{"title": "Only", "items": items}]},
    )
    started = await api.post(
        "/api/v1/incidents", json={"team_id": world.team_id, "name": "Bench", "playbook_id": book.json()["id"]}
    )
    incident_id = started.json()["id"]

    async def record() -> dict[str, Any]:
        body: dict[str, Any] = (await api.get(f"/api/v1/incidents/{incident_id}")).json()
        return body

    ready = await eventually(record, lambda r: r["channel_id"] is not None and len(r["member_ids"]) >= 1)
    return incident_id, str(ready["channel_id"])


async def slash_replies(world: World, rounds: int) -> dict[str, Any]:
    _, channel_id = await incident_channel(world)
    info: list[float] = []
    check: list[float] = []
    for n in range(rounds):
        await timed(info, world.slash(world.alice, "info", channel_id=channel_id))
        await timed(check, world.slash(world.alice, f"check {n % 20 + 1}", channel_id=channel_id))
    return {"slash_info": summary(info), "slash_check": summary(check)}


async def rest_commands(world: World, rounds: int) -> dict[str, Any]:
    incident_id, _ = await incident_channel(world)
    api = world.api(world.alice)
    samples: list[float] = []
    for n in range(rounds):
        state = "done" if (n // 20) % 2 == 0 else "open"
        response = await timed(
            samples,
            api.put(f"/api/v1/incidents/{incident_id}/checklists/0/items/{n % 20}/state", json={"state": state}),
        )
        assert response.status_code == 200, response.text
    return {"rest_item_state": summary(samples)}


async def stats_over(world: World, incidents: int, rounds: int) -> dict[str, Any]:
    reporter = StatsActivities(world.stack.temporal, task_queue=world.stack.settings.temporal_task_queue)
    people = [world.alice.id, world.bob.id, world.carol.id, world.dave.id]
    began = datetime.now(UTC) - timedelta(days=60)
    gate = asyncio.Semaphore(32)

    async def report(n: int) -> None:
        started = began + timedelta(minutes=8 * n)
        async with gate:
            await reporter.report_incident_facts(
                IncidentFacts(
                    incident_id=new_short_id(),
                    team_id=world.team_id,
                    playbook_id="bench",
                    status=FactsStatus.ENDED,
                    started_at=started,
                    ended_at=started + timedelta(seconds=60 + n % 7200),
                    time_to_resolution_seconds=60 + n % 7200,
                    first_status_update_at=started + timedelta(seconds=30),
                    participant_ids=people[: 1 + n % 4],
                    is_public=True,
                )
            )

    seeding = time.perf_counter()
    await asyncio.gather(*(report(n) for n in range(incidents)))
    seeded = time.perf_counter() - seeding
    api = world.api(world.alice)

    async def total() -> int:
        count: int = (await api.get("/api/v1/stats", params={"team_id": world.team_id})).json()["total"]
        return count

    await eventually(total, lambda n: n == incidents, timeout=120, what="every report")
    samples: list[float] = []
    for _ in range(rounds):
        response = await timed(samples, api.get("/api/v1/stats", params={"team_id": world.team_id}))
        assert response.json()["ended"] == incidents
    return {"stats_10k_incidents": {**summary(samples), "incidents": incidents, "seed_seconds": round(seeded, 1)}}


async def main(rounds: int) -> dict[str, Any]:
    stack = await start_stack()
    try:
        results: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "rounds": rounds}
        results |= await slash_replies(make_world(stack), rounds)
        results |= await rest_commands(make_world(stack), rounds)
        results |= await stats_over(make_world(stack), 10_000, 20)
        return results
    finally:
        await stack.stop()


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    results = asyncio.run(main(rounds))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    for name, value in results.items():
        print(f"{name:>22}: {value}")
    exit_process(0)
