"""What the API shows of an incident: the full record, the view a command answers with,
the summary lists read from visibility, and the facts the statistics receive.

All are computed from `IncidentState` at a given moment by pure functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from models.common import Model
from models.custom_fields import FieldType, select_values
from models.incident import IncidentState, IncidentStatus, ItemState, Period, Stage, StatusUpdate, TimelineEvent
from models.incident_alerts import AlertSourceView
from models.paging import PAGES_IN_VIEW, Escalation, Page
from models.severity import Severity
from models.stats import FactsSource, FactsStatus, IncidentFacts


class IncidentView(Model):
    """The incident as a command's answer shows it: everything but the timeline."""

    id: str
    name: str
    description: str
    team_id: str
    channel_id: str | None
    channel_name: str | None
    playbook_id: str | None
    playbook_version: int | None
    status: IncidentStatus
    is_public: bool
    commander_id: str
    reporter_id: str
    member_ids: list[str]
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int
    time_to_resolution_seconds: int | None
    active_stage: int
    active_stage_title: str
    checklists: list[Stage]
    status_updates: list[StatusUpdate]
    reminder_seconds: int
    next_reminder_at: datetime | None
    failure: str | None = None
    # Set when an integration opened the incident: which, the alert group, its alerts' counts and links.
    source: AlertSourceView | None = None
    # The newest pages (`PAGES_IN_VIEW`; the timeline has every one) and the escalation's position.
    pages: list[Page] = Field(default_factory=list)
    escalation: Escalation | None = None
    # The team's severity level, named as when it was set (None: none given).
    severity: Severity | None = None
    # The custom fields' values by name (`models.custom_fields`: a user field's is the person's id,
    # their username in `field_usernames`); fields without a value are absent.
    fields: dict[str, str] = Field(default_factory=dict)
    field_usernames: dict[str, str] = Field(default_factory=dict)


class IncidentRecord(IncidentView):
    """The full incident as the API shows it."""

    timeline: list[TimelineEvent]


class IncidentSummary(Model):
    """What lists show, kept in the workflow's memo so a listing needs no queries."""

    id: str
    name: str
    team_id: str
    channel_id: str | None
    channel_name: str | None
    playbook_id: str | None
    status: IncidentStatus
    is_public: bool
    commander_id: str
    reporter_id: str
    started_at: datetime
    ended_at: datetime | None
    time_to_resolution_seconds: int | None
    first_status_update_at: datetime | None = None
    active_stage: int
    active_stage_title: str
    member_count: int = 0
    severity: Severity | None = None
    fields: dict[str, str] = Field(default_factory=dict)

    def elapsed_seconds(self, now: datetime) -> int:
        """The incident's duration: until its end, or until `now` while it is ongoing."""
        end = self.ended_at if self.status == IncidentStatus.ENDED and self.ended_at else now
        return max(0, round((end - self.started_at).total_seconds()))


def summarize(state: IncidentState) -> IncidentSummary:
    """The incident as lists show it: its view's fields that lists have, and two of its own."""
    view = to_view(state, state.started_at)
    return IncidentSummary(
        **_fields(view, SUMMARY_FROM_VIEW),
        first_status_update_at=state.first_status_update_at,
        member_count=len(state.member_ids),
    )


def ongoing_seconds(periods: list[Period], now: datetime) -> float:
    """Total time the incident has been ongoing, across restarts."""
    return sum(((p.ended_at or now) - p.started_at).total_seconds() for p in periods)


def time_to_resolution(state: IncidentState) -> int | None:
    """Seconds the incident was ongoing until it was (last) ended; None while ongoing.

    A restarted incident counts only the time it was ongoing: the gap between an end and
    the restart is not resolution time (see README, "Time to resolution").
    """
    if state.status != IncidentStatus.ENDED:
        return None
    return round(ongoing_seconds(state.periods, state.ended_at or state.started_at))


def to_record(state: IncidentState, now: datetime) -> IncidentRecord:
    return IncidentRecord(**dict(to_view(state, now)), timeline=state.timeline)


# The fields lists show as the incident's view has them.
SUMMARY_FROM_VIEW = set(IncidentSummary.model_fields) & set(IncidentView.model_fields)
# The fields a view shows as the state has them (an end shows only once the incident ended).
VIEW_FROM_STATE = set(IncidentView.model_fields) & set(IncidentState.model_fields) - {"ended_at", "source", "pages"}


def _fields(model: BaseModel, names: set[str]) -> dict[str, Any]:
    """Some of a model's fields, as they are (nothing is copied or serialized)."""
    return {name: value for name, value in model if name in names}


