"""Alerts open incidents: integrations (team admins only), the receiving endpoint, one incident
per alert group, driven by the real Alertmanager and by Grafana's and the generic payloads."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx

from devstack.alertmanager import Alertmanager, alert
from models.incident import EventType, IncidentState, IncidentStatus, incident_workflow_id
from models.incident_alerts import ALERT_EVENTS_KEPT
from tests.harness import World, eventually
from tests.integration.alert_helpers import require_alertmanager
from tests.integration.slash_helpers import bot_posted, create_playbook, settled, state

PAYLOADS = Path(__file__).parent.parent / "unit" / "payloads"


def team_admin(world: World) -> Any:
    tess = world.new_user("tess", in_team=False)
    world.standin.add_team_member(world.team_id, tess.id, roles="team_user team_admin")
    world.standin.add_channel_member(world.town_square["id"], tess.id)
    return tess


async def make_integration(world: World, admin: Any, kind: str, **fields: Any) -> dict[str, Any]:
    async with world.api(admin) as api:
        made = await api.post(
            "/api/v1/integrations", json={"team_id": world.team_id, "kind": kind, "name": f"{kind} prod", **fields}
        )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def send(world: World, integration: dict[str, Any], body: Any, *, token: str | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            integration["url"],
            content=content,
            headers={
                "Authorization": f"Bearer {token or integration['token']}",
                "Content-Type": "application/json",
            },
        )


async def deliveries(world: World, admin: Any, integration: dict[str, Any]) -> list[dict[str, Any]]:
    async with world.api(admin) as api:
        answer = await api.get(f"/api/v1/integrations/{integration['id']}/deliveries")
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = answer.json()
    return listed


def alerts_of(incident: IncidentState, kind: EventType) -> list[str]:
    return [e.details["fingerprint"] for e in incident.timeline if e.type == kind]


async def exists(world: World, incident_id: str) -> bool:
    try:
        await world.stack.temporal.get_workflow_handle(incident_workflow_id(incident_id)).describe()
    except Exception:
        return False
    return True


async def test_only_team_admins_manage_integrations_and_the_token_is_shown_once(world: World) -> None:
    tess = team_admin(world)
    book = await create_playbook(world, tess, "Paging")
    made = await make_integration(world, tess, "alertmanager", playbook_id=book["id"])
    assert made["url"].endswith(f"/hooks/alerts/{made['id']}")
    assert len(made["token"]) >= 40
    assert made["token_hint"] == made["token"][-4:]

    async with world.api(tess) as api:
        read = (await api.get(f"/api/v1/integrations/{made['id']}")).json()
        assert read["token"] is None
        assert "token_sha256" not in read
        listed = await eventually(
            lambda: api.get("/api/v1/integrations", params={"team_id": world.team_id}),
            lambda r: [i["id"] for i in r.json()] == [made["id"]],
            what="the integration to be listed",
        )
        assert listed.status_code == 200
    async with world.api(world.alice) as api:  # a member, not an admin
        assert (await api.get("/api/v1/integrations", params={"team_id": world.team_id})).status_code == 403
        assert (await api.get(f"/api/v1/integrations/{made['id']}")).status_code == 404
        assert (await api.post(f"/api/v1/integrations/{made['id']}/token")).status_code == 404
    async with world.api(world.mallory) as api:  # outside the team
        assert (await api.get("/api/v1/integrations", params={"team_id": world.team_id})).status_code == 404
        assert (await api.delete(f"/api/v1/integrations/{made['id']}")).status_code == 404
    async with world.api(tess) as api:
        refused = await api.post(
            "/api/v1/integrations",
            json={"team_id": world.team_id, "kind": "generic", "name": "x", "playbook_id": "nosuchbook"},
        )
        assert refused.status_code == 422
        assert "no playbook" in refused.json()["message"]
        bad_regex = await api.post(
            "/api/v1/integrations",
            json={"team_id": world.team_id, "kind": "generic", "name": "x", "routes": [{"match": {"a": "/(/"}}]},
        )
        assert bad_regex.status_code == 422

    # The token is nowhere in the integration's history: only its hash.
    history = await world.stack.temporal.get_workflow_handle(f"integration-{made['id']}").fetch_history()
    assert made["token"] not in history.to_json()


async def test_alertmanager_opens_one_incident_per_group_and_records_every_alert(world: World) -> None:
    binary = require_alertmanager()
    tess = team_admin(world)
    book = await create_playbook(world, tess, "Disk playbook")
    integration = await make_integration(world, tess, "alertmanager", playbook_id=book["id"])
    async with Alertmanager(integration["url"], bearer_token=integration["token"], binary=binary) as manager:
        await manager.fire([alert("DiskFull", labels={"instance": "db-1"}, summary="Disk full on db-1")])
        first = await eventually(
            lambda: deliveries(world, tess, integration),
            lambda d: any(x["incident_id"] for x in d),
            what="the first notification to open an incident",
        )
        incident_id = next(x["incident_id"] for x in first if x["incident_id"])
        opened = await settled(world, incident_id)
        assert opened.name == "Disk full on db-1"
        assert opened.source is not None
        assert opened.source.integration_id == integration["id"]
        assert opened.commander_id == tess.id
        assert tess.id in opened.member_ids

        # A second alert joins the group; repeats and the join land in the same incident.
        await manager.fire([alert("DiskFull", labels={"instance": "db-2"}, summary="Disk full on db-2")])
        joined = await eventually(
            lambda: state(world, incident_id),
            lambda s: len(alerts_of(s, EventType.ALERT_FIRING)) == 2,
            what="the second alert to join",
        )
        assert joined.source is not None
        assert joined.source.firing == 2
        await bot_posted(world, str(opened.channel_id), "Disk full on db-2")

        # Another group: another incident.
        await manager.fire([alert("HighLatency", summary="p99 above 2 s")])
        other = await eventually(
            lambda: deliveries(world, tess, integration),
            lambda d: len({x["incident_id"] for x in d if x["incident_id"]}) == 2,
            what="the second group's incident",
        )

        # Both alerts of the first group resolve: recorded once each, and the channel told.
        await manager.fire(
            [
                alert("DiskFull", labels={"instance": "db-1"}, summary="Disk full on db-1", resolved=True),
                alert("DiskFull", labels={"instance": "db-2"}, summary="Disk full on db-2", resolved=True),
            ]
        )
        resolved = await eventually(
            lambda: state(world, incident_id),
            lambda s: len(alerts_of(s, EventType.ALERT_RESOLVED)) == 2,
            what="both alerts to resolve",
        )
        await bot_posted(world, str(opened.channel_id), "Every alert of the group has resolved")
        # Wait for at least one repeat of the other group, then count.
        await eventually(
            lambda: deliveries(world, tess, integration),
            lambda d: len(d) >= len(other) + 2,
            what="more notifications (repeats)",
        )
    final = await state(world, incident_id)
    assert sorted(alerts_of(final, EventType.ALERT_FIRING)) == sorted(alerts_of(resolved, EventType.ALERT_FIRING))
    assert len(alerts_of(final, EventType.ALERT_FIRING)) == 2
    assert len(alerts_of(final, EventType.ALERT_RESOLVED)) == 2
    incidents = {x["incident_id"] for x in await deliveries(world, tess, integration) if x["incident_id"]}
    assert len(incidents) == 2
    async with world.api(world.alice) as api:  # not in the private incident's channel
        assert (await api.get(f"/api/v1/incidents/{incident_id}")).status_code == 404
    async with world.api(tess) as api:  # its commander
        record = (await api.get(f"/api/v1/incidents/{incident_id}")).json()
    assert record["source"]["integration_id"] == integration["id"]
    assert record["source"]["firing"] == 0
    assert record["source"]["resolved"] == 2
    assert record["source"]["links"] == ["http://prometheus.example/graph"]


async def test_a_wrong_token_a_bad_payload_and_a_rotated_token_are_refused_and_change_nothing(world: World) -> None:
    tess = team_admin(world)
    integration = await make_integration(world, tess, "generic")
    notification = {"title": "Checkout errors", "group_key": "checkout"}
    assert (await send(world, integration, notification, token="wrong")).status_code == 401
    unknown = dict(integration, url=integration["url"].replace(integration["id"], "zzzzzzzzzz"))
    assert (await send(world, unknown, notification)).status_code == 401
    bad = await send(world, integration, {"description": "no title"})
    assert bad.status_code == 400
    assert "title" in bad.json()["message"]
    assert (await send(world, integration, b"{not json")).status_code == 400
    big = await send(world, integration, {"title": "x", "description": "y" * 2_000_000})
    assert big.status_code == 413

    # Basic auth with the token as password works (for tools that only do basic auth).
    basic = base64.b64encode(f"grafana:{integration['token']}".encode()).decode()
    async with httpx.AsyncClient(timeout=30) as http:
        taken = await http.post(integration["url"], json=notification, headers={"Authorization": f"Basic {basic}"})
    assert taken.status_code == 200, taken.text
    assert taken.json()["opened"] is True

    async with world.api(tess) as api:
        rotated = (await api.post(f"/api/v1/integrations/{integration['id']}/token")).json()
    assert rotated["token"]
    assert rotated["token"] != integration["token"]
    assert (await send(world, integration, notification)).status_code == 401
    again = await send(world, integration, notification, token=rotated["token"])
    assert again.status_code == 200
    assert again.json()["incident_id"] == taken.json()["incident_id"]
    assert again.json()["opened"] is False
    # Deliveries are recorded about once a second, in batches.
    recorded = await eventually(
        lambda: deliveries(world, tess, integration),
        lambda d: {"400", "200"} <= {x["status"] for x in d},
        what="the refused and the taken deliveries recorded",
    )
    assert [d["status"] for d in recorded].count("400") == 2  # the bad payload and the bad JSON


async def test_a_burst_for_one_group_opens_one_incident_and_an_ended_one_is_followed_by_a_new_one(
    world: World,
) -> None:
    tess = team_admin(world)
    integration = await make_integration(world, tess, "generic")
    # 1,000 notifications for one group: 500 different ones, each sent twice, 50 at a time.
    bodies = [
        {"title": "Queue backlog", "group_key": "queue", "labels": {"shard": str(n)}, "status": "firing"}
        for n in range(500)
    ]
    limit = asyncio.Semaphore(50)

    async def sent(body: dict[str, Any]) -> httpx.Response:
        async with limit:
            return await send(world, integration, body)

    answers = await asyncio.gather(*(sent(body) for body in bodies + bodies))
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers if a.status_code != 200]
    ids = {a.json()["incident_id"] for a in answers}
    assert len(ids) == 1
    (incident_id,) = ids
    # One notification opened it (it was sent twice: both copies say so, the same answer).
    openers = [body for body, a in zip(bodies + bodies, answers, strict=True) if a.json()["opened"]]
    assert len(openers) == 2
    assert openers[0] == openers[1]
    burst = await settled(world, incident_id)
    assert burst.source is not None
    assert burst.source.firing == 500  # each alert once, though sent twice
    assert len(alerts_of(burst, EventType.ALERT_FIRING)) == ALERT_EVENTS_KEPT  # the rest counted
    assert burst.source.unlisted == 500 - ALERT_EVENTS_KEPT

    async with world.api(tess) as api:
        ended = await api.post(f"/api/v1/incidents/{incident_id}/end")
    assert ended.status_code == 200, ended.text
    later = await send(world, integration, {"title": "Queue backlog", "group_key": "queue", "labels": {"shard": "0"}})
    assert later.status_code == 200
    assert later.json()["opened"] is True
    assert later.json()["incident_id"] != incident_id
    assert (await state(world, incident_id)).status == IncidentStatus.ENDED
    assert await exists(world, later.json()["incident_id"])


async def test_grafanas_documented_payload_opens_an_incident_named_from_its_alert(world: World) -> None:
    tess = team_admin(world)
    integration = await make_integration(world, tess, "grafana")
    answer = await send(world, integration, (PAYLOADS / "grafana_example.json").read_bytes())
    assert answer.status_code == 200, answer.text
    incident = await settled(world, answer.json()["incident_id"])
    assert incident.source is not None
    assert incident.source.firing == 2
    assert incident.name == "This alert was triggered for zone us-1"  # its summary annotation
    await bot_posted(world, str(incident.channel_id), "#### Alerts")


async def test_a_resolved_group_sets_the_automatic_end_and_a_command_calls_it_off(world: World) -> None:
    """The route's `auto_end_after_minutes` becomes a durable timer in the incident's workflow once
    every alert resolved (seen in its history); a person's command calls it off, on record."""
    tess = team_admin(world)
    integration = await make_integration(
        world, tess, "generic", routes=[{"match": {"service": "/pay.*/"}, "auto_end_after_minutes": 45}]
    )
    labels = {"service": "payments"}
    fired = await send(world, integration, {"title": "Payments slow", "group_key": "pay", "labels": labels})
    incident_id = fired.json()["incident_id"]
    await settled(world, incident_id)
    resolved = {"title": "Payments slow", "group_key": "pay", "labels": labels, "status": "resolved"}
    assert (await send(world, integration, resolved)).status_code == 200
    handle = world.stack.temporal.get_workflow_handle(incident_workflow_id(incident_id))

    async def auto_end_timers() -> list[float]:
        return [
            e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
            async for e in handle.fetch_history_events()
            if e.HasField("timer_started_event_attributes")
            and e.user_metadata.summary.data
            and b"automatic end" in e.user_metadata.summary.data
        ]

    timers = await eventually(auto_end_timers, bool, what="the automatic end's timer")
    assert 44 * 60 < timers[0] <= 45 * 60
    ended_at = (await state(world, incident_id)).source
    assert ended_at is not None
    assert ended_at.auto_end_at is not None
    channel = str((await state(world, incident_id)).channel_id)
    await bot_posted(world, channel, "ends automatically at")

    async with world.api(tess) as api:
        noted = await api.post(f"/api/v1/incidents/{incident_id}/notes", json={"text": "Watching it"})
    assert noted.status_code == 200, noted.text
    after = await state(world, incident_id)
    assert after.source is not None
    assert after.source.auto_end_at is None
    assert after.status == IncidentStatus.ONGOING
    await bot_posted(world, channel, "will not end automatically")


