"""Statistics: what incidents report about themselves, and how the numbers are computed.

Each incident reports its facts (start, end, time to resolution, first status update,
participants, the integration that opened it and how long its first alert waited for the
incident channel, how long its first page waited for an acknowledgement and the pages each
person got and acknowledged) to the statistics workflow of its team and start month. A query returns
a compact slice of the month for a window; the API merges the slices and computes the
numbers with the pure functions here, so the same code defines them everywhere.

Windows select incidents by when they *started*: `since <= started_at < until`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from statistics import fmean
from typing import TypeVar, cast

from pydantic import Field, model_validator

from models.common import Model
from models.integration import IntegrationKind
from models.severity import NO_SEVERITY


class FactsStatus(StrEnum):
    ONGOING = "ongoing"
    ENDED = "ended"


class FactsSource(Model):
    """The integration that opened an incident, as it was named when the incident reported."""

    integration_id: str
    integration_name: str
    kind: IntegrationKind


class IncidentFacts(Model):
    incident_id: str
    team_id: str
    playbook_id: str | None
    status: FactsStatus
    started_at: datetime
    ended_at: datetime | None = None
    time_to_resolution_seconds: int | None = None
    first_status_update_at: datetime | None = None
    participant_ids: list[str] = Field(default_factory=list)
    is_public: bool = False
    # None: a person started the incident (and every report made before sources were reported).
    source: FactsSource | None = None
    # From the intake receiving the alert group's first notification to the incident channel's
    # creation; None for incidents people started.
    first_alert_to_channel_seconds: int | None = None
    # From the incident's first page to the first acknowledgement of any page (whole seconds);
    # None when nothing was paged or nobody acknowledged.
    time_to_acknowledge_seconds: int | None = None
    # Per person messaged: how many pages reached them; and how many pages each acknowledged.
    pages_by_user: dict[str, int] = Field(default_factory=dict)
    acknowledged_by_user: dict[str, int] = Field(default_factory=dict)
    # The team's severity level (1 is the most severe); None: none given (and reports made before severity).
    severity: int | None = None
    # The select fields' values by field name (`models.custom_fields`); empty in reports made before fields.
    fields: dict[str, str] = Field(default_factory=dict)


def stats_month(started_at: datetime) -> str:
    return started_at.astimezone(UTC).strftime("%Y-%m")


def stats_workflow_id(team_id: str, month: str, shard: int = 0) -> str:
    """A team-month's statistics shard: the first keeps the original id, further ones add `-<n>`."""
    return f"incident-stats-{team_id}-{month}" + (f"-{shard}" if shard else "")


_SHARD_ID = re.compile(r"-(\d{4}-\d{2})(?:-(\d+))?$")


def shard_month(workflow_id: str) -> str | None:
    """The month (`YYYY-MM`) a statistics shard's workflow id names, or None if it names none."""
    found = _SHARD_ID.search(workflow_id)
    return found.group(1) if found else None


DEFAULT_SHARD_CAPACITY = 10_000


