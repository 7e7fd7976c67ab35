"""Outgoing webhooks end to end: subscriptions through REST (who may see them), every event
signed and verified by the `standardwebhooks` library, in `seq` order with none missing while
the receiver is down for a while, a 410 stopping one event (on the timeline, said once), unsafe
URLs refused, a worker killed mid-delivery, redelivery, and the secret never in clear in history."""

from __future__ import annotations

import base64
import json
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from models.incident import EventType, incident_workflow_id
from models.incident_commands import PostStatusUpdate
from models.webhooks import incident_webhooks_workflow_id
from tests.harness import World, eventually
from tests.integration.incident_helpers import actor, playbook, start, update
from tests.integration.slash_helpers import Started, bot_posts, command, create_playbook, outage, state
from tests.integration.test_alert_intake import team_admin
from tests.integration.test_incident_durability import worker_process
from tests.webhook_receiver import WebhookReceiver


async def subscribe(world: World, playbook_id: str, url: str, events: list[str] | None = None) -> dict[str, Any]:
    async with world.api(world.alice) as api:
        made = await api.post(f"/api/v1/playbooks/{playbook_id}/webhooks", json={"url": url, "events": events or ["*"]})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


@dataclass
class Hooked:
    """An incident of alice's playbook and a receiver subscribed to the playbook's webhooks."""

    incident: Started
    playbook_id: str
    receiver: WebhookReceiver
    subscription: dict[str, Any]


@asynccontextmanager
async def hooked(world: World, events: list[str] | None = None) -> AsyncIterator[Hooked]:
    incident = await outage(world)
    playbook_id = (await state(world, incident.id)).playbook_id
    assert playbook_id is not None
    async with WebhookReceiver() as receiver:
        made = await subscribe(world, playbook_id, receiver.url, events)
        receiver.secret = made["secret"]
        yield Hooked(incident, playbook_id, receiver, made)


async def updates(world: World, incident: Started, *messages: str) -> None:
    """Alice posts status updates, one after another."""
    for message in messages:
        await command(world, world.alice, f"update {message}", incident)


def payloads_in(node: Any) -> Iterator[tuple[bytes, bytes]]:
    """Every payload in a history's JSON: its encoding and its data, decoded from base64."""
    if isinstance(node, dict):
        if isinstance(node.get("metadata"), dict) and "encoding" in node["metadata"]:
            yield base64.b64decode(node["metadata"]["encoding"]), base64.b64decode(node.get("data", ""))
        for value in node.values():
            yield from payloads_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from payloads_in(value)


