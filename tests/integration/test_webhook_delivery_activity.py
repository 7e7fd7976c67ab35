"""One webhook attempt (activities/webhook_delivery.py) against a real receiver over real HTTP.

`send_signed` is the attempt's HTTP part: signed as Standard Webhooks says (the receiver
verifies every request with the `standardwebhooks` library), sent to the vetted address, and
whatever the receiver does (accept, refuse, redirect, fail, stall, go away) becomes the
attempt's outcome. The activity itself (`deliver_webhook`) then runs in Temporal's activity
environment against a real Temporal dev server, reading its target from a stand-in owner
workflow by the query's name, as it does from `WebhookSubscriptionsWorkflow`.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from standardwebhooks import Webhook
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

import payload_sealing
from activities.webhook_delivery import (
    EXCERPT_CHARS,
    RETRY_AFTER_MAX_SECONDS,
    USER_AGENT,
    WebhookDelivery,
    attempt_for_answer,
    excerpt,
    parse_retry_after,
    send_signed,
)
from devstack.embedded_http import free_port
from devstack.temporal_dev_server import TemporalDevServer
from models.webhooks import (
    BODY_MAX_BYTES,
    RESPONSE_READ_BYTES,
    AttemptOutcome,
    DeliverWebhook,
    DeliveryAttempt,
    TargetForDelivery,
    new_secret,
)
from tests.webhook_receiver import WebhookReceiver
from webhook_targets import VettedTarget, parse_networks

TIMEOUT = 10.0
LOOPBACK = parse_networks("127.0.0.0/8,::1/128")


def body(seq: int = 1) -> str:
    return json.dumps({"id": "evt_1", "type": "incident.started", "seq": seq, "data": {"name": "Disk full ü"}})


def target_of(
    receiver: WebhookReceiver, *, host: str = "127.0.0.1", addresses: tuple[str, ...] = ("127.0.0.1",)
) -> VettedTarget:
    """The receiver as `vet_target` would have vetted it, under `host` (no DNS asked)."""
    url = receiver.url if host == "127.0.0.1" else receiver.url_for(host)
    scheme = url.split(":", 1)[0]
    return VettedTarget(url=url, host=host, port=receiver.port, scheme=scheme, addresses=addresses)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(new_secret()) as running:
        yield running


async def send(
    receiver: WebhookReceiver,
    *,
    target: VettedTarget | None = None,
    secrets: list[str] | None = None,
    event_id: str = "evt_1",
    text: str | None = None,
    timeout: float = TIMEOUT,
    tls: ssl.SSLContext | None = None,
) -> DeliveryAttempt:
    """One attempt to the receiver (signed with its secret unless `secrets` are given)."""
    assert receiver.secret is not None
    return await send_signed(
        target or target_of(receiver),
        event_id,
        body() if text is None else text,
        [receiver.secret] if secrets is None else secrets,
        timeout=timeout,
        tls=tls,
    )


# ---------------------------------------------------------------------------- signing


async def test_a_delivery_is_signed_as_standard_webhooks_says(receiver: WebhookReceiver) -> None:
    before = int(time.time())
    attempt = await send(receiver, event_id="evt_2f9")
    assert attempt == DeliveryAttempt(outcome=AttemptOutcome.ACCEPTED, status=200)
    assert receiver.bad_signatures == 0
    [delivery] = receiver.deliveries
    assert delivery.payload == json.loads(body())  # verified by the library, parsed from the exact bytes
    assert delivery.body == body().encode()
    assert delivery.webhook_id == "evt_2f9"
    assert before <= int(delivery.headers["webhook-timestamp"]) <= int(time.time())
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["user-agent"] == USER_AGENT == "incident-response-webhooks/1"
    assert delivery.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert delivery.path == "/hooks/incidents"
    assert len(delivery.signatures) == 1
    assert delivery.signatures[0].startswith("v1,")
    # Another secret does not verify it.
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_secret()).verify(delivery.body, delivery.headers)


async def test_during_a_rotation_both_secrets_sign_and_each_verifies(receiver: WebhookReceiver) -> None:
    current, previous = new_secret(), new_secret()
    receiver.secret = current
    attempt = await send(receiver, event_id="evt_rot", secrets=[current, previous])
    assert attempt.outcome is AttemptOutcome.ACCEPTED
    [delivery] = receiver.deliveries
    assert len(delivery.signatures) == 2
    assert Webhook(current).verify(delivery.body, delivery.headers) == json.loads(body())
    assert Webhook(previous).verify(delivery.body, delivery.headers) == json.loads(body())
    # A receiver that still has only the previous secret accepts it too.
    receiver.secret = previous
    attempt = await send(receiver, event_id="evt_rot", secrets=[current, previous])
    assert attempt.outcome is AttemptOutcome.ACCEPTED
    assert receiver.bad_signatures == 0


async def test_a_receiver_that_rejects_the_signature_is_a_refusal(receiver: WebhookReceiver) -> None:
    attempt = await send(receiver, secrets=[new_secret()])
    assert attempt == DeliveryAttempt(outcome=AttemptOutcome.REFUSED, status=401, error="bad signature")
    assert receiver.bad_signatures == 1
    assert receiver.deliveries == []


# ---------------------------------------------------------------------------- answers


async def test_2xx_is_accepted(receiver: WebhookReceiver) -> None:
    receiver.accept(204)
    assert await send(receiver) == DeliveryAttempt(outcome=AttemptOutcome.ACCEPTED, status=204)


async def test_503_is_retried_with_the_receivers_words(receiver: WebhookReceiver) -> None:
    receiver.down()
    assert await send(receiver) == DeliveryAttempt(
        outcome=AttemptOutcome.RETRY, status=503, error="down for maintenance"
    )
    receiver.answer(500)
    retry = DeliveryAttempt(outcome=AttemptOutcome.RETRY, status=500, error="Internal Server Error")
    assert await send(receiver) == retry
    receiver.answer(408, "slow\r\nclient\tgo\x00away")
    retry = DeliveryAttempt(outcome=AttemptOutcome.RETRY, status=408, error="slow client go away")
    assert await send(receiver) == retry


async def test_429_is_retried_after_the_receivers_retry_after(receiver: WebhookReceiver) -> None:
    receiver.answer(429, "slow down", {"Retry-After": "7"})
    assert await send(receiver) == DeliveryAttempt(
        outcome=AttemptOutcome.RETRY, status=429, error="slow down", retry_after_seconds=7.0
    )
    receiver.answer(503, "", {"Retry-After": "soon"})
    attempt = await send(receiver)
    assert (attempt.outcome, attempt.retry_after_seconds) == (AttemptOutcome.RETRY, None)


async def test_410_and_other_4xx_are_refused_with_the_receivers_words(receiver: WebhookReceiver) -> None:
    receiver.answer(410, '{"error": "this hook was removed"}')
    assert await send(receiver) == DeliveryAttempt(
        outcome=AttemptOutcome.REFUSED, status=410, error='{"error": "this hook was removed"}'
    )
    receiver.answer(404)
    assert await send(receiver) == DeliveryAttempt(outcome=AttemptOutcome.REFUSED, status=404, error="Not Found")


async def test_a_redirect_is_refused_and_not_followed(receiver: WebhookReceiver) -> None:
    elsewhere = receiver.url + "/moved"
    receiver.answer(302, "", {"Location": elsewhere})
    attempt = await send(receiver)
    assert attempt == DeliveryAttempt(
        outcome=AttemptOutcome.REFUSED,
        status=302,
        error=f"answered 302 (a redirect to {elsewhere}); redirects are not followed: give the final URL",
    )
    assert [seen.path for seen in receiver.requests] == ["/hooks/incidents"]


async def test_a_huge_or_endless_answer_is_read_only_up_to_its_first_4_kib(receiver: WebhookReceiver) -> None:
    assert RESPONSE_READ_BYTES == 4096
    receiver.answer(500, b"x" * (1024 * 1024))
    attempt = await send(receiver)
    assert attempt.outcome is AttemptOutcome.RETRY
    assert attempt.status == 500
    assert len(attempt.error) == EXCERPT_CHARS
    assert attempt.error.endswith("…")
    # An answer that never ends: reading it all would never finish.
    receiver.endless(503)
    started = time.monotonic()
    attempt = await send(receiver, timeout=30.0)
    assert (attempt.outcome, attempt.status) == (AttemptOutcome.RETRY, 503)
    assert time.monotonic() - started < 5.0
    assert len(attempt.error) == EXCERPT_CHARS


# ---------------------------------------------------------------------------- no answer


async def test_a_refused_connection_is_retried_and_the_receiver_coming_back_accepts(
    receiver: WebhookReceiver,
) -> None:
    await receiver.refuse_connections()
    assert await send(receiver) == DeliveryAttempt(outcome=AttemptOutcome.RETRY, error="connection refused")
    await receiver.reopen()
    assert (await send(receiver)).outcome is AttemptOutcome.ACCEPTED
    assert receiver.delivered_ids == ["evt_1"]


async def test_a_receiver_slower_than_the_timeout_is_retried(receiver: WebhookReceiver) -> None:
    receiver.slow(10.0)
    started = time.monotonic()
    assert await send(receiver, timeout=0.5) == DeliveryAttempt(
        outcome=AttemptOutcome.RETRY, error="timed out after 0.5 s"
    )
    assert time.monotonic() - started < 3.0
    await receiver.wait_for_requests(1)


async def test_an_address_that_cannot_be_reached_makes_way_for_the_next_vetted_one(receiver: WebhookReceiver) -> None:
    # `localhost` resolving to ::1 first while the receiver listens on 127.0.0.1 only.
    attempt = await send(receiver, target=target_of(receiver, host="localhost", addresses=("::1", "127.0.0.1")))
    assert attempt.outcome is AttemptOutcome.ACCEPTED
    [delivery] = receiver.deliveries
    assert delivery.headers["host"] == f"localhost:{receiver.port}"


async def test_a_body_over_the_limit_is_refused_without_sending(receiver: WebhookReceiver) -> None:
    attempt = await send(receiver, text="x" * (BODY_MAX_BYTES + 1))
    assert attempt.outcome is AttemptOutcome.REFUSED
    assert "over the limit of 256 KiB" in attempt.error
    assert receiver.requests == []


# ---------------------------------------------------------------------------- TLS to the vetted address


async def test_https_goes_to_the_vetted_address_and_checks_the_certificate_against_the_host_name() -> None:
    """No DNS at all: `webhooks.test` is only a name on the certificate; the connection goes to
    the vetted 127.0.0.1, with the name in the Host header and the TLS server name."""
    async with WebhookReceiver(new_secret(), tls_names=["webhooks.test"]) as receiver:
        target = target_of(receiver, host="webhooks.test")
        attempt = await send(receiver, target=target, tls=receiver.client_tls())
        assert attempt == DeliveryAttempt(outcome=AttemptOutcome.ACCEPTED, status=200)
        [delivery] = receiver.deliveries
        assert delivery.headers["host"] == f"webhooks.test:{receiver.port}"

        # A name the certificate does not carry is a TLS failure, retried (the certificate may be fixed).
        attempt = await send(receiver, target=target_of(receiver, host="other.test"), tls=receiver.client_tls())
        assert attempt.outcome is AttemptOutcome.RETRY
        assert attempt.status is None
        assert attempt.error.startswith("TLS: the receiver's certificate was not accepted (")
        assert "other.test" in attempt.error
        # Not trusted at all (the default trust store has never heard of the test CA).
        attempt = await send(receiver, target=target)
        assert attempt.outcome is AttemptOutcome.RETRY
        assert attempt.error.startswith("TLS: ")
        assert len(receiver.requests) == 1


# ---------------------------------------------------------------------------- pure parts


def test_retry_after_takes_seconds_or_an_http_date_and_ignores_garbage() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(None) is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0.0
    assert parse_retry_after("99999999999999999999") == RETRY_AFTER_MAX_SECONDS
    for garbage in ("", "-5", "1.5", "soon", "٣", "Mon, 99 Foo 2026 99:99:99 GMT", "9" * 5000):
        assert parse_retry_after(garbage, now=now) in (None, RETRY_AFTER_MAX_SECONDS), garbage
    assert parse_retry_after("-5") is None
    assert parse_retry_after("٣") is None  # an Arabic-Indic digit is no delta-seconds


def test_what_each_status_means() -> None:
    headers = httpx.Headers({"Retry-After": "3"})
    assert attempt_for_answer(200, headers, b"").outcome is AttemptOutcome.ACCEPTED
    assert attempt_for_answer(299, headers, b"").outcome is AttemptOutcome.ACCEPTED
    assert attempt_for_answer(301, headers, b"").error == (
        "answered 301 (a redirect); redirects are not followed: give the final URL"
    )
    for status in (408, 429, 500, 502, 503, 504, 599):
        attempt = attempt_for_answer(status, headers, b"")
        assert (attempt.outcome, attempt.status, attempt.retry_after_seconds) == (AttemptOutcome.RETRY, status, 3.0)
    for status in (400, 401, 403, 404, 409, 410, 413, 422, 451):
        attempt = attempt_for_answer(status, headers, b"nope")
        assert (attempt.outcome, attempt.status, attempt.error, attempt.retry_after_seconds) == (
            AttemptOutcome.REFUSED, status, "nope", None)  # fmt: skip
    assert attempt_for_answer(799, headers, b"").outcome is AttemptOutcome.RETRY


def test_an_excerpt_is_one_printable_line_of_at_most_200_characters() -> None:
    assert excerpt(b"  fine\n\n  thanks\t ") == "fine thanks"
    assert excerpt(b"\x1b[31mred\x1b[0m \xff\xfe") == "[31mred [0m \ufffd\ufffd"
    assert len(excerpt(("é" * 300).encode())) == 200


# ---------------------------------------------------------------------------- the activity


@workflow.defn(name="WebhookOwnerStandIn", sandboxed=False)
class OwnerStandIn:
    """What the activity needs of a subscriptions workflow: its `target_for_delivery` query."""

    def __init__(self) -> None:
        self._targets: dict[str, TargetForDelivery] = {}

    @workflow.run
    async def run(self, targets: dict[str, TargetForDelivery]) -> None:
        self._targets = targets
        await workflow.wait_condition(lambda: False)

    @workflow.query(name="target_for_delivery")
    def target_for_delivery(self, subscription_id: str) -> TargetForDelivery | None:
        return self._targets.get(subscription_id)


SIGNING_SECRET = "webhook-delivery-activity-tests"


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[Client]:
    server = TemporalDevServer(port=free_port(), data_converter=payload_sealing.data_converter(SIGNING_SECRET))
    client = await server.start()
    try:
        async with Worker(client, task_queue="webhook-owner-stand-in", workflows=[OwnerStandIn]):
            yield client
    finally:
        await server.stop()


async def owner(client: Client, targets: dict[str, TargetForDelivery]) -> str:
    workflow_id = f"webhooks-team-{uuid.uuid4().hex}"
    await client.start_workflow(OwnerStandIn.run, targets, id=workflow_id, task_queue="webhook-owner-stand-in")
    return workflow_id


async def test_the_activity_reads_its_target_from_the_owner_and_delivers_it(
    temporal: Client, receiver: WebhookReceiver
) -> None:
    assert receiver.secret is not None
    owner_id = await owner(temporal, {"sub_1": TargetForDelivery(url=receiver.url, secrets=[receiver.secret])})
    delivery = WebhookDelivery(temporal, allowed_networks=LOOPBACK, attempt_timeout_seconds=TIMEOUT)
    assert delivery.all() == [delivery.deliver_webhook]
    request = DeliverWebhook(owner_workflow_id=owner_id, subscription_id="sub_1", event_id="evt_a1", body=body())
    attempt = await ActivityEnvironment().run(delivery.deliver_webhook, request)
    assert attempt == DeliveryAttempt(outcome=AttemptOutcome.ACCEPTED, status=200, url=receiver.url)
    assert receiver.delivered_ids == ["evt_a1"]
    assert receiver.bad_signatures == 0

    # A subscription the owner no longer has, or an owner that is gone: nothing to deliver to.
    gone = DeliveryAttempt(outcome=AttemptOutcome.GONE, error="the subscription was deleted")
    deleted = request.model_copy(update={"subscription_id": "sub_deleted"})
    assert await ActivityEnvironment().run(delivery.deliver_webhook, deleted) == gone
    no_owner = request.model_copy(update={"owner_workflow_id": "webhooks-team-never-was"})
    assert await ActivityEnvironment().run(delivery.deliver_webhook, no_owner) == gone
    assert len(receiver.requests) == 1


async def test_the_activity_refuses_an_unsafe_url_and_retries_an_unresolvable_one(
    temporal: Client, receiver: WebhookReceiver
) -> None:
    assert receiver.secret is not None
    owner_id = await owner(
        temporal,
        {
            "local": TargetForDelivery(url=receiver.url, secrets=[receiver.secret]),
            "metadata": TargetForDelivery(url="http://169.254.169.254/latest", secrets=[receiver.secret]),
            "nowhere": TargetForDelivery(url="https://receiver.invalid/hooks", secrets=[receiver.secret]),
        },
    )
    production = WebhookDelivery(temporal, allowed_networks=[], attempt_timeout_seconds=TIMEOUT)

    def request(subscription_id: str) -> DeliverWebhook:
        return DeliverWebhook(owner_workflow_id=owner_id, subscription_id=subscription_id, event_id="e", body=body())

    refused = await ActivityEnvironment().run(production.deliver_webhook, request("local"))
    assert refused.outcome is AttemptOutcome.REFUSED
    assert refused.error == (
        "127.0.0.1 is a loopback address; list its network in WEBHOOK_ALLOWED_NETWORKS to allow it"
    )
    metadata = await ActivityEnvironment().run(production.deliver_webhook, request("metadata"))
    assert metadata.outcome is AttemptOutcome.REFUSED
    assert "cloud metadata address" in metadata.error
    nowhere = await ActivityEnvironment().run(production.deliver_webhook, request("nowhere"))
    assert nowhere.outcome is AttemptOutcome.RETRY
    assert nowhere.error.startswith("receiver.invalid could not be resolved")
    assert receiver.requests == []


async def test_the_activity_heartbeats_while_the_receiver_is_slow(temporal: Client, receiver: WebhookReceiver) -> None:
    assert receiver.secret is not None
    owner_id = await owner(temporal, {"sub_1": TargetForDelivery(url=receiver.url, secrets=[receiver.secret])})
    delivery = WebhookDelivery(temporal, allowed_networks=LOOPBACK, attempt_timeout_seconds=TIMEOUT)
    environment = ActivityEnvironment()
    beats: list[float] = []
    environment.on_heartbeat = lambda *details: beats.append(time.monotonic())
    receiver.slow(2.6)
    request = DeliverWebhook(owner_workflow_id=owner_id, subscription_id="sub_1", event_id="evt_slow", body=body())
    attempt = await environment.run(delivery.deliver_webhook, request)
    assert attempt.outcome is AttemptOutcome.ACCEPTED
    assert len(beats) >= 2