class StatsShardStart(Model):
    """Input of `IncidentStatsWorkflow` (also what continue-as-new carries)."""

    team_id: str
    month: str
    # Incidents this shard holds; a report of another incident once it is full goes to the
    # next shard of the month (see `accepts` and `StatsActivities.report_incident_facts`).
    # 10,000 records are about 800 KB (950 KB if each paged two people), well inside Temporal's 2 MB payload limit.
    capacity: int = DEFAULT_SHARD_CAPACITY
    # This shard's place in its month (0: `incident-stats-<team>-<month>`), and reports of
    # incidents it has no room for, waiting to be forwarded to the next shard in order.
    shard: int = 0
    overflow: list[IncidentFacts] = Field(default_factory=list)
    # Interned so 10,000 incidents fit comfortably in one payload.
    users: list[str] = Field(default_factory=list)
    playbooks: list[str] = Field(default_factory=list)
    # The integrations that opened incidents here, one entry per id, name and kind.
    sources: list[FactsSource] = Field(default_factory=list)
    # The select fields' values incidents reported, as `name=value` (the option as declared).
    field_terms: list[str] = Field(default_factory=list)
    # incident id -> [playbook index | -1, start (epoch ms), end (epoch ms) | None, ttr (s) | None,
    #                 time to first update (s) | None, [participant indexes], public (0/1),
    #                 source index | -1, first alert to channel (s) | None,
    #                 time to acknowledge (s) | None, [[user index, pages received, pages acknowledged]],
    #                 severity level | None, [field term indexes]]
    records: dict[str, list[object]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete_old_records(self) -> StatsShardStart:
        """Records written before sources were recorded have their first seven fields, those
        written before paging was recorded their first nine, those written before severity their
        first eleven, those written before custom fields their first twelve: they read as started by
        people, as paging nobody, as without severity and without fields (a shard's state is loaded
        again on every replay and continue-as-new, so every record the query reads has all thirteen)."""
        for record in self.records.values():
            if len(record) < RECORD_FIELDS:
                # Fields 7 to 12's neutral values (a fresh list each: records are changed in place).
                record.extend([-1, None, None, [], None, []][len(record) - RECORD_FIELDS :])
        return self


# The statistics workflow's type: its client (the reporting activity) starts it by this name.
STATS_WORKFLOW = "IncidentStatsWorkflow"


class StatsForward(Model):
    """A report a full shard passes on to the next shard of its month."""

    facts: IncidentFacts
    shard: int
    capacity: int


class StatsWindow(Model):
    since: datetime | None = None
    until: datetime | None = None
    playbook_id: str | None = None
    # Only incidents of this severity level (0: those without a severity).
    severity: int | None = None
    # Only incidents whose select fields have these values (all of them), each `name=value`
    # (`models.custom_fields.parse_field_filter`; the value in any case).
    fields: list[str] = Field(default_factory=list, max_length=5)
    # Count only incidents this user may see (public ones, and private ones they are in);
    # None counts everything (system admins).
    viewer_id: str | None = None


class SourceTally(Model):
    """The incidents one integration opened in a window; named as on the latest of them."""

    integration_name: str
    kind: IntegrationKind
    incidents: int
    latest_started_ms: int

    def plus(self, other: SourceTally) -> SourceTally:
        newest = max(self, other, key=lambda t: (t.latest_started_ms, t.integration_name, t.kind.value))
        return newest.model_copy(update={"incidents": self.incidents + other.incidents})


def add_tally(tallies: dict[str, SourceTally], integration_id: str, tally: SourceTally) -> None:
    known = tallies.get(integration_id)
    tallies[integration_id] = known.plus(tally) if known else tally


class SeveritySlice(Model):
    """The window's incidents of one severity level: how many, how many still ongoing, and the
    times the breakdown's medians and p90s need."""

    count: int = 0
    ongoing: int = 0
    resolved: list[int] = Field(default_factory=list)  # time to resolution (s) of the ended ones
    acknowledged: list[int] = Field(default_factory=list)  # time to acknowledge (s)

    def plus(self, other: SeveritySlice) -> SeveritySlice:
        return SeveritySlice(
            count=self.count + other.count,
            ongoing=self.ongoing + other.ongoing,
            resolved=self.resolved + other.resolved,
            acknowledged=self.acknowledged + other.acknowledged,
        )


class StatsSlice(Model):
    """The raw material for the numbers, from one shard (or merged from several).

    Aggregated per day wherever the numbers allow it, so a month of 10,000 incidents is a
    few kilobytes of counts and the resolution and first-update times (exact medians and
    p90s, overall and per day as the backstage charts them, need the values).
    """

    started_per_day: dict[str, int] = Field(default_factory=dict)  # start day -> incidents
    # Start day -> times to resolution (s) of the incidents started that day and ended.
    resolved_by_day: dict[str, list[int]] = Field(default_factory=dict)
    first_updates: list[int] = Field(default_factory=list)  # time to first update (s)
    ongoing_started: list[int] = Field(default_factory=list)  # start epoch ms of ongoing ones
    participants: list[str] = Field(default_factory=list)
    # Integration id -> the incidents it opened (the rest, `total` less these, people started).
    by_integration: dict[str, SourceTally] = Field(default_factory=dict)
    # First alert to incident channel (s), of the alert-opened incidents that know it.
    alert_to_channel: list[int] = Field(default_factory=list)
    # First page to first acknowledgement (s), of the incidents in which someone acknowledged.
    time_to_acknowledge: list[int] = Field(default_factory=list)
    # Per person: the pages that reached them, and the pages they acknowledged.
    pages_received: dict[str, int] = Field(default_factory=dict)
    pages_acknowledged: dict[str, int] = Field(default_factory=dict)
    # Severity level (NO_SEVERITY: none) -> its incidents.
    by_severity: dict[int, SeveritySlice] = Field(default_factory=dict)
    # A select field's value, `name=value` -> its incidents.
    by_field: dict[str, SeveritySlice] = Field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.started_per_day.values())

    @property
    def resolved(self) -> list[int]:
        return [ttr for times in self.resolved_by_day.values() for ttr in times]

    @property
    def resolved_per_day(self) -> dict[str, tuple[int, int]]:
        return {day: (sum(times), len(times)) for day, times in self.resolved_by_day.items()}

    @property
    def first_update_sum(self) -> int:
        return sum(self.first_updates)

    @property
    def first_update_count(self) -> int:
        return len(self.first_updates)

    def merge(self, other: StatsSlice) -> StatsSlice:
        started = dict(self.started_per_day)
        for day, count in other.started_per_day.items():
            started[day] = started.get(day, 0) + count
        resolved = {day: list(times) for day, times in self.resolved_by_day.items()}
        for day, times in other.resolved_by_day.items():
            resolved.setdefault(day, []).extend(times)
        by_integration = dict(self.by_integration)
        for integration_id, tally in other.by_integration.items():
            add_tally(by_integration, integration_id, tally)
        by_severity = dict(self.by_severity)
        for level, part in other.by_severity.items():
            by_severity[level] = by_severity[level].plus(part) if level in by_severity else part
        by_field = dict(self.by_field)
        for term, part in other.by_field.items():
            by_field[term] = by_field[term].plus(part) if term in by_field else part
        return StatsSlice(
            started_per_day=started,
            resolved_by_day=resolved,
            first_updates=self.first_updates + other.first_updates,
            ongoing_started=self.ongoing_started + other.ongoing_started,
            participants=sorted(set(self.participants) | set(other.participants)),
            by_integration=by_integration,
            alert_to_channel=self.alert_to_channel + other.alert_to_channel,
            time_to_acknowledge=self.time_to_acknowledge + other.time_to_acknowledge,
            pages_received=_added(self.pages_received, other.pages_received),
            pages_acknowledged=_added(self.pages_acknowledged, other.pages_acknowledged),
            by_severity=by_severity,
            by_field=by_field,
        )


