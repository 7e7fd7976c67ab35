"""What an incident opened by alerts keeps of them: its source, and the update that brings alerts.

An incident opened by an integration carries an `AlertSource`: which integration, which
alert group, and every alert of the group it has heard of (by fingerprint), firing or
resolved. Alerts arrive with `ReceiveAlerts`, the update the intake sends (with the start,
for a new incident); its id is derived from the notification, so a notification sent
again (Alertmanager's retries, two API processes receiving it) is applied once.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.alerts import AlertNotification, AlertStatus
from models.common import Model
from models.integration import IntegrationKind

# The most alerts an incident remembers; more (a group that never ends) are counted only.
ALERTS_KEPT = 2000
# How many alerts one channel post lists by name; the rest are counted.
ALERTS_LISTED = 10


class AlertRecord(Model):
    fingerprint: str
    status: AlertStatus
    title: str
    labels: dict[str, str] = Field(default_factory=dict)
    links: list[str] = Field(default_factory=list)
    firing_since: datetime | None = None
    resolved_at: datetime | None = None


class AlertSource(Model):
    """Where an incident came from, when an integration opened it."""

    integration_id: str
    integration_name: str
    kind: IntegrationKind
    group_key: str
    group_labels: dict[str, str] = Field(default_factory=dict)
    severity: str | None = None
    # When the intake received the group's first notification (before the incident existed).
    first_alert_at: datetime
    alerts: dict[str, AlertRecord] = Field(default_factory=dict)
    # Alerts heard of beyond `ALERTS_KEPT`.
    uncounted: int = 0
    # Notifications received (the first opened the incident).
    notifications: int = 0
    # The route's automatic end once every alert resolved, and when it is due (None: not pending).
    auto_end_after_minutes: int | None = None
    auto_end_at: datetime | None = None

    @property
    def firing(self) -> int:
        return sum(1 for alert in self.alerts.values() if alert.status == AlertStatus.FIRING)

    @property
    def resolved(self) -> int:
        return len(self.alerts) - self.firing

    @property
    def links(self) -> list[str]:
        """The alerts' generator URLs (and other links), each once, the firing ones first."""
        ordered = sorted(self.alerts.values(), key=lambda a: a.status != AlertStatus.FIRING)
        return list(dict.fromkeys(link for alert in ordered for link in alert.links))

    @property
    def reporter_name(self) -> str:
        return f"{self.kind.value.capitalize()} integration {self.integration_name!r}"


class AlertSourceView(Model):
    """What the record and views show of an incident's source."""

    integration_id: str
    integration_name: str
    kind: IntegrationKind
    group_key: str
    severity: str | None
    first_alert_at: datetime
    notifications: int
    firing: int
    resolved: int
    links: list[str]
    auto_end_at: datetime | None

    @classmethod
    def of(cls, source: AlertSource) -> AlertSourceView:
        return cls(
            **source.model_dump(
                include={
                    "integration_id",
                    "integration_name",
                    "kind",
                    "group_key",
                    "severity",
                    "first_alert_at",
                    "notifications",
                }
            ),
            firing=source.firing,
            resolved=source.resolved,
            links=source.links[:20],
            auto_end_at=source.auto_end_at,
        )


class ReceiveAlerts(Model):
    """One notification for the incident's alert group (the intake's update)."""

    update_id: str
    notification: AlertNotification
    received_at: datetime
