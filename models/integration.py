"""Integrations: where alerts come from (Alertmanager, Grafana, any JSON source).

An integration belongs to a team and is managed by the team's admins. It names the
playbook its incidents run (or, per route, another one chosen by the alert's labels) and
holds the hash of its bearer token, never the token: the token is shown once, when it is
made or rotated. Each integration is an `IntegrationWorkflow` (`integration_workflow_id`),
whose history is the audit log of every change, like a playbook's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, field_validator

from models.alerts import validate_match
from models.common import Actor, MattermostId, Model, Trimmed
from models.severity import SeverityLevel

NAME_MAX = 64
MAX_ROUTES = 50
MAX_MATCHERS = 20
DELIVERIES_KEPT = 50
# The longest an automatic end may wait after every alert of a group resolved: a week.
AUTO_END_MAX_MINUTES = 7 * 24 * 60


class IntegrationKind(StrEnum):
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    GENERIC = "generic"


class IntegrationRoute(Model):
    """The first route whose every matcher matches the alert group's labels picks the playbook.

    A matcher's value is the label's exact value, or `/regex/` matched against the whole
    value (a missing label is the empty string).
    """

    match: Annotated[dict[Trimmed, str], Field(min_length=1, max_length=MAX_MATCHERS)]
    playbook_id: str | None = Field(default=None, description="The playbook this route's incidents run")
    severity: Trimmed | None = Field(
        default=None,
        max_length=32,
        description="The severity level of the team this route's incidents start with (its number, `sev<n>` or "
        "its name); without one, the alert's own `severity` label when it names a level, else the playbook's default",
    )
    commander_id: MattermostId | None = None
    auto_end_after_minutes: int | None = Field(default=None, ge=1, le=AUTO_END_MAX_MINUTES)

    @field_validator("match")
    @classmethod
    def _matchers(cls, match: dict[str, str]) -> dict[str, str]:
        validate_match(match)
        return match


class IntegrationSpec(Model):
    """What a team admin writes."""

    name: Trimmed = Field(min_length=1, max_length=NAME_MAX)
    playbook_id: str | None = Field(default=None, description="The playbook incidents run when no route matches")
    routes: Annotated[list[IntegrationRoute], Field(max_length=MAX_ROUTES)] = Field(default_factory=list)


class Integration(IntegrationSpec):
    """As stored: the spec with what the system owns."""

    id: str
    team_id: MattermostId
    kind: IntegrationKind
    version: int = 1
    created_at: datetime
    created_by: MattermostId
    updated_at: datetime
    token_sha256: str
    # The token's last four characters, so an admin can tell which one a system holds.
    token_hint: str = ""


class IntegrationView(IntegrationSpec):
    """An integration as its admins see it: never the token's hash; the token only in the
    answer that made it (creation, rotation)."""

    id: str
    team_id: MattermostId
    kind: IntegrationKind
    url: str = Field(description="The absolute URL to paste into the monitoring system")
    token_hint: str
    version: int
    created_at: datetime
    created_by: MattermostId
    updated_at: datetime
    token: str | None = Field(default=None, description="The bearer token, shown once")


class Delivery(Model):
    """One notification received, and what became of it (the last `DELIVERIES_KEPT` are kept)."""

    at: datetime
    status: str
    alerts: int = 0
    group_key: str = ""
    incident_id: str | None = None
    outcome: str = ""


class IntegrationState(Model):
    """The state of an `IntegrationWorkflow`."""

    integration: Integration
    deliveries: list[Delivery] = Field(default_factory=list)
    deleted: bool = False


class IntegrationSummary(Model):
    """What lists show, kept in the workflow's memo so a listing needs no queries."""

    id: str
    team_id: MattermostId
    kind: IntegrationKind
    name: str
    playbook_id: str | None
    routes: int
    token_hint: str
    updated_at: datetime


def summarize(integration: Integration | IntegrationView) -> IntegrationSummary:
    """The list's line for an integration, as stored or as just shown to its admin."""
    return IntegrationSummary(
        **integration.model_dump(include={"id", "team_id", "kind", "name", "playbook_id", "token_hint", "updated_at"}),
        routes=len(integration.routes),
    )


class IntegrationCommand(Model):
    """Every change is asked by an actor; only the team's admins (and system admins) may."""

    actor: Actor
    is_team_admin: bool = False
    # The team's playbooks the spec names, as the service found them: id -> title, absent when
    # there is no such playbook in the team (or it is archived).
    playbooks: dict[str, str] = Field(default_factory=dict)
    # The commanders the routes name who are members of the team and not bots.
    commanders: list[MattermostId] = Field(default_factory=list)
    # The team's severity levels, when a route names one.
    severity_levels: list[SeverityLevel] = Field(default_factory=list, max_length=10)


class OpenIntegration(IntegrationCommand):
    """Sent with the start (update-with-start): the integration, or the rule that refused it."""


class UpdateIntegration(IntegrationCommand):
    spec: IntegrationSpec
    updated_at: datetime


class RotateToken(IntegrationCommand):
    token_sha256: str
    token_hint: str
    updated_at: datetime


class DeleteIntegration(IntegrationCommand):
    pass


def integration_workflow_id(integration_id: str) -> str:
    return f"integration-{integration_id}"


def new_token() -> str:
    """A bearer token: 32 random bytes, URL-safe (API side, never in a workflow)."""
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_sha256: str) -> bool:
    """Constant-time: the comparison takes as long whatever the token's first wrong character."""
    return hmac.compare_digest(token_sha256(token).encode(), stored_sha256.encode())