def _added(one: dict[str, int], other: dict[str, int]) -> dict[str, int]:
    total = dict(one)
    for key, count in other.items():
        total[key] = total.get(key, 0) + count
    return total


class ResolutionStats(Model):
    count: int
    mean: float | None
    median: float | None
    p90: float | None
    max: int | None
    per_day_mean: dict[str, float]


class IntegrationCount(Model):
    integration_id: str
    integration_name: str = Field(description="Its name on the latest incident it opened in the window")
    kind: IntegrationKind
    incidents: int = Field(description="Incidents it opened that started in the window")


class SourceCounts(Model):
    people: int = Field(description="Incidents people started (slash command, REST, backstage)")
    integrations: list[IntegrationCount] = Field(
        description="Incidents each integration opened from alerts, the most first (then by name)"
    )


class DelayStats(Model):
    count: int = Field(description="Incidents measured")
    median: float | None = Field(description="Seconds; the mean of the two middle values for an even count")
    p90: float | None = Field(description="Seconds; nearest rank")
    max: int | None = Field(description="Seconds")


class AcknowledgeStats(Model):
    count: int = Field(description="Incidents in which someone acknowledged a page")
    mean: float | None = Field(description="Seconds")
    median: float | None = Field(description="Seconds; the mean of the two middle values for an even count")
    p90: float | None = Field(description="Seconds; nearest rank")
    max: int | None = Field(description="Seconds")