def to_view(state: IncidentState, now: datetime) -> IncidentView:
    end = state.ended_at if state.status != IncidentStatus.ONGOING and state.ended_at else now
    stage_title = state.checklists[state.active_stage].title if state.active_stage < len(state.checklists) else ""
    return IncidentView(
        **_fields(state, VIEW_FROM_STATE),
        playbook_id=state.playbook_id,
        playbook_version=state.playbook.version if state.playbook else None,
        ended_at=state.ended_at if state.status == IncidentStatus.ENDED else None,
        duration_seconds=max(0, round((end - state.started_at).total_seconds())),
        time_to_resolution_seconds=time_to_resolution(state),
        active_stage_title=stage_title,
        next_reminder_at=state.reminder_due_at if state.status == IncidentStatus.ONGOING else None,
        source=AlertSourceView.of(state.source) if state.source else None,
        pages=state.pages[-PAGES_IN_VIEW:],
        fields=dict(state.field_values),
        field_usernames=_field_usernames(state),
    )


def _field_usernames(state: IncidentState) -> dict[str, str]:
    declared = state.playbook.fields if state.playbook else []
    return {
        spec.name: state.usernames.get(state.field_values[spec.name], "")
        for spec in declared
        if spec.type == FieldType.USER and spec.name in state.field_values
    }


class OpenItem(Model):
    """An open item assigned to someone, as `/incident todo`, `GET /api/v1/me/todo` and the
    backstage's *My open items* list it. Positions are 0-based."""

    incident_id: str
    incident_name: str
    team_id: str
    team_name: str
    channel_id: str | None
    channel_name: str | None
    stage: int
    stage_title: str
    item: int
    item_id: str
    title: str
    state: ItemState
    due_at: datetime | None
    overdue: bool


def open_items_of(state: IncidentState, user_id: str) -> list[OpenItem]:
    """The open items assigned to `user_id` in the incident, while it is ongoing."""
    if state.status != IncidentStatus.ONGOING:
        return []
    return [
        OpenItem(
            incident_id=state.id,
            incident_name=state.name,
            team_id=state.team_id,
            team_name=state.team_name,
            channel_id=state.channel_id,
            channel_name=state.channel_name,
            stage=stage_index,
            stage_title=stage.title,
            item=item_index,
            item_id=item.id,
            title=item.title,
            state=item.state,
            due_at=item.due_at,
            overdue=item.overdue,
        )
        for stage_index, stage in enumerate(state.checklists)
        for item_index, item in enumerate(stage.items)
        if item.assignee_id == user_id and item.state not in (ItemState.DONE, ItemState.SKIPPED)
    ]


_NEVER = datetime.max.replace(tzinfo=UTC)


def todo_order(item: OpenItem) -> tuple[int, datetime, str, str, int, int]:
    """Overdue first, then those with a due time, soonest first, then the rest; by incident and place after."""
    rank = 0 if item.overdue else 1 if item.due_at is not None else 2
    return (rank, item.due_at or _NEVER, item.incident_name.casefold(), item.incident_id, item.stage, item.item)


def stats_facts(state: IncidentState) -> IncidentFacts:
    """What the incident reports to its team's statistics."""
    ended = state.status == IncidentStatus.ENDED
    alerts = state.source
    source = (
        FactsSource(integration_id=alerts.integration_id, integration_name=alerts.integration_name, kind=alerts.kind)
        if alerts
        else None
    )
    return IncidentFacts(
        incident_id=state.id,
        team_id=state.team_id,
        playbook_id=state.playbook_id,
        status=FactsStatus.ENDED if ended else FactsStatus.ONGOING,
        started_at=state.started_at,
        ended_at=state.ended_at if ended else None,
        time_to_resolution_seconds=time_to_resolution(state),
        first_status_update_at=state.first_status_update_at,
        participant_ids=list(state.member_ids),
        is_public=state.is_public,
        source=source,
        first_alert_to_channel_seconds=first_alert_to_channel(state),
        time_to_acknowledge_seconds=time_to_acknowledge(state),
        pages_by_user=dict(state.paging_tally.received),
        acknowledged_by_user=dict(state.paging_tally.acknowledged),
        severity=state.severity.level if state.severity else None,
        fields=select_values(state.playbook.fields if state.playbook else [], state.field_values),
    )


def time_to_acknowledge(state: IncidentState) -> int | None:
    """Whole seconds (rounded) from the incident's first page to the first acknowledgement of
    any of its pages (an expired page acknowledged later included); None when nothing was paged
    or nobody acknowledged."""
    tally = state.paging_tally
    if tally.first_paged_at is None or tally.first_acknowledged_at is None:
        return None
    return max(0, round((tally.first_acknowledged_at - tally.first_paged_at).total_seconds()))


def first_alert_to_channel(state: IncidentState) -> int | None:
    """Seconds from the intake receiving the alert group's first notification to the incident
    channel's creation (never below 0: the two clocks are the API's and the worker's); None for
    an incident people started, or one whose channel was made before this was recorded."""
    if state.source is None or state.channel_created_at is None:
        return None
    return max(0, round((state.channel_created_at - state.source.first_alert_at).total_seconds()))
