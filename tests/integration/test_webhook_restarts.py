"""Outgoing webhooks across restarts: Temporal stopped and started again on its database with
events waiting, the API process killed and started again, and a playbook rule's own event.

What a receiver sees in each case: every event, signed, in `seq` order 1..n with none
missing; at most a repeat, and then only with a `webhook-id` it has already seen.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

import payload_sealing
from devstack.embedded_http import free_port
from devstack.temporal_dev_server import TemporalDevServer
from models.common import new_short_id
from models.incident import EventType, IncidentState, incident_workflow_id
from models.incident_commands import PostStatusUpdate
from models.webhooks import (
    CreateSubscription,
    DeliveryRecord,
    DeliveryState,
    OwnerKind,
    Subscription,
    SubscriptionsState,
    WebhookOwner,
    new_secret,
)
from tests.deploy.test_scale_out import Processes, processes
from tests.harness import World, eventually, own_server, own_worker
from tests.integration.incident_helpers import actor, playbook, start, state, update
from tests.integration.slash_helpers import outage
from tests.integration.slash_helpers import state as incident_state
from tests.integration.test_alert_intake import team_admin
from tests.webhook_receiver import Seen, WebhookReceiver
from workflows.webhook_subscriptions_workflow import WebhookSubscriptionsWorkflow

# Bounds for what follows a restart on a slow machine (each wait ends as soon as it holds).
RESTART_SECONDS = 60.0


async def drained(handle: WorkflowHandle[Any, Any]) -> IncidentState:
    """The incident once its channel exists and its outbox is empty: every event it emitted so
    far was handed to its webhooks workflow (generous bound: a fresh server on a slow machine)."""
    return await eventually(
        lambda: state(handle),
        lambda s: s.channel_id is not None and not s.outbox,
        timeout=30,
        what="the outbox to drain",
    )


def event_ids(incident_id: str, count: int) -> list[str]:
    """The ids of an incident's first `count` webhook events (`evt_<incident>_<number>`)."""
    return [f"evt_{incident_id}_{number}" for number in range(1, count + 1)]


def assert_in_order_once_each(seen: Sequence[Seen], incident_id: str, count: int) -> None:
    """The accepted deliveries are the incident's events 1..count in `seq` order, each with its
    own id as `webhook-id`; a repeat only of the id just delivered (a retry of the same event)."""
    expected = event_ids(incident_id, count)
    firsts: list[str] = []
    for delivery in seen:
        payload = delivery.payload
        assert payload["id"] == delivery.webhook_id, (payload["id"], delivery.webhook_id)
        assert delivery.webhook_id == f"evt_{incident_id}_{payload['seq']}", (delivery.webhook_id, payload["seq"])
        if delivery.webhook_id in firsts:
            assert delivery.webhook_id == firsts[-1], f"{delivery.webhook_id} repeated after a later event"
            continue
        firsts.append(delivery.webhook_id)
    assert firsts == expected, firsts


def all_delivered(incident_id: str, count: int) -> Callable[[WebhookReceiver], bool]:
    """A receiver condition: each of the incident's events 1..count was accepted (at least once)."""
    wanted = set(event_ids(incident_id, count))
    return lambda r: wanted <= set(r.delivered_ids)