class SeverityResolution(Model):
    count: int = Field(description="Ended incidents")
    mean: float | None = Field(description="Seconds")
    median: float | None = Field(description="Seconds; the mean of the two middle values for an even count")
    p90: float | None = Field(description="Seconds; nearest rank")


class SeverityAcknowledge(Model):
    count: int = Field(description="Incidents in which someone acknowledged a page")
    median: float | None = Field(description="Seconds; the mean of the two middle values for an even count")


class SeverityStats(Model):
    level: int | None = Field(description="The severity level (1 is the most severe); null: incidents without one")
    name: str | None = Field(description="The level's name as the team names it now (null: none, or a level the "
                             "team no longer has)")  # fmt: skip
    count: int = Field(description="Incidents of this severity that started in the window")
    ongoing: int
    ended: int
    time_to_resolution_seconds: SeverityResolution
    time_to_acknowledge_seconds: SeverityAcknowledge


class FieldValueStats(Model):
    field: str = Field(description="The select field's name")
    value: str = Field(description="One of its options")
    count: int = Field(description="Incidents with this value that started in the window")
    ongoing: int
    ended: int
    time_to_resolution_seconds: SeverityResolution
    time_to_acknowledge_seconds: SeverityAcknowledge


class PersonPages(Model):
    user_id: str
    pages: int = Field(description="Pages whose direct message reached them (a schedule's page: each person on call)")
    acknowledged: int = Field(description="Pages they acknowledged")


class IncidentStats(Model):
    team_id: str
    since: datetime | None
    until: datetime | None
    playbook_id: str | None
    severity: int | None = Field(
        default=None, description="The severity level asked for (0: incidents without one); null: every incident"
    )
    total: int
    ongoing: int
    ended: int
    started_per_day: dict[str, int]
    time_to_resolution_seconds: ResolutionStats
    mean_time_to_first_update_seconds: float | None
    ongoing_mean_age_seconds: float | None
    participants: int
    by_source: SourceCounts = Field(description="The window's incidents by who or what opened them")
    first_alert_to_channel_seconds: DelayStats = Field(
        description="Alert-opened incidents (ongoing or ended): from the first alert of their group "
        "reaching this service to their incident channel being created"
    )
    time_to_acknowledge_seconds: AcknowledgeStats = Field(
        description="Paged incidents (ongoing or ended) in which someone acknowledged: from the incident's first "
        "page to the first acknowledgement of any of its pages, in whole seconds"
    )
    pages_per_person: list[PersonPages] = Field(
        description="The people paged in the window's incidents: pages that reached each and how many they "
        "acknowledged, the most paged first (then the most acknowledged, then by user id)"
    )
    by_severity: list[SeverityStats] = Field(
        default_factory=list,
        description="The window's incidents by severity level, the most severe first, those without one last "
        "(levels without incidents are left out)",
    )
    fields: list[str] = Field(default_factory=list, description="The field filters asked for (`name=value`)")
    by_field: list[FieldValueStats] = Field(
        default_factory=list,
        description="The window's incidents by the value of each select field (incidents with a value only): by "
        "field name, then the most incidents first",
    )


