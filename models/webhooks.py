"""Outgoing webhooks: subscriptions, the events incidents send, and their deliveries.

A subscription belongs to a playbook (the incidents started from it) or to a team (all its
incidents) and lives in its owner's `WebhookSubscriptionsWorkflow`, the only place its
secret is kept (sealed in history by the payload codec, `payload_sealing`). An incident
queues each event it emits (`WebhookEffect`); its webhooks lane hands the event to the
incident's `IncidentWebhooksWorkflow`, which delivers it to every subscription that wants
it, in order per subscription (`seq` 1, 2, 3... with no gaps), retrying until
`give_up_seconds`. Bodies follow the Standard Webhooks spec (https://www.standardwebhooks.com).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, PlainSerializer, SerializationInfo, field_validator

from models.common import Actor, MattermostId, Model, Trimmed

# The events incidents emit; a subscription names some of them, custom rule types, or "*".
INCIDENT_EVENTS = (
    "incident.started",
    "incident.status_updated",
    "incident.stage_changed",
    "incident.item_changed",
    "incident.commander_changed",
    "incident.members_added",
    "incident.ended",
    "incident.restarted",
    "incident.alert_firing",
    "incident.alert_resolved",
    "incident.alerts_resolved",
    "incident.paged",
    "incident.acknowledged",
    "incident.severity_changed",
    "incident.field_changed",
    "incident.retrospective_published",
)
ALL_EVENTS = "*"
# A playbook rule's own event type: dotted lowercase words, never in the `incident.` namespace.
CUSTOM_EVENT = re.compile(r"^[a-z][a-z0-9_-]{0,31}(\.[a-z0-9_-]{1,32}){1,3}\Z")

URL_MAX = 2048
DESCRIPTION_MAX = 256
EVENTS_MAX = 50
# What one owner (a playbook or a team) may have.
SUBSCRIPTIONS_MAX = 20
# A delivery's body is at most this (an event's own data is cut to fit, see `event_body`).
BODY_MAX_BYTES = 256 * 1024
# How much of a receiver's answer is read (and kept, shortened, as the last error).
RESPONSE_READ_BYTES = 4 * 1024
SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
SECRET_BYTES = 24
# How long the previous secret still signs beside the new one after a rotation.
ROTATION_OVERLAP_SECONDS = 24 * 3600
# What a subscription's log of deliveries keeps (newest), across all incidents.
DELIVERY_LOG_KEPT = 1000
# The delivered events an incident's webhooks workflow keeps for redelivery (newest).
EVENTS_KEPT = 200
# How many waiting events the incident's webhooks lane hands over at once (a burst of clicks is one activity).
FORWARD_BATCH_MAX = 50


def event_type_error(value: str) -> str | None:
    """Why `value` is no event type a subscription can name (None: it is one)."""
    if value == ALL_EVENTS or value in INCIDENT_EVENTS:
        return None
    if value.startswith("incident."):
        return f"unknown event {value!r}; the incident events are {', '.join(INCIDENT_EVENTS)}"
    if not CUSTOM_EVENT.match(value):
        return (
            f'{value!r} is no event type: use one of {", ".join(INCIDENT_EVENTS)}, "*" for all, '
            "or a rule's own type such as deploy.freeze (lowercase words joined by dots)"
        )
    return None


def custom_event_type(value: str) -> str:
    """A playbook rule's own event type (validator)."""
    if value.startswith("incident.") or not CUSTOM_EVENT.match(value):
        raise ValueError(
            "must be lowercase words joined by dots, such as deploy.freeze, outside the incident. namespace"
        )
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL, such as https://status.example.com/hooks/incidents")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password; put credentials in the receiver's URL path or query")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    return value


WebhookUrl = Annotated[Trimmed, Field(min_length=1, max_length=URL_MAX), AfterValidator(_http_url)]


def _events(values: list[str]) -> list[str]:
    for value in values:
        reason = event_type_error(value)
        if reason is not None:
            raise ValueError(reason)
    unique = list(dict.fromkeys(values))
    return [ALL_EVENTS] if ALL_EVENTS in unique else unique


EventTypes = Annotated[list[str], Field(min_length=1, max_length=EVENTS_MAX), AfterValidator(_events)]


def _seal_marker(value: str, info: SerializationInfo) -> str:
    """Serialize a secret as is, and tell the payload converter that the payload holds one:
    `payload_sealing` then encrypts the whole payload before it reaches Temporal."""
    if isinstance(info.context, dict):
        info.context["sealed"] = True
    return value


# A secret: whatever payload carries it is sealed (encrypted) by the payload codec.
Secret = Annotated[str, PlainSerializer(_seal_marker, return_type=str)]


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64 (made by the API, never a workflow)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class OwnerKind(StrEnum):
    PLAYBOOK = "playbook"
    TEAM = "team"


