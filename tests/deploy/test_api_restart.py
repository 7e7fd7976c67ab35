"""An API process killed with keyed requests in flight: every request, resent, applies once.

Clients (and load balancers) retry a request whose answer never came. With an
`Idempotency-Key` the retry is the same request: whether the killed process had sent the
update to Temporal or not, the resend through another API process applies it exactly once,
because the key is remembered by the incident's workflow, not by any API process.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest

from models.incident import EventType
from tests.deploy.test_scale_out import processes
from tests.harness import World, eventually
from tests.integration.slash_helpers import outage, state

pytestmark = pytest.mark.slow
REQUESTS = 60
LANES = 6


async def healthy(url: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        return (await http.get("/healthz")).status_code == 200


async def test_keyed_requests_in_flight_when_the_api_dies_apply_once_when_resent(world: World, tmp_path: Path) -> None:
    incident = await outage(world)
    headers = {"Authorization": f"Bearer {world.alice.token}"}
    path = f"/api/v1/incidents/{incident.id}/status-updates"
    async with processes(world, world.stack.settings.temporal_task_queue, tmp_path) as running:
        first = await running.api(0)
        first_url = f"http://127.0.0.1:{running.api_ports[0]}"
        await eventually(lambda: healthy(first_url), what="the first API process")

        async with httpx.AsyncClient(base_url=first_url, headers=headers, timeout=10) as http:

            async def send(n: int) -> int | None:
                try:
                    response = await http.post(
                        path, json={"message": f"update {n}"}, headers={"Idempotency-Key": f"k{n}"}
                    )
                except httpx.HTTPError:
                    return None  # the process died under this request, or before it
                return response.status_code

            async def lane(first: int) -> list[int | None]:
                # A client sending one request after another: at the kill, one is in flight.
                return [await send(n) for n in range(first, REQUESTS, LANES)]

            sending = [asyncio.create_task(lane(n)) for n in range(LANES)]
            await eventually(
                lambda: state(world, incident.id), lambda s: len(s.status_updates) >= LANES, what="a few updates"
            )
            first.send_signal(signal.SIGKILL)
            answered = [code for codes in await asyncio.gather(*sending) for code in codes]
        assert None in answered, "some requests were cut off by the kill"

        await running.api(1)
        second_url = f"http://127.0.0.1:{running.api_ports[1]}"
        await eventually(lambda: healthy(second_url), what="the second API process")
        async with httpx.AsyncClient(base_url=second_url, headers=headers, timeout=10) as http:
            for n in range(REQUESTS):
                response = await http.post(path, json={"message": f"update {n}"}, headers={"Idempotency-Key": f"k{n}"})
                assert response.status_code == 200, response.text

    after = await state(world, incident.id)
    # The timeline has every update (the state keeps the last STATUS_UPDATES_KEPT in full).
    posted = [e.details.get("message") for e in after.timeline if e.type == EventType.STATUS_UPDATE]
    assert Counter(posted) == Counter({f"update {n}": 1 for n in range(REQUESTS)})
