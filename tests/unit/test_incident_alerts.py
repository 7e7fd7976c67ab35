"""The rules of an incident opened by alerts, without Temporal: each alert recorded once, one
post per notification, the group's resolution told, the automatic end and what calls it off."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from models.alerts import AlertNotification, parse_notification
from models.common import Actor, UserFact
from models.effects import PostEffect
from models.incident import EventType, IncidentStart, IncidentStatus
from models.incident_alerts import ALERT_EVENTS_KEPT, ALERTS_KEPT, ALERTS_LISTED, AlertSource, ReceiveAlerts
from models.incident_commands import AddNote, EndIncident
from models.integration import IntegrationKind
from workflows.incident_rules import Incident, check_start, new_incident

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TEAM = "t" * 26
BOT = "b" * 26
TESS = "e" * 26


def notification(*alerts: tuple[str, str], group: str = "disk") -> AlertNotification:
    """A generic-shaped notification built as Alertmanager would send it: (instance, status) per alert."""
    body = {
        "version": "4",
        "groupKey": group,
        "status": "firing" if any(s == "firing" for _, s in alerts) else "resolved",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "DiskFull", "instance": instance},
                "annotations": {"summary": f"Disk full on {instance} @channel"},
                "startsAt": "2026-03-01T11:59:00Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-03-01T12:05:00Z",
                "generatorURL": f"http://prometheus.example/graph?g0={instance}",
                "fingerprint": f"fp-{instance}",
            }
            for instance, status in alerts
        ],
    }
    return parse_notification("alertmanager", json.dumps(body).encode())


def opened(*, auto_end_minutes: int | None = None) -> Incident:
    ids = (f"id{n}" for n in itertools.count())
    start = IncidentStart(
        id="inc1",
        team_id=TEAM,
        name="Disk full on db-1",
        reporter=Actor(user_id=BOT, username="incident-bot", is_team_member=True, is_channel_member=True),
        commander=UserFact(user_id=TESS, username="tess", is_team_member=True),
        source=AlertSource(
            integration_id="intg1",
            integration_name="prod",
            kind=IntegrationKind.ALERTMANAGER,
            group_key="disk",
            first_alert_at=T0,
            auto_end_after_minutes=auto_end_minutes,
        ),
    )
    check_start(start)
    incident = Incident(new_incident(start, T0, lambda: next(ids)), lambda: next(ids))
    incident.channel_ready(T0, "c" * 26, "disk-full", [], None)
    incident.state.outbox.clear()
    return incident


_UPDATES = itertools.count()


def receive(incident: Incident, note: AlertNotification, at: datetime = T0, *, update_id: str | None = None) -> str:
    """The notification as the intake sends it: each a new update (unless `update_id` repeats one)."""
    command = ReceiveAlerts(update_id=update_id or f"u{next(_UPDATES)}", notification=note, received_at=at)
    incident.check_receive_alerts(command)
    return incident.receive_alerts(command, at)


def posts(incident: Incident) -> list[str]:
    return [p.effect.message for p in incident.state.outbox if isinstance(p.effect, PostEffect)]


def auto_end_at(incident: Incident) -> datetime | None:
    source = incident.state.source
    assert source is not None
    return source.auto_end_at


def events(incident: Incident, kind: EventType) -> list[str]:
    return [e.details.get("fingerprint", "") for e in incident.state.timeline if e.type == kind]


def test_the_reporter_is_the_integration_everywhere_it_is_named() -> None:
    incident = opened()
    state = incident.state
    assert state.mention(state.reporter_id) == "Alertmanager integration 'prod'"
    assert state.timeline[0].summary.startswith("Alertmanager integration 'prod' opened the incident for alert group")
    assert state.commander_id == TESS


def test_each_alert_is_recorded_once_and_a_notification_is_one_post() -> None:
    incident = opened()
    receive(incident, notification(("db-1", "firing")))
    receive(incident, notification(("db-1", "firing"), ("db-2", "firing")))
    receive(incident, notification(("db-1", "firing"), ("db-2", "firing")))  # a repeat: nothing new
    assert events(incident, EventType.ALERT_FIRING) == ["fp-db-1", "fp-db-2"]
    made = posts(incident)
    assert len(made) == 2
    assert "Disk full on db-2" in made[1]
    assert "Disk full on db-1" not in made[1]  # only what changed
    assert "@channel" not in made[1]  # an alert's text notifies no one
    source = incident.state.source
    assert source is not None
    assert (source.firing, source.resolved, source.notifications) == (2, 0, 3)


def test_a_group_of_many_alerts_is_one_readable_post() -> None:
    incident = opened()
    receive(incident, notification(*((f"db-{n}", "firing") for n in range(200))))
    (post,) = posts(incident)
    assert post.count("\n- ") == ALERTS_LISTED + 1
    assert f"and {200 - ALERTS_LISTED} more" in post
    assert len(events(incident, EventType.ALERT_FIRING)) == 200


def test_the_group_resolving_is_told_and_the_automatic_end_waits_for_no_one_acting() -> None:
    incident = opened(auto_end_minutes=30)
    receive(incident, notification(("db-1", "firing"), ("db-2", "firing")))
    receive(incident, notification(("db-1", "resolved"), ("db-2", "firing")), T0 + timedelta(minutes=1))
    assert incident.state.source is not None
    assert incident.state.source.auto_end_at is None
    resolved_at = T0 + timedelta(minutes=2)
    receive(incident, notification(("db-1", "resolved"), ("db-2", "resolved")), resolved_at)
    assert events(incident, EventType.ALERT_RESOLVED) == ["fp-db-1", "fp-db-2"]
    assert [e.summary for e in incident.state.timeline if e.type == EventType.ALERTS_RESOLVED]
    due = resolved_at + timedelta(minutes=30)
    assert incident.state.source.auto_end_at == due
    assert "ends automatically at" in posts(incident)[-1]
    assert not incident.auto_end_is_due(due - timedelta(seconds=1))
    assert incident.auto_end_is_due(due)
    incident.auto_end(due)
    assert incident.state.status == IncidentStatus.ENDED
    assert incident.state.timeline[-1].type == EventType.AUTO_ENDED


def test_anyone_acting_calls_the_automatic_end_off_and_a_new_alert_does_too() -> None:
    incident = opened(auto_end_minutes=10)
    receive(incident, notification(("db-1", "firing")))
    receive(incident, notification(("db-1", "resolved")), T0 + timedelta(minutes=1))
    assert auto_end_at(incident) is not None
    tess = Actor(user_id=TESS, username="tess", is_channel_member=True, is_team_member=True)
    note = AddNote(actor=tess, text="Looking into why it flapped")
    incident.check_add_note(note)
    incident.add_note(note, T0 + timedelta(minutes=2))
    incident.cancel_auto_end(tess, T0 + timedelta(minutes=2))
    assert auto_end_at(incident) is None
    assert "will not end automatically" in posts(incident)[-1]
    assert not incident.auto_end_is_due(T0 + timedelta(days=1))

    receive(incident, notification(("db-1", "firing")), T0 + timedelta(minutes=3))
    receive(incident, notification(("db-1", "resolved")), T0 + timedelta(minutes=4))
    assert auto_end_at(incident) == T0 + timedelta(minutes=14)
    receive(incident, notification(("db-1", "firing")), T0 + timedelta(minutes=5))  # it fired again
    assert auto_end_at(incident) is None


def test_an_ended_incident_refuses_alerts_so_the_group_opens_its_next_one() -> None:
    incident = opened()
    tess = Actor(user_id=TESS, username="tess", is_channel_member=True, is_team_member=True)
    incident.end(EndIncident(actor=tess), T0)
    with pytest.raises(ApplicationError, match="has ended"):
        incident.check_receive_alerts(
            ReceiveAlerts(update_id="u", notification=notification(("db-3", "firing")), received_at=T0)
        )


def test_an_integrations_start_checks_its_playbook_and_commander_not_the_bots_permissions() -> None:
    bot = Actor(user_id=BOT, username="incident-bot", is_team_member=True, is_channel_member=True)
    source = AlertSource(
        integration_id="i", integration_name="prod", kind=IntegrationKind.GENERIC, group_key="g", first_alert_at=T0
    )
    start = IncidentStart(id="i2", team_id=TEAM, name="x", reporter=bot, source=source)
    check_start(start)  # no playbook membership or channel permission asked of the bot
    robot = UserFact(user_id="r" * 26, username="robot", is_team_member=True, is_bot=True)
    with pytest.raises(ApplicationError, match="is a bot"):
        check_start(start.model_copy(update={"commander": robot}))


def test_a_group_of_thousands_of_alerts_is_kept_bounded_and_still_counted_once() -> None:
    incident = opened()
    many = notification(*((f"db-{n}", "firing") for n in range(700)))
    receive(incident, many)
    receive(incident, many)  # sent again: nothing new, whichever alerts are kept in full
    source = incident.state.source
    assert source is not None
    assert (len(source.alerts), len(source.others), source.firing) == (ALERTS_KEPT, 700 - ALERTS_KEPT, 700)
    assert len(events(incident, EventType.ALERT_FIRING)) == ALERT_EVENTS_KEPT
    assert source.unlisted == 700 - ALERT_EVENTS_KEPT
    assert len([e for e in incident.state.timeline if e.type == EventType.ALERTS_UNLISTED]) == 1
    receive(incident, notification(*((f"db-{n}", "resolved") for n in range(700))))
    assert (source.firing, source.resolved) == (0, 700)
    assert len([e for e in incident.state.timeline if e.type == EventType.ALERTS_UNLISTED]) == 1


def test_the_same_update_again_is_answered_not_applied_and_the_opener_is_remembered() -> None:
    incident = opened()
    receive(incident, notification(("db-1", "firing")), update_id="first")
    again = receive(incident, notification(("db-1", "firing")), update_id="first")
    assert again == "Already recorded: this notification was received before."
    source = incident.state.source
    assert source is not None
    assert (source.notifications, source.opened_by) == (1, "first")
    receive(incident, notification(("db-2", "firing")), update_id="second")
    assert (source.notifications, source.opened_by) == (2, "first")