def payloads(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [seen.payload for seen in receiver.deliveries]


async def test_subscriptions_are_for_playbook_editors_and_the_secret_is_shown_once(world: World) -> None:
    incident = await outage(world)
    playbook_id = (await state(world, incident.id)).playbook_id
    assert playbook_id is not None
    async with WebhookReceiver() as receiver:
        made = await subscribe(world, playbook_id, receiver.url, ["incident.status_updated"])
        assert made["secret"].startswith("whsec_")
        assert made["events"] == ["incident.status_updated"]
        base = f"/api/v1/playbooks/{playbook_id}/webhooks"
        async with world.api(world.alice) as api:
            listed = (await api.get(base)).json()
            assert [s["id"] for s in listed] == [made["id"]]
            assert "secret" not in listed[0]
            assert "secret" not in (await api.get(f"{base}/{made['id']}")).json()
            rotated = (await api.post(f"{base}/{made['id']}/secret")).json()
            assert rotated["secret"].startswith("whsec_")
            assert rotated["secret"] != made["secret"]
        for outsider in (world.bob, world.mallory):  # not a playbook member; not in the team
            async with world.api(outsider) as api:
                for response in (
                    await api.get(base),
                    await api.get(f"{base}/{made['id']}"),
                    await api.post(base, json={"url": receiver.url, "events": ["*"]}),
                    await api.delete(f"{base}/{made['id']}"),
                    await api.get(f"{base}/{made['id']}/deliveries"),
                ):
                    assert response.status_code == 404, response.text
        # Neither secret is in clear anywhere in the owner's history (the codec sealed them).
        history = await world.stack.temporal.get_workflow_handle(f"webhooks-playbook-{playbook_id}").fetch_history()
        found = list(payloads_in(json.loads(history.to_json())))
        assert any(encoding == b"binary/sealed" for encoding, _ in found)
        for secret in (made["secret"], rotated["secret"]):
            assert not any(secret.encode() in data or secret[6:].encode() in data for _, data in found)


async def test_unsafe_urls_are_refused_with_the_reason(world: World) -> None:
    incident = await outage(world)
    playbook_id = (await state(world, incident.id)).playbook_id
    base = f"/api/v1/playbooks/{playbook_id}/webhooks"
    async with world.api(world.alice) as api:
        for url, fragment in (
            ("http://169.254.169.254/latest/meta-data", "metadata"),
            ("http://169.254.10.10/hook", "link-local"),
            ("http://10.1.2.3/hook", "private"),
            ("ftp://example.com/hook", "http"),
            ("http://user:pw@example.com/hook", "password"),
        ):
            refused = await api.post(base, json={"url": url, "events": ["*"]})
            assert refused.status_code == 422, (url, refused.text)
            assert fragment in refused.text.lower(), (url, refused.text)
        bad_event = await api.post(base, json={"url": "http://127.0.0.1:9/x", "events": ["incident.exploded"]})
        assert bad_event.status_code == 422
        assert "unknown event" in bad_event.text


async def test_every_event_arrives_signed_in_order_even_after_the_receiver_was_down(world: World) -> None:
    async with hooked(world) as hook:
        incident, playbook_id, receiver, made = hook.incident, hook.playbook_id, hook.receiver, hook.subscription
        await updates(world, incident, "Investigating the primary")
        await receiver.wait_for(lambda r: len(r.deliveries) >= 1, what="the first event")
        receiver.down()
        await command(world, world.alice, "stage next --force", incident)
        await command(world, world.alice, "update Failing over", incident)
        await receiver.wait_for(lambda r: len(r.requests) >= 3, what="attempts while down")
        listing = f"/api/v1/playbooks/{playbook_id}/webhooks/{made['id']}/deliveries"

        async def waiting() -> list[dict[str, Any]]:
            async with world.api(world.alice) as api:
                items: list[dict[str, Any]] = (await api.get(listing)).json()["items"]
            return [d for d in items if d["state"] == "pending"]

        # The event being retried and the one queued behind it are both listed, the head with its errors.
        pending = await eventually(
            waiting,
            lambda p: sorted((d["seq"], d["last_status"]) for d in p) == [(2, 503), (3, None)],
            what="both waiting events listed, the head with its last answer",
        )
        assert next(d for d in pending if d["seq"] == 2)["next_attempt_at"]
        assert next(d for d in pending if d["seq"] == 3)["attempts"] == 0
        receiver.accept()
        async with world.api(world.alice) as api:
            ended = await api.post(f"/api/v1/incidents/{incident.id}/end", json={"confirmed": True})
        assert ended.status_code == 200, ended.text
        await receiver.wait_for(
            lambda r: any(p["type"] == "incident.ended" for p in payloads(r)), what="every event, the end last"
        )
        seen = payloads(receiver)
        types = [p["type"] for p in seen]
        assert types == [
            "incident.status_updated",
            "incident.stage_changed",
            "incident.status_updated",
            "incident.ended",
        ], types
        assert [p["seq"] for p in seen] == [1, 2, 3, 4]
        assert receiver.bad_signatures == 0
        assert len(set(receiver.delivered_ids)) == 4
        assert all(p["incident"]["id"] == incident.id for p in seen)
        assert seen[0]["actor"]["id"] == world.alice.id
        assert seen[0]["data"]["summary"]

        # The deliveries list says what happened, newest first (once the last report reached it:
        # the receiver has the event before the workflow has its answer).
        async def delivered() -> list[dict[str, Any]]:
            async with world.api(world.alice) as api:
                items: list[dict[str, Any]] = (await api.get(listing)).json()["items"]
            return [d for d in items if d["state"] == "delivered"]

        done = await eventually(delivered, lambda d: [x["seq"] for x in d] == [4, 3, 2, 1], what="all four listed")
        assert max(d["attempts"] for d in done) >= 2


async def test_a_refused_event_is_on_the_timeline_and_told_once_and_later_events_still_go(world: World) -> None:
    async with hooked(world, ["incident.status_updated"]) as hook:
        incident, receiver = hook.incident, hook.receiver
        receiver.answer(410, "gone")
        await updates(world, incident, "one", "two")

        def failures(s: Any) -> list[str]:
            return [e.summary for e in s.timeline if e.type == EventType.WEBHOOK_FAILED]

        found = await eventually(
            lambda: state(world, incident.id), lambda s: len(failures(s)) == 2, what="two refusals on the timeline"
        )
        assert all("410" in summary for summary in failures(found))
        told = [p for p in bot_posts(world, incident.channel_id) if "Webhook " in p and "refused" in p]
        assert len(told) == 1, told
        receiver.accept()
        await command(world, world.alice, "update three", incident)
        await receiver.wait_for(lambda r: len(r.deliveries) == 1, what="the next event")
        assert payloads(receiver)[0]["seq"] == 3


async def test_a_delivered_event_can_be_delivered_again_with_its_id_and_seq(world: World) -> None:
    async with hooked(world, ["incident.status_updated"]) as hook:
        incident, playbook_id, receiver, made = hook.incident, hook.playbook_id, hook.receiver, hook.subscription
        await updates(world, incident, "one", "two")
        await receiver.wait_for(lambda r: len(r.deliveries) == 2, what="two events")
        first = receiver.deliveries[0]
        base = f"/api/v1/playbooks/{playbook_id}/webhooks/{made['id']}/deliveries"

        async def delivered() -> list[dict[str, Any]]:
            async with world.api(world.alice) as api:
                items: list[dict[str, Any]] = (await api.get(base)).json()["items"]
            return [d for d in items if d["state"] == "delivered"]

        await eventually(delivered, lambda d: len(d) == 2, what="two deliveries listed")
        async with world.api(world.alice) as api:
            again = await api.post(f"{base}/{first.webhook_id}/redeliver", json={"and_later": True})
        assert again.status_code == 200, again.text
        assert again.json() == {"queued": 2}
        await receiver.wait_for(lambda r: len(r.deliveries) == 4, what="both again")
        assert receiver.delivered_ids[2:] == receiver.delivered_ids[:2]
        assert [p["seq"] for p in payloads(receiver)] == [1, 2, 1, 2]


async def test_an_incident_without_subscriptions_starts_no_webhooks_workflow(world: World) -> None:
    incident = await outage(world)
    await command(world, world.alice, "update nothing listens", incident)
    handle = world.stack.temporal.get_workflow_handle(incident_workflow_id(incident.id))
    history = await handle.fetch_history()
    forwarded = [
        e
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == "forward_webhook_events"
    ]
    assert forwarded, "the events went to the webhooks lane"
    outbox = world.stack.temporal.get_workflow_handle(incident_webhooks_workflow_id(incident.id))
    with pytest.raises(RPCError) as missing:
        await outbox.describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


@pytest.mark.slow
async def test_a_worker_killed_mid_delivery_loses_nothing_and_repeats_only_with_the_same_id(world: World) -> None:
    """The receiver holds the request while the incident's worker (`python worker.py`) is
    SIGKILLed: the next worker tries again once the attempt stops heartbeating, with the same
    `webhook-id`, and the event is delivered (at most repeated, never lost)."""
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    tess = team_admin(world)
    fast = {
        "WEBHOOK_ALLOWED_NETWORKS": world.stack.settings.webhook_allowed_networks,
        "WEBHOOK_RETRY_INITIAL_SECONDS": "0.2",
        "WEBHOOK_RETRY_MAX_SECONDS": "1",
    }
    async with WebhookReceiver() as receiver:
        async with world.api(tess) as api:
            made = await api.post(
                f"/api/v1/teams/{world.team_id}/webhooks", json={"url": receiver.url, "events": ["incident.started"]}
            )
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]
        receiver.slow(6.0)
        async with worker_process(world, queue, **fast) as first:
            handle = await start(world, book=playbook(world), name="Dies mid-delivery", task_queue=queue)
            await receiver.wait_for(lambda r: len(r.requests) == 1, timeout=30, what="the held delivery")
            first.send_signal(signal.SIGKILL)
            await first.wait()
        receiver.accept()
        async with worker_process(world, queue, **fast):
            await receiver.wait_for(lambda r: len(r.requests) >= 2, timeout=60, what="the delivery tried again")
            await receiver.wait_for(lambda r: bool(r.deliveries), timeout=30, what="a delivery accepted")
        ids = {seen.webhook_id for seen in receiver.requests}
        assert ids == {f"evt_{handle.id.removeprefix('incident-')}_1"}, ids
        assert receiver.bad_signatures == 0
        assert {p["seq"] for p in payloads(receiver)} == {1}


