"""Webhook models and the payload codec, as pure logic: what a subscription accepts (any text
is either a subscription or a validation error), the delivery body's shape and bound, the retry
schedule, and sealing (a secret anywhere in a payload seals all of it; nothing else is sealed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload

import payload_sealing
from models.common import Model
from models.webhooks import (
    BODY_MAX_BYTES,
    INCIDENT_EVENTS,
    EventActor,
    Secret,
    SubscriptionSpec,
    WebhookEvent,
    event_body,
    new_secret,
)
from workflows.incident_webhooks_workflow import retry_delay

pytestmark = pytest.mark.fast


@settings(max_examples=300)
@given(url=st.text(max_size=300), events=st.lists(st.text(max_size=40), max_size=5))
def test_any_text_is_a_subscription_or_a_validation_error(url: str, events: list[str]) -> None:
    try:
        spec = SubscriptionSpec(url=url, events=events)
    except ValidationError:
        return
    assert spec.url.startswith(("http://", "https://"))
    assert spec.events


@pytest.mark.parametrize(
    ("events", "kept"),
    [
        (["incident.started", "incident.started"], ["incident.started"]),
        (["incident.ended", "*"], ["*"]),
        (["deploy.freeze"], ["deploy.freeze"]),
    ],
)
def test_events_are_deduplicated_and_star_means_all(events: list[str], kept: list[str]) -> None:
    assert SubscriptionSpec(url="https://example.com/x", events=events).events == kept


@pytest.mark.parametrize(
    ("events", "fragment"),
    [(["incident.exploded"], "unknown event"), (["Deploy Freeze"], "is no event type"), ([], "at least 1")],
)
def test_a_bad_event_list_says_what_is_wrong(events: list[str], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        SubscriptionSpec(url="https://example.com/x", events=events)


def event(data: dict[str, Any]) -> WebhookEvent:
    return WebhookEvent(
        id="evt_abc_1",
        type=INCIDENT_EVENTS[0],
        number=1,
        occurred_at=datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
        actor=EventActor(id="u", username="alice"),
        incident={"id": "abc", "name": "DB down"},
        data=data,
    )


@settings(max_examples=50)
@given(size=st.integers(min_value=0, max_value=600_000), seq=st.integers(min_value=1, max_value=10**6))
def test_a_body_is_json_with_its_seq_and_never_over_the_bound(size: int, seq: int) -> None:
    body = event_body(event({"note": "x" * size}), seq)
    assert len(body.encode()) <= BODY_MAX_BYTES
    parsed = json.loads(body)
    assert parsed["seq"] == seq
    assert parsed["occurred_at"] == "2026-12-07T10:00:00Z"
    assert set(parsed) == {"id", "type", "seq", "occurred_at", "actor", "incident", "data"}
    if size > BODY_MAX_BYTES:
        assert parsed["data"]["truncated"] is True


@given(
    attempts=st.integers(min_value=1, max_value=60),
    jitter=st.floats(min_value=0.8, max_value=1.2),
    retry_after=st.none() | st.floats(min_value=0, max_value=10_000),
)
def test_the_retry_schedule_doubles_to_its_ceiling_and_honours_retry_after(
    attempts: int, jitter: float, retry_after: float | None
) -> None:
    delay = retry_delay(attempts, 5.0, 3600.0, jitter, retry_after)
    assert delay <= max(3600.0 * 1.2, retry_after or 0)
    assert delay >= min(5.0 * 2 ** (attempts - 1), 3600.0) * jitter - 1e-9
    if retry_after is not None:
        assert delay >= retry_after
    assert retry_delay(attempts + 1, 5.0, 3600.0, jitter, None) >= retry_delay(attempts, 5.0, 3600.0, jitter, None)


class Holder(Model):
    name: str
    secrets: list[Secret] = []


async def round_trip(converter: Any, value: Any) -> tuple[Payload, Any]:
    [payload] = await converter.encode([value])
    [back] = await converter.decode([payload], [type(value)])
    return payload, back


async def test_a_secret_anywhere_in_a_payload_seals_it_and_nothing_else_is_sealed() -> None:
    converter = payload_sealing.data_converter("signing secret")
    secret = new_secret()
    sealed, back = await round_trip(converter, Holder(name="x", secrets=[secret]))
    assert back == Holder(name="x", secrets=[secret])
    assert sealed.metadata["encoding"] == payload_sealing.SEALED_ENCODING
    assert secret.encode() not in sealed.data
    assert secret[6:].encode() not in sealed.data
    plain, back = await round_trip(converter, Holder(name="visible"))
    assert plain.metadata["encoding"] == b"json/plain"
    assert b"visible" in plain.data
    assert payload_sealing.SEAL_ME not in plain.metadata


async def test_a_sealed_payload_opens_only_with_its_key_and_unaltered() -> None:
    sealed, _ = await round_trip(payload_sealing.data_converter("old"), Holder(name="x", secrets=[new_secret()]))
    rotated = payload_sealing.data_converter("new", ["old"])
    [opened] = await rotated.decode([sealed], [Holder])
    assert opened.name == "x"
    with pytest.raises(ValueError, match="SIGNING_SECRET_PREVIOUS"):
        await payload_sealing.data_converter("new").decode([sealed], [Holder])
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(ValueError, match="altered"):
        await rotated.decode([tampered], [Holder])
    with pytest.raises(ValueError, match="without SIGNING_SECRET"):
        await payload_sealing.data_converter("").encode([Holder(name="x", secrets=[new_secret()])])
