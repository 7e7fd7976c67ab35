"""Alerts in: a notification from Alertmanager, Grafana or any JSON source, handed to its incident.

The alert group is the incident's identity. The group's incidents form a chain of workflow
ids derived from the integration and the group key (`incident_id_for(..., n)`): a
notification goes to the first incident of the chain that is not over, opening it if it
does not exist (update-with-start, `receive_alerts`). So Alertmanager's repeats and
retries, two API processes receiving the same group at once, and a burst for one group
all land in one incident; a group whose incident has ended opens the next one (a new
incident, never a silent reopening). The update's id is derived from the notification's
bytes, so the same notification sent again is applied once; and merging alerts is itself
idempotent (an alert already recorded in the same state changes nothing).

The endpoint authenticates before it reads the body: the token (bearer, or the password
of HTTP basic auth) is compared in constant time with the hash the integration keeps.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.exceptions import WorkflowAlreadyStartedError

from models.alerts import MAX_GROUP_KEY, AlertNotification, PayloadError, matches, parse_notification
from models.common import Actor, UserFact, short_id_from
from models.custom_fields import FIELD_TEXT_MAX, FieldType
from models.incident import IncidentStart, incident_workflow_id
from models.incident_alerts import AlertSource, ReceiveAlerts, parts
from models.incident_commands import CommandResult
from models.integration import Delivery, Integration, IntegrationRoute, token_matches
from models.playbook import Playbook
from models.severity import SeverityLevel, SeverityUnknown, parse_severity
from service import team_configuration
from service.container import Services
from service.errors import ServiceError
from service.incident_access import remember_location
from service.incident_starts import (
    commander_fact,
    incident_config,
    invited_facts,
    new_incident_operation,
    read_playbook,
    team_record,
)
from service.integrations import integration_for_delivery, integration_handle
from service.temporal_calls import Gone, NotAnswered, execute_update, execute_update_with_start
from service.ttl_cache import TTLCache
from workflows.incident_workflow import IncidentWorkflow
from workflows.integration_workflow import IntegrationWorkflow

log = logging.getLogger(__name__)

# How many ended incidents of one group a notification walks past before giving up (a group
# that has had this many incidents is told to the sender as an error, never silently dropped).
CHAIN_MAX = 1000
# A hash no token has: an unknown integration costs the same comparison as a wrong token.
_NO_TOKEN_SHA256 = hashlib.sha256(b"no integration").hexdigest()
# The latest incident of each group this process has seen (a hint: the walk goes on from it).
_latest: TTLCache[str, int] = TTLCache(ttl=3600.0)


class Received:
    """What the sender is answered: the incident the notification went to."""

    def __init__(self, incident_id: str, message: str, opened: bool) -> None:
        self.incident_id = incident_id
        self.message = message
        self.opened = opened


def bearer_or_basic_password(authorization: str) -> str:
    """The token in `Authorization: Bearer <token>`, or the password of HTTP basic auth."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


async def authenticate(svc: Services, integration_id: str, authorization: str) -> Integration:
    """The integration, if the token is its current one; 401 otherwise, whatever was wrong."""
    token = bearer_or_basic_password(authorization)
    integration = await integration_for_delivery(svc, integration_id)
    stored = integration.token_sha256 if integration is not None else _NO_TOKEN_SHA256
    if not token_matches(token, stored) or integration is None:
        raise ServiceError(
            401,
            "unauthorized",
            "The token is not this integration's: send `Authorization: Bearer <token>` (or the token as the "
            "basic-auth password) with the token shown when the integration was made or last rotated.",
        )
    return integration


def parse(integration: Integration, body: bytes) -> AlertNotification:
    try:
        return parse_notification(integration.kind.value, body)
    except PayloadError as error:
        raise ServiceError(400, "invalid_payload", f"The notification was refused: {error}.") from None


