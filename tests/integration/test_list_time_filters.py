"""Time filters of the incident list and the statistics: any valid time is answered, a
time without an offset is UTC, and nothing is misreported as an outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.service import RPCError, RPCStatusCode

from service.unavailability import rpc_error
from tests.harness import World, eventually
from tests.integration.slash_helpers import create_playbook


async def test_extreme_and_naive_times_are_answered(world: World) -> None:
    playbook = await create_playbook(world, world.alice)
    api = world.api(world.alice)
    started = await api.post(
        "/api/v1/incidents", json={"team_id": world.team_id, "playbook_id": playbook["id"], "name": "Disk full"}
    )
    assert started.status_code == 201, started.text
    incident_id = started.json()["id"]

    async def listed(**params: str) -> list[str]:
        response = await api.get("/api/v1/incidents", params={"team_id": world.team_id, **params})
        assert response.status_code == 200, (params, response.text)
        return [item["id"] for item in response.json()["items"]]

    await eventually(listed, lambda ids: incident_id in ids, what="the incident to be listed")
    everything = [
        {"started_after": "0001-01-01T00:00:00Z"},
        {"started_after": "0001-01-01T00:00:00+01:00"},
        {"started_before": "9999-12-31T23:59:59.999999Z"},
        {"started_before": "9999-12-31T23:59:59-05:00"},
        {"started_after": "0001-01-01T00:00:00", "started_before": "9999-12-31T23:59:59.999999"},
    ]
    for params in everything:
        assert incident_id in await listed(**params), params
    assert await listed(started_before="0001-01-01T00:00:00Z") == []
    assert await listed(started_after="9999-12-31T23:59:59.999999Z") == []
    # No offset: UTC. An hour ago in UTC includes the incident, an hour ahead excludes it.
    now = datetime.now(UTC).replace(tzinfo=None)
    assert incident_id in await listed(started_after=(now - timedelta(hours=1)).isoformat())
    assert incident_id not in await listed(started_after=(now + timedelta(hours=1)).isoformat())
    for params in ({"since": "0001-01-01T00:00:00+01:00"}, {"until": "9999-12-31T23:59:59.999999Z"}):
        stats = await api.get("/api/v1/stats", params={"team_id": world.team_id, **params})
        assert stats.status_code == 200, (params, stats.text)
    bad = await api.get("/api/v1/incidents", params={"team_id": world.team_id, "started_after": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "validation_error"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (RPCStatusCode.INVALID_ARGUMENT, 422),
        (RPCStatusCode.FAILED_PRECONDITION, 500),
        (RPCStatusCode.PERMISSION_DENIED, 500),
        (RPCStatusCode.UNAVAILABLE, 503),
        (RPCStatusCode.DEADLINE_EXCEEDED, 503),
    ],
)
def test_only_unavailability_is_reported_as_an_outage(code: RPCStatusCode, status: int) -> None:
    mapped = rpc_error(RPCError("invalid query: IncidentStartedAt", code, b""))
    assert mapped.status == status
    assert (mapped.code == "temporal_unavailable") == (status == 503)