@pytest.mark.slow
async def test_an_event_not_accepted_within_the_give_up_time_is_given_up_once_and_the_next_goes(world: World) -> None:
    """WEBHOOK_GIVE_UP_SECONDS (here 2 s) after an event, with the receiver down all along, the
    event is given up: on the timeline, said in the channel, listed; the next event still goes."""
    queue = f"giveup-{uuid.uuid4().hex[:8]}"
    tess = team_admin(world)
    settings = {
        "WEBHOOK_ALLOWED_NETWORKS": world.stack.settings.webhook_allowed_networks,
        "WEBHOOK_RETRY_INITIAL_SECONDS": "0.2",
        "WEBHOOK_RETRY_MAX_SECONDS": "0.5",
        "WEBHOOK_GIVE_UP_SECONDS": "2",
    }
    async with WebhookReceiver() as receiver, worker_process(world, queue, **settings):
        base = f"/api/v1/teams/{world.team_id}/webhooks"
        async with world.api(tess) as api:
            made = await api.post(base, json={"url": receiver.url, "events": ["*"]})
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]
        receiver.down()
        handle = await start(world, book=playbook(world), name="Nobody listens", task_queue=queue)
        incident_id = handle.id.removeprefix("incident-")

        async def gave_up() -> list[str]:
            current = await handle.query("get_state")
            return [e["summary"] for e in current["timeline"] if e["type"] == "webhook_failed"]

        summaries = await eventually(gave_up, bool, timeout=30, what="the started event given up")
        assert "did not accept" in summaries[0]
        assert "503" in summaries[0]
        attempts = len(receiver.requests)
        assert attempts >= 3

        async def first_delivery() -> dict[str, Any]:
            async with world.api(tess) as api:
                items: list[dict[str, Any]] = (await api.get(f"{base}/{made.json()['id']}/deliveries")).json()["items"]
            return next(d for d in items if d["event_id"] == f"evt_{incident_id}_1")

        first = await eventually(first_delivery, lambda d: d["state"] == "gave_up", what="the list says given up")
        assert first["last_status"] == 503
        receiver.accept()
        await update(handle, PostStatusUpdate(actor=actor(world.alice), message="Still down"))
        await receiver.wait_for(
            lambda r: any(p["type"] == "incident.status_updated" for p in payloads(r)), what="the next event"
        )
        assert receiver.bad_signatures == 0