class WebhookOwner(Model):
    kind: OwnerKind
    id: str = Field(min_length=1, max_length=64)

    @property
    def workflow_id(self) -> str:
        return f"webhooks-{self.kind.value}-{self.id}"


def incident_webhooks_workflow_id(incident_id: str) -> str:
    return f"incident-webhooks-{incident_id}"


class SubscriptionSpec(Model):
    """What a person writes: where, which events, and a note."""

    url: WebhookUrl
    events: EventTypes
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class SubscriptionPublic(SubscriptionSpec):
    """A subscription as shown to the people who manage it (never its secret)."""

    id: str
    owner: WebhookOwner
    team_id: MattermostId
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int = 1
    # The secret's last four characters, to tell secrets apart.
    secret_hint: str = ""
    # Until when the previous secret still signs beside the current one (after a rotation).
    previous_secret_until: datetime | None = None


class Subscription(SubscriptionPublic):
    """A subscription as stored: with its secrets (sealed wherever they are in history)."""

    secret: Secret
    previous_secret: Secret | None = None

    def public(self) -> SubscriptionPublic:
        return SubscriptionPublic.model_validate(self.model_dump(exclude={"secret", "previous_secret"}))


class SubscriptionView(SubscriptionPublic):
    """What the API answers: the secret only right after it was made (creation, rotation)."""

    secret: str | None = None


class WebhooksDocument(Model):
    """An owner's subscriptions as a file (YAML): never their secrets."""

    webhooks: list[SubscriptionSpec] = Field(default_factory=list, max_length=SUBSCRIPTIONS_MAX)

    @field_validator("webhooks")
    @classmethod
    def _one_per_url(cls, webhooks: list[SubscriptionSpec]) -> list[SubscriptionSpec]:
        seen: dict[str, int] = {}
        for index, webhook in enumerate(webhooks):
            if webhook.url in seen:
                raise ValueError(
                    f"webhook {index + 1} has the same url as webhook {seen[webhook.url] + 1}; "
                    "list a URL once, with all its events"
                )
            seen[webhook.url] = index
        return webhooks


class ImportedWebhooks(Model):
    """What an import did: made (each with its secret, shown this once), changed, kept, deleted."""

    created: list[SubscriptionView] = Field(default_factory=list)
    updated: list[SubscriptionView] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)


class WebhookCommand(Model):
    """Who asks for a change; the API checked they may edit the playbook (or admin the team)."""

    actor: Actor


class CreateSubscription(WebhookCommand):
    subscription: Subscription


class UpdateSubscription(WebhookCommand):
    subscription_id: str
    spec: SubscriptionSpec
    updated_at: datetime


class RotateSecret(WebhookCommand):
    subscription_id: str
    secret: Secret
    at: datetime


class DeleteSubscription(WebhookCommand):
    subscription_id: str


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # The receiver refused it (a 4xx other than 408 and 429): not tried again.
    REFUSED = "refused"
    # Not accepted within the give-up time.
    GAVE_UP = "gave_up"
    # The subscription was deleted before it was delivered.
    DROPPED = "dropped"


class DeliveryRecord(Model):
    """One event to one subscription, as a subscription's deliveries list shows it."""

    # The event's id, and for a redelivery "#<n>" after it.
    delivery_id: str
    event_id: str
    type: str
    incident_id: str
    seq: int
    state: DeliveryState = DeliveryState.PENDING
    created_at: datetime
    attempts: int = 0
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str = ""
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    # Set on a delivery asked for again (the same event, id and seq).
    redelivery: bool = False


class DeliveryReport(Model):
    """Signal to the owner: a delivery of one of its subscriptions, as it now stands."""

    subscription_id: str
    record: DeliveryRecord


class SubscriptionsState(Model):
    """The state of one owner's `WebhookSubscriptionsWorkflow` (carried by continue-as-new)."""

    owner: WebhookOwner
    team_id: MattermostId
    subscriptions: list[Subscription] = Field(default_factory=list)
    # Each subscription's deliveries, newest last (bounded by DELIVERY_LOG_KEPT each).
    log: dict[str, list[DeliveryRecord]] = Field(default_factory=dict)


