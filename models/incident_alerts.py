"""What an incident opened by alerts keeps of them: its source, and the update that brings alerts.

An incident opened by an integration carries an `AlertSource`: which integration, which
alert group, and every alert of the group it has heard of (by fingerprint), firing or
resolved. Alerts arrive with `ReceiveAlerts`, the update the intake sends (with the start,
for a new incident); its id is derived from the notification, so a notification sent
again (Alertmanager's retries, two API processes receiving it) is applied once.

Everything here is bounded, because the incident's state travels whole (continue-as-new,
queries) and Temporal refuses a payload over 2 MB: an alert is kept `compact` (a few short
labels, two links), the first `ALERTS_KEPT` alerts in full and the group's others by a short
digest of their fingerprint and their status (up to `OTHERS_KEPT`), and the intake sends a
big notification in parts of `ALERTS_PER_UPDATE`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import Field

from models.alerts import Alert, AlertNotification, AlertStatus
from models.common import Model
from models.integration import IntegrationKind

# The alerts an incident keeps in full (title, labels, links); the group's others are kept
# by digest and status only, up to OTHERS_KEPT; beyond that they are counted.
ALERTS_KEPT = 200
OTHERS_KEPT = 10_000
# Timeline entries of single alerts an incident keeps; past them one entry says so and the
# changes are counted (`AlertSource.unlisted`). Worst case, an incident's alerts take about
# 1 MB of its state (ALERTS_KEPT and ALERT_EVENTS_KEPT compact alerts, OTHERS_KEPT digests).
ALERT_EVENTS_KEPT = 300
# How many alerts one channel post lists by name; the rest are counted.
ALERTS_LISTED = 10
# How many applied updates' ids an incident remembers.
APPLIED_UPDATES_KEPT = 500
# The most alerts one update carries (the intake splits a bigger notification).
ALERTS_PER_UPDATE = 200
# What an alert keeps: a few labels, short; its first links; a title.
LABELS_KEPT = 8
LABEL_NAME_KEPT = 40
LABEL_VALUE_KEPT = 64
LINKS_KEPT = 2
LINK_KEPT = 300
TITLE_KEPT = 150
FINGERPRINT_KEPT = 64


def compact_labels(labels: dict[str, str]) -> dict[str, str]:
    """`alertname` and the first other labels, names and values shortened."""
    names = sorted(labels, key=lambda name: name != "alertname")[:LABELS_KEPT]
    return {name[:LABEL_NAME_KEPT]: labels[name][:LABEL_VALUE_KEPT] for name in names}


def compact(alert: Alert) -> Alert:
    """The alert as an incident keeps it: a few labels (`compact_labels`); links short enough
    to work whole; the title shortened; no annotations."""
    fingerprint = alert.fingerprint
    if len(fingerprint) > FINGERPRINT_KEPT:
        fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    return alert.model_copy(
        update={
            "fingerprint": fingerprint,
            "labels": compact_labels(alert.labels),
            "annotations": {},
            "title": alert.title[:TITLE_KEPT],
            "generator_url": alert.generator_url if len(alert.generator_url) <= LINK_KEPT else "",
            "links": [link for link in alert.links if len(link) <= LINK_KEPT][:LINKS_KEPT],
        }
    )


def parts(notification: AlertNotification) -> list[AlertNotification]:
    """The notification as the incident's updates carry it: its alerts `compact`, its labels
    shortened, in parts of at most ALERTS_PER_UPDATE alerts (each well under Temporal's
    payload limit)."""
    alerts = [compact(alert) for alert in notification.alerts]
    slim = notification.model_copy(
        update={
            "group_labels": compact_labels(notification.group_labels),
            "common_labels": compact_labels(notification.common_labels),
        }
    )
    return [
        slim.model_copy(update={"alerts": alerts[start : start + ALERTS_PER_UPDATE]})
        for start in range(0, max(len(alerts), 1), ALERTS_PER_UPDATE)
    ]


def digest(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:12]


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
    # The group's alerts beyond `ALERTS_KEPT`: status by `digest` of the fingerprint.
    others: dict[str, AlertStatus] = Field(default_factory=dict)
    # Alerts heard of beyond `OTHERS_KEPT` as well (counted, not told apart).
    uncounted: int = 0
    # Timeline entries of single alerts so far (see ALERT_EVENTS_KEPT), and the changes past them.
    alert_events: int = 0
    unlisted: int = 0
    # Notifications received, and the update that opened the incident (its first).
    notifications: int = 0
    opened_by: str = ""
    # The ids of the last updates applied (a notification sent again is answered, not applied again).
    applied_updates: list[str] = Field(default_factory=list)
    # The route's automatic end once every alert resolved, and when it is due (None: not pending).
    auto_end_after_minutes: int | None = None
    auto_end_at: datetime | None = None

    @property
    def firing(self) -> int:
        kept = sum(1 for alert in self.alerts.values() if alert.status == AlertStatus.FIRING)
        return kept + sum(1 for status in self.others.values() if status == AlertStatus.FIRING)

    @property
    def resolved(self) -> int:
        return len(self.alerts) + len(self.others) - self.firing

    def status_of(self, fingerprint: str) -> AlertStatus | None:
        kept = self.alerts.get(fingerprint)
        return kept.status if kept is not None else self.others.get(digest(fingerprint))

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
    # The update (its id is the intake's) that opened the incident.
    opened_by: str = ""
    firing: int
    resolved: int
    # Alert changes past the timeline's share (see ALERT_EVENTS_KEPT).
    unlisted: int = 0
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
                    "opened_by",
                    "unlisted",
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