async def subscribe_team_on(world: World, client: Client, url: str) -> tuple[str, str]:
    """A team subscription to every event, made on `client`'s server as the service makes one
    (update-with-start of the team's `WebhookSubscriptionsWorkflow`), through a client that seals
    the secret with the stack's key; its id and secret."""
    settings = world.stack.settings
    sealing = Client(
        client.service_client,
        namespace=client.namespace,
        data_converter=payload_sealing.data_converter(settings.signing_secret, settings.previous_signing_secrets),
    )
    owner = WebhookOwner(kind=OwnerKind.TEAM, id=world.team_id)
    secret = new_secret()
    now = datetime.now(UTC)
    subscription = Subscription(
        id=new_short_id(),
        url=url,
        events=["*"],
        owner=owner,
        team_id=world.team_id,
        created_at=now,
        created_by=world.alice.id,
        updated_at=now,
        secret=secret,
        secret_hint=secret[-4:],
    )
    made: Subscription = await sealing.execute_update_with_start_workflow(
        WebhookSubscriptionsWorkflow.create_subscription,
        CreateSubscription(actor=actor(world.alice, admin=True), subscription=subscription),
        start_workflow_operation=WithStartWorkflowOperation(
            WebhookSubscriptionsWorkflow.run,
            SubscriptionsState(owner=owner, team_id=world.team_id),
            id=owner.workflow_id,
            task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        ),
    )
    assert made.secret == secret
    return made.id, secret


async def backlog(world: World, client: Client, receiver: WebhookReceiver) -> tuple[str, IncidentState]:
    """On `client`'s server (with a worker): a team subscription to every event for a receiver
    that is down, and an incident with its start and three status updates waiting, tried at
    least twice; the subscription's id and the incident as it then stands."""
    receiver.down()
    subscription_id, receiver.secret = await subscribe_team_on(world, client, receiver.url)
    handle = await start(world, client=client, name="Backlog across a Temporal restart")
    await drained(handle)
    for n in range(3):
        await update(handle, PostStatusUpdate(actor=actor(world.alice), message=f"Backlog {n}"))
    # Every event was handed to the webhooks workflow (the incident's outbox is empty).
    current = await drained(handle)
    assert current.webhook_events >= 4, "the start and three status updates"
    await receiver.wait_for(lambda r: len(r.requests) >= 2, timeout=30, what="attempts while down")
    return subscription_id, current


async def listed_delivered(client: Client, world: World, subscription_id: str, count: int) -> list[DeliveryRecord]:
    """The subscription's deliveries (its owner's query, newest first) once all `count` are delivered."""
    owner = client.get_workflow_handle(WebhookOwner(kind=OwnerKind.TEAM, id=world.team_id).workflow_id)

    async def listed() -> list[DeliveryRecord]:
        records: list[DeliveryRecord] | None = await owner.query(
            WebhookSubscriptionsWorkflow.deliveries, subscription_id
        )
        return records or []

    return await eventually(
        listed,
        lambda found: len(found) == count and all(r.state == DeliveryState.DELIVERED for r in found),
        timeout=30,
        what="every delivery listed as delivered",
    )


def assert_backlog_delivered(receiver: WebhookReceiver, incident_id: str, count: int) -> None:
    assert_in_order_once_each(receiver.deliveries, incident_id, count)
    assert receiver.deliveries[0].payload["type"] == "incident.started"
    assert receiver.bad_signatures == 0
    # Whatever was tried (refused while down, or accepted) carried one of the events' ids.
    assert {seen.webhook_id for seen in receiver.requests} == set(event_ids(incident_id, count))


@pytest.mark.slow
async def test_temporal_restarted_mid_backlog_delivers_every_event_in_order(world: World, tmp_path: Path) -> None:
    """Events pile up for a receiver that is down; Temporal (and the worker) stop, and start
    again on the same database: the backlog goes out, 1..n in order, signed, none missing."""
    db = tmp_path / "temporal.db"
    async with WebhookReceiver() as receiver:
        async with own_server(db_file=db) as (_, client), own_worker(world, client):
            subscription_id, before = await backlog(world, client, receiver)
        count = before.webhook_events
        assert receiver.deliveries == [], "nothing was accepted before the restart"

        async with own_server(db_file=db) as (_, client), own_worker(world, client):
            receiver.accept()
            await receiver.wait_for(
                all_delivered(before.id, count), timeout=RESTART_SECONDS, what="the whole backlog after the restart"
            )
            records = await listed_delivered(client, world, subscription_id, count)

    assert_backlog_delivered(receiver, before.id, count)
    assert sorted(r.seq for r in records) == list(range(1, count + 1))
    assert records[-1].attempts >= 3, "the first event was tried while the receiver was down, and after"