def median(values: list[int]) -> float | None:
    """The middle value; the mean of the two middle values for an even count."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: list[int], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `share` of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return float(ordered[rank - 1])


def _resolution(part: SeveritySlice) -> SeverityResolution:
    resolved = part.resolved
    return SeverityResolution(
        count=len(resolved),
        mean=sum(resolved) / len(resolved) if resolved else None,
        median=median(resolved),
        p90=percentile(resolved, 0.9),
    )


def _acknowledge(part: SeveritySlice) -> SeverityAcknowledge:
    return SeverityAcknowledge(count=len(part.acknowledged), median=median(part.acknowledged))


def severity_breakdown(data: StatsSlice, level_names: dict[int, str]) -> list[SeverityStats]:
    """Per severity level (named as the team names it now), the most severe first, none last."""
    rows = []
    for level in sorted(data.by_severity, key=lambda n: (n == NO_SEVERITY, n)):
        part = data.by_severity[level]
        rows.append(
            SeverityStats(
                level=level or None,
                name=level_names.get(level) if level else None,
                count=part.count,
                ongoing=part.ongoing,
                ended=len(part.resolved),
                time_to_resolution_seconds=_resolution(part),
                time_to_acknowledge_seconds=_acknowledge(part),
            )
        )
    return rows


def field_breakdown(data: StatsSlice) -> list[FieldValueStats]:
    """Per select field's value: by field name, then the most incidents first, then by value."""
    rows = []
    for term, part in data.by_field.items():
        name, _, value = term.partition("=")
        rows.append(
            FieldValueStats(
                field=name,
                value=value,
                count=part.count,
                ongoing=part.ongoing,
                ended=len(part.resolved),
                time_to_resolution_seconds=_resolution(part),
                time_to_acknowledge_seconds=_acknowledge(part),
            )
        )
    return sorted(rows, key=lambda row: (row.field, -row.count, row.value.casefold(), row.value))


def compute(
    team_id: str, window: StatsWindow, data: StatsSlice, now: datetime, level_names: dict[int, str] | None = None
) -> IncidentStats:
    """The numbers of a window; `level_names` names the severity levels (the team's, as they are now)."""
    ttr = data.resolved
    now_ms = now.timestamp() * 1000
    integrations = sorted(
        (
            IntegrationCount(
                integration_id=integration_id,
                integration_name=tally.integration_name,
                kind=tally.kind,
                incidents=tally.incidents,
            )
            for integration_id, tally in data.by_integration.items()
        ),
        key=lambda c: (-c.incidents, c.integration_name, c.integration_id),
    )
    to_channel = data.alert_to_channel
    to_ack = data.time_to_acknowledge
    paged = set(data.pages_received) | set(data.pages_acknowledged)
    people = sorted(
        (
            PersonPages(
                user_id=user_id,
                pages=data.pages_received.get(user_id, 0),
                acknowledged=data.pages_acknowledged.get(user_id, 0),
            )
            for user_id in paged
        ),
        key=lambda p: (-p.pages, -p.acknowledged, p.user_id),
    )
    return IncidentStats(
        team_id=team_id,
        since=window.since,
        until=window.until,
        playbook_id=window.playbook_id,
        severity=window.severity,
        total=data.total,
        ongoing=len(data.ongoing_started),
        ended=len(ttr),
        started_per_day=dict(sorted(data.started_per_day.items())),
        time_to_resolution_seconds=ResolutionStats(
            count=len(ttr),
            # Sums of whole seconds are exact, so these equal `statistics.fmean` of the values.
            mean=sum(ttr) / len(ttr) if ttr else None,
            median=median(ttr),
            p90=percentile(ttr, 0.9),
            max=max(ttr) if ttr else None,
            per_day_mean={day: total / count for day, (total, count) in sorted(data.resolved_per_day.items())},
        ),
        mean_time_to_first_update_seconds=data.first_update_sum / data.first_update_count
        if data.first_update_count
        else None,
        ongoing_mean_age_seconds=fmean((now_ms - s) / 1000 for s in data.ongoing_started)
        if data.ongoing_started
        else None,
        participants=len(data.participants),
        by_source=SourceCounts(
            people=data.total - sum(count.incidents for count in integrations), integrations=integrations
        ),
        first_alert_to_channel_seconds=DelayStats(
            count=len(to_channel),
            median=median(to_channel),
            p90=percentile(to_channel, 0.9),
            max=max(to_channel) if to_channel else None,
        ),
        time_to_acknowledge_seconds=AcknowledgeStats(
            count=len(to_ack),
            mean=sum(to_ack) / len(to_ack) if to_ack else None,
            median=median(to_ack),
            p90=percentile(to_ack, 0.9),
            max=max(to_ack) if to_ack else None,
        ),
        pages_per_person=people,
        by_severity=severity_breakdown(data, level_names or {}),
        fields=list(window.fields),
        by_field=field_breakdown(data),
    )