async def test_subscriptions_as_yaml_export_and_apply_with_errors_on_their_line(world: World) -> None:
    first = await outage(world)
    playbook_id = (await state(world, first.id)).playbook_id
    other = await create_playbook(world, world.alice, "Cache outage")
    base = f"/api/v1/playbooks/{playbook_id}/webhooks"
    target = f"/api/v1/playbooks/{other['id']}/webhooks"
    async with world.api(world.alice) as api:
        await api.post(base, json={"url": "http://127.0.0.1:9/a", "events": ["incident.started"], "description": "a"})
        await api.post(base, json={"url": "http://127.0.0.1:9/b", "events": ["*"]})
        exported = await api.get(f"{base}/export")
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("application/yaml")
        assert "whsec_" not in exported.text
        text = exported.text
        applied = await api.put(f"{target}/import", content=text, headers={"content-type": "application/yaml"})
        assert applied.status_code == 200, applied.text
        made = applied.json()
        assert sorted(s["url"] for s in made["created"]) == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
        assert all(s["secret"].startswith("whsec_") for s in made["created"])
        again = (await api.put(f"{target}/import", content=text)).json()
        assert again["created"] == []
        assert len(again["unchanged"]) == 2
        changed = text.replace("incident.started", "incident.ended")
        assert [s["events"] for s in (await api.put(f"{target}/import", content=changed)).json()["updated"]] == [
            ["incident.ended"]
        ]
        only_b = "webhooks:\n  - url: http://127.0.0.1:9/b\n    events: ['*']\n"
        pruned = (await api.put(f"{target}/import", params={"prune": "true"}, content=only_b)).json()
        assert len(pruned["deleted"]) == 1
        assert [s["url"] for s in (await api.get(target)).json()] == ["http://127.0.0.1:9/b"]
        unsafe = only_b + "  - url: http://169.254.169.254/x\n    events: ['*']\n"
        refused = await api.put(f"{target}/import", content=unsafe)
        assert refused.status_code == 422
        assert refused.json()["fields"]["webhooks[1].url"].startswith("line 4:")
        assert [s["url"] for s in (await api.get(target)).json()] == ["http://127.0.0.1:9/b"]
    async with world.api(world.bob) as api:  # not a member of the playbook
        assert (await api.get(f"{base}/export")).status_code == 404
        assert (await api.put(f"{base}/import", content=only_b)).status_code == 404