@pytest.mark.slow
async def test_temporal_killed_mid_delivery_repeats_only_that_event_with_its_id(world: World, tmp_path: Path) -> None:
    """As above, but Temporal is SIGKILLed (a crash) while the receiver holds the backlog's
    first request: the receiver accepts it, but the attempt's result never reaches Temporal.
    After the restart that attempt times out (no heartbeat) and the event is sent again, with
    the same `webhook-id` and seq; then the rest, in order."""
    db = tmp_path / "temporal.db"
    server = TemporalDevServer(port=free_port(), db_file=db)
    client = await server.start()
    try:
        async with WebhookReceiver() as receiver:
            async with own_worker(world, client):
                subscription_id, before = await backlog(world, client, receiver)
                receiver.slow(6.0)
                tried = len(receiver.requests)
                await receiver.wait_for(lambda r: len(r.requests) > tried, timeout=30, what="a held attempt")
                crash(server)
                held = receiver.requests[-1]
                assert held.answered is None, "Temporal was killed while the receiver held the request"
                # The worker stops (here) with the attempt's answer never reported.
            await server.stop()  # reaps the killed process
            count = before.webhook_events
            first = f"evt_{before.id}_1"
            receiver.accept()

            async with own_server(db_file=db) as (_, client), own_worker(world, client):
                await receiver.wait_for(
                    all_delivered(before.id, count), timeout=RESTART_SECONDS, what="the whole backlog after the crash"
                )
                # The held request was answered 200 (accepted), yet its result was lost: sent again.
                await receiver.wait_for(
                    lambda r: held.answered == 200 and r.delivered_ids.count(first) >= 2,
                    timeout=30,
                    what="the held event accepted, and sent again",
                )
                records = await listed_delivered(client, world, subscription_id, count)
    finally:
        await server.stop()

    assert_backlog_delivered(receiver, before.id, count)
    assert held.webhook_id == first
    assert sorted(r.seq for r in records) == list(range(1, count + 1))


def crash(server: TemporalDevServer) -> None:
    """SIGKILL the dev server's process group: no graceful stop, as in a crash."""
    process = server._process  # the harness has no crash of its own; stop() then only reaps it
    assert process is not None
    os.killpg(process.pid, signal.SIGKILL)