# ----------------------------------------------------------------------------- the shard's records

_T = TypeVar("_T")


def _intern(table: list[_T], value: _T) -> int:
    try:
        return table.index(value)
    except ValueError:
        table.append(value)
        return len(table) - 1


def accepts(shard: StatsShardStart, incident_id: str) -> bool:
    """Whether this shard keeps the incident's facts: it has them already, or it has room.

    Shards only grow, so an incident lives in the first shard of its month that had room
    when it first reported, and every later report finds it there, passed on from shard 0.
    """
    return incident_id in shard.records or len(shard.records) < shard.capacity


def record_facts(shard: StatsShardStart, facts: IncidentFacts) -> None:
    """Insert or replace one incident's facts (reports are idempotent: the latest wins)."""
    first_update = (
        round((facts.first_status_update_at - facts.started_at).total_seconds())
        if facts.first_status_update_at
        else None
    )
    ended = facts.status == FactsStatus.ENDED
    shard.records[facts.incident_id] = [
        _intern(shard.playbooks, facts.playbook_id) if facts.playbook_id else -1,
        epoch_ms(facts.started_at),
        epoch_ms(facts.ended_at) if ended and facts.ended_at else None,
        facts.time_to_resolution_seconds if ended else None,
        first_update,
        [_intern(shard.users, user_id) for user_id in facts.participant_ids],
        1 if facts.is_public else 0,
        _intern(shard.sources, facts.source) if facts.source else -1,
        facts.first_alert_to_channel_seconds if facts.source else None,
        facts.time_to_acknowledge_seconds,
        [
            [
                _intern(shard.users, user_id),
                facts.pages_by_user.get(user_id, 0),
                facts.acknowledged_by_user.get(user_id, 0),
            ]
            for user_id in dict.fromkeys([*facts.pages_by_user, *facts.acknowledged_by_user])
        ],
        facts.severity,
        [_intern(shard.field_terms, f"{name}={value}") for name, value in facts.fields.items()],
    ]


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


DAY_MS = 86_400_000
# One record of `StatsShardStart.records`, as `record_facts` writes it.
_Record = tuple[
    int, int, int | None, int | None, int | None, list[int], int, int, int | None, int | None, list[list[int]],
    int | None, list[int],
]  # fmt: skip
RECORD_FIELDS = 13