def route_for(integration: Integration, notification: AlertNotification) -> IntegrationRoute | None:
    """The first route whose matchers all match the group's labels; None: the integration's own playbook."""
    labels = {**notification.common_labels, **notification.group_labels}
    if notification.kind == "generic" and notification.alerts:
        labels = {**notification.alerts[0].labels, **labels}
    return next((route for route in integration.routes if matches(route.match, labels)), None)


def incident_id_for(integration: Integration, group_key: str, n: int) -> str:
    return short_id_from(f"alerts:{integration.team_id}:{integration.id}:{group_key}:{n}")


async def receive(
    svc: Services, integration_id: str, authorization: str, read_body: Callable[[], Awaitable[bytes]]
) -> Received:
    """Authenticate, read and parse the notification, and hand it to its group's incident."""
    integration = await authenticate(svc, integration_id, authorization)
    body = await read_body()
    try:
        notification = parse(integration, body)
        received = await _deliver(svc, integration, notification, body)
    except ServiceError as error:
        _record(svc, integration, Delivery(at=datetime.now(UTC), status=f"{error.status}", outcome=error.message))
        raise
    _record(
        svc,
        integration,
        Delivery(
            at=datetime.now(UTC),
            status="200",
            alerts=len(notification.alerts),
            group_key=notification.group_key[:512],
            incident_id=received.incident_id,
            outcome=("Opened incident " if received.opened else "Added to incident ") + received.incident_id,
        ),
    )
    return received


# Deliveries waiting to be recorded, by integration; sent about once a second, one signal per
# integration, so a storm of notifications is a few signals, not one each.
_unrecorded: dict[str, tuple[Services, list[Delivery]]] = {}
_flushing: set[asyncio.Future[None]] = set()
RECORD_EVERY_SECONDS = 1.0


def _record(svc: Services, integration: Integration, delivery: Delivery) -> None:
    """Tell the integration what became of the delivery (for its admins), without making the
    sender wait. A courtesy record: a process that dies within the second loses its last ones."""
    _unrecorded.setdefault(integration.id, (svc, []))[1].append(delivery)
    if all(task.done() for task in _flushing):
        task = asyncio.ensure_future(_flush())
        _flushing.add(task)
        task.add_done_callback(_flushing.discard)


async def _flush() -> None:
    while _unrecorded:
        await asyncio.sleep(RECORD_EVERY_SECONDS)
        batches = dict(_unrecorded)
        _unrecorded.clear()
        for integration_id, (svc, deliveries) in batches.items():
            try:
                await integration_handle(svc, integration_id).signal(
                    IntegrationWorkflow.record_deliveries, deliveries, rpc_timeout=svc.rpc_timeout
                )
            except Exception as error:  # the deliveries themselves are done
                log.warning("integration %s: %d deliveries not recorded: %s", integration_id, len(deliveries), error)


async def _deliver(svc: Services, integration: Integration, notification: AlertNotification, body: bytes) -> Received:
    base = f"alerts:{hashlib.sha256(body).hexdigest()[:40]}"
    starter = _Starter(svc, integration, notification, route_for(integration, notification))
    answers: list[tuple[str, CommandResult]] = []
    for index, part in enumerate(parts(notification)):
        # Each part is its own update (its id derived from the notification's bytes and its
        # place), so a notification sent again is applied once, part by part.
        update = ReceiveAlerts(update_id=f"{base}:{index}", notification=part, received_at=starter.now)
        answers.append(await _to_group_incident(svc, integration, notification.group_key, update, starter))
    incident_id, first_answer = answers[0]
    source = first_answer.incident.source
    message = (
        first_answer.message
        if len(answers) == 1
        else f"{len(answers)} parts: " + " ".join(result.message for _, result in answers)
    )
    opened = source is not None and source.opened_by == f"{base}:0"
    return Received(incident_id, message[:1000], opened=opened)