class SubscriptionFilter(Model):
    """What an incident's webhooks lane needs to know of a subscription (in its owner's memo)."""

    id: str
    events: list[str]

    def wants(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


class EventActor(Model):
    id: str
    username: str = ""


class WebhookEvent(Model):
    """An event as the incident emits it; `number` counts the incident's events (1, 2, 3...)."""

    id: str
    type: str
    number: int
    occurred_at: datetime
    actor: EventActor
    incident: dict[str, Any]
    data: dict[str, Any] = Field(default_factory=dict)


class WebhookConfig(Model):
    """Delivery knobs (workflows cannot read the environment; the forwarder passes the settings)."""

    give_up_seconds: float = Field(default=86400.0, gt=0)
    retry_initial_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    attempt_timeout_seconds: float = Field(default=30.0, gt=0)
    # How long an incident's webhooks workflow stays after its last delivery (redelivery needs it).
    keep_seconds: float = Field(default=7 * 86400.0, gt=0)


class ForwardEvents(Model):
    """Input of the incident's webhooks lane activity: the events waiting (oldest first, at most
    FORWARD_BATCH_MAX), and where the incident belongs."""

    incident_id: str
    team_id: str
    playbook_id: str | None = None
    events: list[WebhookEvent]
    # How many of the incident's events each subscription was handed before these (see `Forwarded`).
    handed_before: dict[str, int] = Field(default_factory=dict)


class Forwarded(Model):
    """What the lane's activity handed over: how many events to each subscription. The incident
    keeps the sums, so a webhooks workflow started again for it (after the last one closed) goes
    on counting `seq` where the last one stopped."""

    handed: dict[str, int] = Field(default_factory=dict)


class ArrivedEvent(Model):
    event: WebhookEvent
    # Subscription id -> its owner's workflow id, for each subscription that wants the event.
    targets: dict[str, str]


class EventsArrived(Model):
    """Signal to an incident's webhooks workflow: events (in order) and the subscriptions that want each."""

    events: list[ArrivedEvent]
    config: WebhookConfig = Field(default_factory=WebhookConfig)
    # Per subscription, how many events of the incident it was handed before these: a new lane's first seq follows.
    handed_before: dict[str, int] = Field(default_factory=dict)


class Lane(Model):
    """One subscription's deliveries of one incident's events, in order: the head is tried
    until it is accepted, refused or given up; nothing behind it goes before."""

    subscription_id: str
    owner_workflow_id: str
    next_seq: int = 1
    queue: list[DeliveryRecord] = Field(default_factory=list)
    # The finished deliveries (newest last, the last EVENTS_KEPT), for redelivery.
    done: list[DeliveryRecord] = Field(default_factory=list)
    redeliveries: int = 0


class IncidentWebhooksState(Model):
    incident_id: str
    config: WebhookConfig = Field(default_factory=WebhookConfig)
    # The events still to deliver, and the newest delivered ones (for redelivery), by id.
    events: dict[str, WebhookEvent] = Field(default_factory=dict)
    lanes: dict[str, Lane] = Field(default_factory=dict)
    # The newest event number taken: a repeated signal (the lane's activity retried) is ignored.
    last_number: int = 0
    # Delivered events kept for redelivery, oldest first (the last EVENTS_KEPT).
    kept: list[str] = Field(default_factory=list)


class Redeliver(Model):
    """Deliver again one event (`only`), or everything since one (inclusive) of one incident."""

    actor: Actor
    subscription_id: str
    event_id: str
    only: bool = True


class DeliverWebhook(Model):
    """Input of the delivery activity. It reads the URL and secrets from the owner when it runs
    (so none of them is in this workflow's history, and a changed URL applies to what waits)."""

    owner_workflow_id: str
    subscription_id: str
    event_id: str
    body: str


class AttemptOutcome(StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"
    REFUSED = "refused"
    # The subscription no longer exists (deleted): its lane is dropped.
    GONE = "gone"


class DeliveryAttempt(Model):
    """What one attempt came to."""

    outcome: AttemptOutcome
    status: int | None = None
    error: str = ""
    # The receiver's Retry-After (seconds), when it gave one.
    retry_after_seconds: float | None = None
    # Where it was sent (the subscription's URL then), to name it in the incident's timeline.
    url: str = ""


class TargetForDelivery(Model):
    """What the delivery activity reads from the owner's workflow (a query: never in history)."""

    url: str
    secrets: list[Secret]


class WebhookGaveUp(Model):
    """Signal to an incident: a subscription stopped an event (refused) or gave up on it."""

    subscription_id: str
    url: str
    event_id: str
    type: str
    reason: str
    refused: bool


def event_body(event: WebhookEvent, seq: int) -> str:
    """The delivery's JSON body (Standard Webhooks: `type` and `timestamp`-like `occurred_at`),
    at most BODY_MAX_BYTES: an event whose data would not fit is sent with its data cut."""
    body: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "seq": seq,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "actor": event.actor.model_dump(),
        "incident": event.incident,
        "data": event.data,
    }
    text = _dumps(body)
    if len(text.encode()) > BODY_MAX_BYTES:
        body["data"] = {"truncated": True, "reason": f"the event's data is over {BODY_MAX_BYTES // 1024} KiB"}
        text = _dumps(body)
    return text


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)