def slice_of(shard: StatsShardStart, window: StatsWindow) -> StatsSlice:
    """The shard's incidents in the window, aggregated. One pass of plain integer work per
    record (no datetime per record): 10,000 records take milliseconds, even in the sandbox."""
    since = epoch_ms(window.since) if window.since else None
    until = epoch_ms(window.until) if window.until else None
    playbook = shard.playbooks.index(window.playbook_id) if window.playbook_id in shard.playbooks else None
    if window.playbook_id and playbook is None:
        return StatsSlice()
    viewer = shard.users.index(window.viewer_id) if window.viewer_id in shard.users else -1
    wanted_severity = window.severity
    # Each field filter: the terms (indexes) that satisfy it; an incident needs one of each.
    wanted_fields = [
        {index for index, term in enumerate(shard.field_terms) if term.casefold() == wanted.casefold()}
        for wanted in window.fields
    ]
    if any(not matching for matching in wanted_fields):
        return StatsSlice()
    started: dict[int, int] = {}
    resolved: dict[int, list[int]] = {}
    first_updates: list[int] = []
    ongoing: list[int] = []
    participants: set[int] = set()
    by_source: dict[int, int] = {}
    latest: dict[int, int] = {}
    to_channel: list[int] = []
    to_ack: list[int] = []
    received: dict[int, int] = {}
    acknowledged: dict[int, int] = {}
    by_severity: dict[int, SeveritySlice] = {}
    by_term: dict[int, SeveritySlice] = {}
    # No isinstance() here: the workflow sandbox wraps it, and that wrapper was two thirds of
    # a 10,000-record query (py-spy of the worker, docs/performance.md). `record_facts` is the
    # only writer, so the types are known.
    for record in shard.records.values():
        (
            playbook_index, start, end, ttr, first_update, people, public, source_index, to_channel_s, to_ack_s, paged,
            severity, terms,
        ) = cast(_Record, record)  # fmt: skip
        if (since is not None and start < since) or (until is not None and start >= until):
            continue
        if playbook is not None and playbook_index != playbook:
            continue
        level = severity or NO_SEVERITY
        if wanted_severity is not None and level != wanted_severity:
            continue
        if window.viewer_id is not None and not public and viewer not in people:
            continue
        if wanted_fields and not all(matching.intersection(terms) for matching in wanted_fields):
            continue
        day = start // DAY_MS
        started[day] = started.get(day, 0) + 1
        if end is None or ttr is None:
            ongoing.append(start)
        else:
            resolved.setdefault(day, []).append(ttr)
        if first_update is not None:
            first_updates.append(first_update)
        participants.update(people)
        if source_index >= 0:
            by_source[source_index] = by_source.get(source_index, 0) + 1
            if start > latest.get(source_index, -1):
                latest[source_index] = start
            if to_channel_s is not None:
                to_channel.append(to_channel_s)
        if to_ack_s is not None:
            to_ack.append(to_ack_s)
        part = by_severity.get(level)
        if part is None:
            part = by_severity[level] = SeveritySlice()
        part.count += 1
        if end is None or ttr is None:
            part.ongoing += 1
        else:
            part.resolved.append(ttr)
        if to_ack_s is not None:
            part.acknowledged.append(to_ack_s)
        for term in terms:
            value_part = by_term.get(term)
            if value_part is None:
                value_part = by_term[term] = SeveritySlice()
            value_part.count += 1
            if end is None or ttr is None:
                value_part.ongoing += 1
            else:
                value_part.resolved.append(ttr)
            if to_ack_s is not None:
                value_part.acknowledged.append(to_ack_s)
        for user_index, pages, acks in paged:
            if pages:
                received[user_index] = received.get(user_index, 0) + pages
            if acks:
                acknowledged[user_index] = acknowledged.get(user_index, 0) + acks

    def label(day: int) -> str:
        return datetime.fromtimestamp(day * DAY_MS / 1000, UTC).strftime("%Y-%m-%d")

    by_integration: dict[str, SourceTally] = {}
    for index, count in by_source.items():
        source = shard.sources[index]
        add_tally(
            by_integration,
            source.integration_id,
            SourceTally(
                integration_name=source.integration_name,
                kind=source.kind,
                incidents=count,
                latest_started_ms=latest[index],
            ),
        )
    return StatsSlice(
        started_per_day={label(day): count for day, count in started.items()},
        resolved_by_day={label(day): times for day, times in resolved.items()},
        first_updates=first_updates,
        ongoing_started=ongoing,
        participants=sorted(shard.users[index] for index in participants),
        by_integration=by_integration,
        alert_to_channel=to_channel,
        time_to_acknowledge=to_ack,
        pages_received={shard.users[index]: count for index, count in received.items()},
        pages_acknowledged={shard.users[index]: count for index, count in acknowledged.items()},
        by_severity=by_severity,
        by_field={shard.field_terms[term]: part for term, part in by_term.items()},
    )