class _Turns:
    """One notification of a group at a time in this process. Temporal takes only a few updates
    in flight per workflow (more are refused, and a burst of them makes speculative workflow
    tasks that are thrown away), so a burst for one group waits its turn here instead: a burst
    of 1,000 is taken one after another, each in milliseconds, rather than mostly refused."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def of(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


_turns = _Turns()


async def _to_group_incident(
    svc: Services, integration: Integration, group_key: str, update: ReceiveAlerts, starter: _Starter
) -> tuple[str, CommandResult]:
    """The group's incident's answer (one notification of the group at a time in this process)."""
    key = f"{integration.id}:{group_key}"
    async with _turns.of(key):
        return await _to_group_incident_in_turn(svc, integration, group_key, update, starter)


async def _to_group_incident_in_turn(
    svc: Services, integration: Integration, group_key: str, update: ReceiveAlerts, starter: _Starter
) -> tuple[str, CommandResult]:
    """The incident this process last saw for the group first (most notifications of a group go
    there, and need no start, so no facts are gathered), else the group's first incident that
    is not over, opened if it does not exist."""
    key = f"{integration.id}:{group_key}"
    known = _latest.get(key)
    if known is not None:
        incident_id = incident_id_for(integration, group_key, known)
        result = await _send(svc, incident_id, update)
        if result is not None:
            return incident_id, result
    first = known or 0
    for n in range(first, first + CHAIN_MAX):
        incident_id = incident_id_for(integration, group_key, n)
        start, playbook, team_name = await starter.start(incident_id, update.notification)
        result = await _hand_over(svc, start, playbook, team_name, update)
        if result is None:
            continue  # that incident is over: the group's next one
        _latest.put(key, n)
        remember_location(incident_id, integration.team_id, result.incident.channel_id)
        return incident_id, result
    raise ServiceError(
        409, "conflict", f"The alert group has had {CHAIN_MAX} incidents; give its alerts another group key."
    )


class _Starter:
    """The start of the group's incident, should one be needed: its facts (playbook, team, bot,
    commander, invited people) are gathered the first time, once per notification."""

    def __init__(
        self, svc: Services, integration: Integration, notification: AlertNotification, route: IntegrationRoute | None
    ) -> None:
        self.svc = svc
        self.integration = integration
        self.notification = notification
        self.route = route
        self.now = datetime.now(UTC)
        self._facts: tuple[Playbook | None, dict[str, Any], Actor, UserFact | None, list[UserFact]] | None = None
        self._levels: list[SeverityLevel] = []

    async def _gather(self) -> tuple[Playbook | None, dict[str, Any], Actor, UserFact | None, list[UserFact]]:
        if self._facts is None:
            svc, integration, route = self.svc, self.integration, self.route
            playbook_id = route.playbook_id if route and route.playbook_id else integration.playbook_id
            playbook, team, bot = await asyncio.gather(
                read_playbook(svc, playbook_id), team_record(svc, integration.team_id), svc.mattermost.bot_user()
            )
            commander_id = (route.commander_id if route else None) or (
                playbook.default_commander_id if playbook else None
            )
            commander, invited, self._levels = await asyncio.gather(
                commander_fact(svc, integration.team_id, commander_id or integration.created_by),
                invited_facts(svc, integration.team_id, playbook),
                self._severity_levels(playbook),
            )
            reporter = Actor(
                user_id=str(bot["id"]),
                username=str(bot.get("username", "")),
                is_team_member=True,
                is_channel_member=True,
            )
            self._facts = (playbook, team, reporter, commander, invited)
        return self._facts

    async def start(self, incident_id: str, part: AlertNotification) -> tuple[IncidentStart, Playbook | None, str]:
        playbook, team, reporter, commander, invited = await self._gather()
        start = IncidentStart(
            id=incident_id,
            team_id=self.integration.team_id,
            team_name=str(team.get("name", "")),
            name=self.notification.title[:64],
            description=self.notification.description[:1024],
            reporter=reporter,
            commander=commander,
            playbook=playbook,
            invited=invited,
            config=incident_config(self.svc.settings, incident_id),
            requested_at=self.now,
            source=_source(self.integration, part, self.route, self.now),
            severity=self._severity(),
            severity_levels=self._levels,
            fields=self._fields(playbook),
        )
        return start, playbook, str(team.get("display_name", ""))

    def _fields(self, playbook: Playbook | None) -> dict[str, str | None]:
        """The playbook's select and text fields that the alerts have a label of the same name for
        (group labels first, then common ones): the incident keeps the values its fields take and
        passes over the rest; a required field without one never refuses the alert's incident."""
        labels = {**self.notification.common_labels, **self.notification.group_labels}
        wanted = (FieldType.SELECT, FieldType.TEXT)
        declared = playbook.fields if playbook else []
        return {
            spec.name: labels[spec.name][:FIELD_TEXT_MAX]
            for spec in declared
            if spec.type in wanted and spec.name in labels
        }

    async def _severity_levels(self, playbook: Playbook | None) -> list[SeverityLevel]:
        """The team's levels, when the route, the alerts or the playbook may name one."""
        named = (self.route and self.route.severity) or self.notification.severity
        if not named and (playbook is None or playbook.default_severity is None):
            return []
        return await team_configuration.severity_levels(self.svc, self.integration.team_id)

    def _severity(self) -> str | None:
        """The level the incident starts with: the route's, else the alerts' own `severity` label
        when it names a level of the team (`sev2`, `2`, a level's name); else none is asked for, and
        the playbook's default applies."""
        for candidate in (self.route.severity if self.route else None, self.notification.severity):
            if not candidate:
                continue
            try:
                return str(parse_severity(candidate, self._levels).level)
            except SeverityUnknown:
                continue
        return None