async def healthy(url: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        return (await http.get("/healthz")).status_code == 200


async def api_process(running: Processes, n: int) -> tuple[asyncio.subprocess.Process, str]:
    """`python -m api` on the `n`th of its two ports, once it answers."""
    port = running.api_ports[n]
    process = await running.spawn(f"api{n}", "-m", "api", API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    await eventually(lambda: healthy(url), timeout=RESTART_SECONDS, what=f"API process {n} to answer")
    return process, url


@pytest.mark.slow
async def test_the_api_killed_and_restarted_loses_no_delivery(world: World, tmp_path: Path) -> None:
    """The subscription is made through a `python -m api` process, which is killed while events
    wait for a receiver that is down. The receiver comes back with no API process running: every
    event arrives (deliveries never go through the API); the restarted API lists them delivered."""
    tess = team_admin(world)
    headers = {"Authorization": f"Bearer {tess.token}"}
    async with (
        WebhookReceiver() as receiver,
        processes(world, world.stack.settings.temporal_task_queue, tmp_path) as running,
    ):
        # Like the stack's, the API process accepts receivers on this machine.
        running.env["WEBHOOK_ALLOWED_NETWORKS"] = world.stack.settings.webhook_allowed_networks
        first, url = await api_process(running, 0)
        base = f"/api/v1/teams/{world.team_id}/webhooks"
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            made = await http.post(base, json={"url": receiver.url, "events": ["*"]})
        assert made.status_code == 201, made.text
        subscription = made.json()
        receiver.secret = subscription["secret"]
        receiver.down()

        handle = await start(world, book=playbook(world), name="Backlog across an API restart")
        await drained(handle)
        await update(handle, PostStatusUpdate(actor=actor(world.alice), message="Waiting for the receiver"))
        current = await drained(handle)
        await receiver.wait_for(lambda r: len(r.requests) >= 2, timeout=30, what="attempts while down")
        first.send_signal(signal.SIGKILL)
        await first.wait()

        attempts = len(receiver.requests)
        await receiver.wait_for(lambda r: len(r.requests) > attempts, timeout=30, what="an attempt with no API")
        receiver.accept()
        await receiver.wait_for(all_delivered(current.id, current.webhook_events), timeout=30, what="every event")
        assert receiver.deliveries, "delivered while no API process ran"

        _, url = await api_process(running, 1)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:

            async def listed() -> list[dict[str, Any]]:
                page = await http.get(f"{base}/{subscription['id']}/deliveries")
                assert page.status_code == 200, page.text
                items: list[dict[str, Any]] = page.json()["items"]
                return items

            items = await eventually(
                listed,
                lambda found: len(found) == current.webhook_events and all(d["state"] == "delivered" for d in found),
                timeout=30,
                what="every delivery listed as delivered",
            )

    assert_in_order_once_each(receiver.deliveries, current.id, current.webhook_events)
    assert receiver.bad_signatures == 0
    assert [d["seq"] for d in items] == list(range(current.webhook_events, 0, -1))
    assert items[-1]["attempts"] >= 2


async def test_a_playbook_rules_own_event_reaches_its_subscriber_signed(world: World) -> None:
    """A rule's `webhook` action sends its own event type to a playbook subscription to that
    type alone: one `deploy.freeze` event, seq 1, data naming the rule, signed; the status
    update that fired it goes to nobody (the subscription does not want it)."""
    rules = [
        {
            "name": "Freeze deploys",
            "when": {"status_set": "identified"},
            "then": [{"type": "webhook", "event_type": "deploy.freeze"}],
        }
    ]
    incident = await outage(world, rules=rules)
    playbook_id = (await incident_state(world, incident.id)).playbook_id
    assert playbook_id is not None
    async with WebhookReceiver() as receiver:
        async with world.api(world.alice) as api:
            made = await api.post(
                f"/api/v1/playbooks/{playbook_id}/webhooks", json={"url": receiver.url, "events": ["deploy.freeze"]}
            )
            assert made.status_code == 201, made.text
            receiver.secret = made.json()["secret"]
            posted = await api.post(
                f"/api/v1/incidents/{incident.id}/status-updates", json={"message": "Found it", "status": "identified"}
            )
            assert posted.status_code == 200, posted.text
        await receiver.wait_for(lambda r: len(r.deliveries) >= 1, timeout=30, what="the rule's event")
        # Every event of the incident was handed on (its status update too, which nobody wants)...
        after = await drained(world.stack.temporal.get_workflow_handle(incident_workflow_id(incident.id)))
        assert sum(1 for e in after.timeline if e.type == EventType.RULE_FIRED) == 1
        # ...and the subscription's deliveries list has this one event, delivered.
        async with world.api(world.alice) as api:
            listed = await eventually(
                lambda: api.get(f"/api/v1/playbooks/{playbook_id}/webhooks/{made.json()['id']}/deliveries"),
                lambda page: [d["state"] for d in page.json()["items"]] == ["delivered"],
                what="the one delivery listed",
            )
        assert listed.json()["items"][0]["type"] == "deploy.freeze"
        [delivery] = receiver.deliveries
        assert delivery.payload["type"] == "deploy.freeze"
        assert delivery.payload["data"] == {"rule": "Freeze deploys"}
        assert delivery.payload["seq"] == 1
        assert delivery.payload["incident"]["id"] == incident.id
        assert delivery.webhook_id == delivery.payload["id"]
        assert receiver.bad_signatures == 0
        assert len(receiver.requests) == 1
