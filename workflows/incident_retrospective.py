"""The incident's retrospective: opening it at the end, its figures, and when its reminders are due.

Pure and deterministic (the incident's rules and workflow call it; no I/O). The commands that
edit, publish and decline it are rules of `workflows.incident_rules.Incident`; the model is
`models.retrospective`.

**Opening.** When an incident whose playbook has a retrospective ends (by a person, by the
automatic end or by an operator's cancellation), its retrospective opens from the template with
the figures filled in (`figures`), due `due_after` from the end. Once: an incident restarted and
ended again keeps the retrospective it has (its figures are not filled in again).

**Reminders.** While it is a draft and the incident has ended, the commander gets a direct
message at its due time, then every `reminder_every`, until it is published or declined. The
incident's workflow keeps running (idle, on one timer) while a retrospective is open, so the
reminders survive worker restarts like any other timer; an incident without a retrospective
closes its run when it ends, as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models.incident import IncidentState, IncidentStatus
from models.incident_report import build_report, line
from models.incident_report import duration as report_duration
from models.incident_report import when as report_when
from models.incident_views import time_to_acknowledge, time_to_resolution
from models.playbook_automation import duration_seconds
from models.retrospective import Retrospective, RetrospectiveSpec, fill


def figures(state: IncidentState, now: datetime) -> dict[str, str]:
    """Each placeholder's text for this incident (people's words escaped: no mention notifies anyone)."""
    report = build_report(state, now)
    first_update = (
        round((state.first_status_update_at - state.started_at).total_seconds())
        if state.first_status_update_at
        else None
    )
    moments = [f"- {report_when(e.at)} (+{report_duration(e.since_start_seconds)}): {line(e.what)}"
               for e in report.key_moments]  # fmt: skip
    people = [f"- {line(p.username or p.user_id)}: {', '.join(p.roles)}" for p in report.participants]
    return {
        "name": line(state.name),
        "severity": line(state.severity.name) if state.severity else "none given",
        "commander": line(report.commander),
        "started_at": report_when(state.started_at),
        "ended_at": report_when(state.ended_at),
        "duration": report_duration(report.duration_seconds),
        "time_to_acknowledge": report_duration(time_to_acknowledge(state)),
        "time_to_first_update": report_duration(first_update),
        "time_to_resolution": report_duration(time_to_resolution(state)),
        "key_moments": "\n".join(moments) or "None were starred.",
        "participants": "\n".join(people) or "Nobody.",
    }


def opened(state: IncidentState, spec: RetrospectiveSpec, now: datetime) -> Retrospective:
    """The retrospective as it opens when the incident ends: the template with its figures, version 1."""
    due = now + timedelta(seconds=duration_seconds(spec.due_after))
    retrospective = Retrospective(
        text=fill(spec.effective_template, figures(state, now)),
        opened_at=now,
        due_at=due,
        reminder_every_seconds=duration_seconds(spec.reminder_every),
        next_reminder_at=due,
    )
    retrospective.record_version("system", now)
    return retrospective


def reminder_due(state: IncidentState) -> datetime | None:
    """When the commander is next reminded of the retrospective (None: it is not open, or the
    incident is ongoing again after a restart: reminders wait for its end)."""
    retrospective = state.retrospective
    if retrospective is None or not retrospective.is_open or state.status != IncidentStatus.ENDED:
        return None
    return retrospective.next_reminder_at


def keeps_run_open(state: IncidentState) -> bool:
    """Whether an ended incident's run must stay open for its retrospective (a draft's reminders
    and edits); False for every incident without one, whose run closes as before."""
    retrospective = state.retrospective
    return retrospective is not None and retrospective.is_open and state.status == IncidentStatus.ENDED


def retrospective_url(state: IncidentState) -> str:
    """The backstage's retrospective page (empty without a public URL)."""
    page = state.config.backstage_url
    return f"{page}/retrospective" if page else ""