async def _send(svc: Services, incident_id: str, update: ReceiveAlerts) -> CommandResult | None:
    """The update to an incident that exists; None when it is over (ended, or its run closed)."""
    try:
        result: CommandResult = await execute_update(
            svc.temporal.get_workflow_handle(incident_workflow_id(incident_id)),
            IncidentWorkflow.receive_alerts,
            update,
            rpc_timeout=svc.rpc_timeout,
            update_id=update.update_id,
        )
    except Gone:
        return None
    except ServiceError as error:
        if error.status == 409:  # ended
            return None
        raise
    except NotAnswered:
        raise _busy() from None
    return result


def _busy() -> ServiceError:
    # The sender sends it again (Alertmanager retries a 5xx): the same update id, applied once.
    return ServiceError(
        503, "unavailable", "The incident service is busy; the notification was not taken. Send it again."
    )


def _source(
    integration: Integration, notification: AlertNotification, route: IntegrationRoute | None, now: datetime
) -> AlertSource:
    return AlertSource(
        integration_id=integration.id,
        integration_name=integration.name,
        kind=integration.kind,
        group_key=notification.group_key[:MAX_GROUP_KEY],
        group_labels=notification.group_labels,
        severity=(route.severity if route and route.severity else None) or notification.severity,
        first_alert_at=now,
        auto_end_after_minutes=route.auto_end_after_minutes if route else None,
    )


async def _hand_over(
    svc: Services, start: IncidentStart, playbook: Playbook | None, team_name: str, update: ReceiveAlerts
) -> CommandResult | None:
    """The incident's answer, or None when that incident is over (ended, or its run closed)."""
    operation = new_incident_operation(svc.settings, start, playbook, team_name)
    try:
        result: CommandResult = await execute_update_with_start(
            svc.temporal,
            IncidentWorkflow.receive_alerts,
            update,
            start=operation,
            workflow_id=incident_workflow_id(start.id),
            update_id=update.update_id,
            rpc_timeout=svc.rpc_timeout,
        )
    except WorkflowAlreadyStartedError:
        return None
    except ServiceError as error:
        if error.status == 409:  # ended: "This incident has ended"
            return None
        raise
    except NotAnswered:
        raise _busy() from None
    return result