async def test_an_alertmanager_with_a_wrong_token_is_refused_and_opens_nothing(world: World) -> None:
    binary = require_alertmanager()
    tess = team_admin(world)
    integration = await make_integration(world, tess, "alertmanager")

    async def failed_notifications(manager: Alertmanager) -> float:
        async with httpx.AsyncClient(timeout=10) as http:
            metrics = (await http.get(f"{manager.url}/metrics")).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("alertmanager_notifications_failed_total") and 'integration="webhook"' in line
        )

    async with Alertmanager(integration["url"], bearer_token="not-the-token", binary=binary) as manager:
        await manager.fire([alert("Intruder", summary="Should open nothing")])
        await eventually(lambda: failed_notifications(manager), lambda n: n >= 1, what="a refused notification")
        assert "401" in manager.log_tail()
    assert await deliveries(world, tess, integration) == []  # not even recorded: nobody was authenticated
    team = world.team_id
    listed = [e async for e in world.stack.temporal.list_workflows(f"IncidentTeamId = '{team}'")]
    assert listed == []


async def test_an_integration_exported_as_yaml_imports_back_with_a_new_token(world: World) -> None:
    tess = team_admin(world)
    book = await create_playbook(world, tess, "Sev1 response")
    made = await make_integration(
        world,
        tess,
        "alertmanager",
        playbook_id=book["id"],
        routes=[{"match": {"severity": "critical"}, "playbook_id": book["id"], "commander_id": world.alice.id}],
    )
    async with world.api(tess) as api:
        exported = await api.get(f"/api/v1/integrations/{made['id']}/export")
        assert exported.status_code == 200, exported.text
        assert made["token"] not in exported.text
        assert "playbook: Sev1 response" in exported.text
        assert f"commander: {world.alice.username}" in exported.text
        imported = await api.post(
            "/api/v1/integrations/import",
            params={"team_id": world.team_id},
            content=exported.text.replace("name: alertmanager prod", "name: copy"),
            headers={"Content-Type": "application/yaml"},
        )
        assert imported.status_code == 201, imported.text
        copy = imported.json()
        assert copy["token"]
        assert copy["token"] != made["token"]
        assert copy["routes"] == made["routes"]
        assert copy["playbook_id"] == book["id"]
        wrong = await api.post(
            "/api/v1/integrations/import",
            params={"team_id": world.team_id},
            content="kind: generic\nname: x\nroutes:\n  - match: {a: b}\n    playbook: Nope\n",
            headers={"Content-Type": "application/yaml"},
        )
    assert wrong.status_code == 422
    assert wrong.json()["fields"] == {"routes.0.playbook": "line 5: no playbook titled 'Nope'"}
    async with world.api(world.alice) as api:  # not an admin
        refused = await api.post(
            "/api/v1/integrations/import",
            params={"team_id": world.team_id},
            content=exported.text,
            headers={"Content-Type": "application/yaml"},
        )
    assert refused.status_code == 403