async def test_a_stuck_receiver_holds_back_neither_the_incident_nor_another_subscription(world: World) -> None:
    incident = await outage(world)
    playbook_id = (await state(world, incident.id)).playbook_id
    assert playbook_id is not None
    async with WebhookReceiver() as stuck, WebhookReceiver() as quick:
        stuck.secret = (await subscribe(world, playbook_id, stuck.url, ["incident.status_updated"]))["secret"]
        quick.secret = (await subscribe(world, playbook_id, quick.url, ["incident.status_updated"]))["secret"]
        stuck.slow(20.0)  # holds each request far longer than the test takes
        reply = await command(world, world.alice, "update Failing over", incident)
        assert reply.startswith("Status update posted.")
        await stuck.wait_for(lambda r: len(r.requests) == 1, what="the stuck receiver's request")
        await quick.wait_for(lambda r: len(r.deliveries) == 1, what="the other subscription's delivery")
        await world.standin.wait_for(
            lambda: any("Failing over" in p for p in bot_posts(world, incident.channel_id)), timeout=15
        )
        second = await command(world, world.alice, "update Still failing over", incident)
        assert second.startswith("Status update posted.")
        await quick.wait_for(lambda r: len(r.deliveries) == 2, what="the next event, while the other is stuck")
        assert [p["seq"] for p in payloads(quick)] == [1, 2]
        assert stuck.deliveries == []


async def test_seq_goes_on_where_it_stopped_when_the_incidents_webhooks_workflow_starts_again(world: World) -> None:
    """An incident's webhooks workflow closes a week after its last delivery (here: terminated,
    as if it had); the incident's next event starts a new one, whose seq follows the last."""
    async with hooked(world, ["incident.status_updated"]) as hook:
        incident, receiver = hook.incident, hook.receiver
        await updates(world, incident, "one", "two")
        await receiver.wait_for(lambda r: len(r.deliveries) == 2, what="two events")
        outbox = world.stack.temporal.get_workflow_handle(incident_webhooks_workflow_id(incident.id))
        await outbox.terminate("as if closed a week after its last delivery")
        await updates(world, incident, "three")
        await receiver.wait_for(lambda r: len(r.deliveries) == 3, what="the event after the new start")
        assert [p["seq"] for p in payloads(receiver)] == [1, 2, 3]
        runs = [e async for e in world.stack.temporal.list_workflows(f"WorkflowId = '{outbox.id}'")]
        assert len(runs) == 2
