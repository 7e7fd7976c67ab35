"""The incident at any moment (`GET /api/v1/incidents/{id}?as_of=`) over a 5,000-event history.

An incident is worked through the REST API (items checked and unchecked, notes) until its
workflow's history, every run of it, holds at least `events` events (it continues as new when
Temporal suggests it, so it may span runs, as a long incident does). Then the moment
halfway through its life is asked for `rounds` times over HTTP, as a client asks: the API reads
every run's history from Temporal, decodes it and re-applies it (`workflows.incident_rebuild`).
The same work is timed in parts in this process, to say where the time goes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bench.timing import summary
from devstack.worlds import World, eventually
from service.incident_history import fetch_histories, incident_steps
from workflows.incident_rebuild import state_at

STEPS = 20


async def as_of(world: World, *, events: int = 5000, rounds: int = 20) -> dict[str, Any]:
    api = world.api(world.alice)
    book = await world.create_playbook(world.alice, "Bench as of", steps=[f"Step {n}" for n in range(STEPS)])
    started = await api.post(
        "/api/v1/incidents", json={"team_id": world.team_id, "name": "Bench as of", "playbook_id": book["id"]}
    )
    assert started.status_code == 201, started.text
    incident_id: str = started.json()["id"]
    base = f"/api/v1/incidents/{incident_id}"

    async def record() -> dict[str, Any]:
        body: dict[str, Any] = (await api.get(base)).json()
        return body

    first = await eventually(record, lambda r: r["channel_id"] is not None)
    client = world.stack.temporal
    counted = 0
    n = 0
    middle: datetime | None = None
    while counted < events:
        for _ in range(100):
            if n % 10 == 9:
                answer = await api.post(f"{base}/notes", json={"text": f"Bench note {n}"})
            else:
                state = "done" if (n // STEPS) % 2 == 0 else "open"
                answer = await api.put(f"{base}/checklists/0/items/{n % STEPS}/state", json={"state": state})
            assert answer.status_code == 200, answer.text
            n += 1
        counted = sum(len(history.events) for history in await fetch_histories(client, incident_id))
        if middle is None and counted >= events // 2:
            middle = datetime.now(UTC)
    assert middle is not None
    histories = await fetch_histories(client, incident_id)
    total = sum(len(history.events) for history in histories)

    samples: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        answer = await api.get(base, params={"as_of": middle.isoformat()})
        samples.append(time.perf_counter() - began)
        assert answer.status_code == 200, answer.text
    assert answer.json()["started_at"] == first["started_at"]

    # The request's parts, as the service does them: the run the incident was in at `middle`.
    read = await fetch_histories(client, incident_id, at=middle)
    fetches: list[float] = []
    decodes: list[float] = []
    replays: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        fetched_runs = await fetch_histories(client, incident_id, at=middle)
        fetched = time.perf_counter()
        steps = await incident_steps(fetched_runs, client.data_converter)
        decoded = time.perf_counter()
        assert state_at(steps, max(middle, steps[0].at)) is not None
        replayed = time.perf_counter()
        fetches.append(fetched - began)
        decodes.append(decoded - fetched)
        replays.append(replayed - decoded)
    return {
        "rest_as_of_5000_events": {
            **summary(samples),
            "events": total,
            "runs": len(histories),
            "events_read": sum(len(history.events) for history in read),
            "commands": n,
        },
        "as_of_fetch_history": summary(fetches),
        "as_of_decode": summary(decodes),
        "as_of_replay": summary(replays),
    }
