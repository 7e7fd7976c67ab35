"""Statistics by source: incidents counted as people's or each integration's, and the time from
an alert group's first alert to the incident channel (exact median and p90), without Temporal."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta

from models.common import Actor, UserFact
from models.incident import IncidentStart, IncidentState
from models.incident_alerts import AlertSource
from models.incident_views import stats_facts
from models.integration import IntegrationKind
from models.stats import (
    FactsSource,
    FactsStatus,
    IncidentFacts,
    IntegrationCount,
    StatsShardStart,
    StatsSlice,
    StatsWindow,
    compute,
    record_facts,
    slice_of,
)
from workflows.incident_rules import Incident, new_incident

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TEAM = "t" * 26
A, B, C = "a" * 26, "b" * 26, "c" * 26
PROD = FactsSource(integration_id="intg-prod", integration_name="prod", kind=IntegrationKind.ALERTMANAGER)
GRAF = FactsSource(integration_id="intg-graf", integration_name="dashboards", kind=IntegrationKind.GRAFANA)


def facts(
    n: int,
    source: FactsSource | None = None,
    to_channel: int | None = None,
    *,
    public: bool = True,
    people: list[str] | None = None,
    playbook: str | None = None,
    ended: bool = False,
) -> IncidentFacts:
    started = T0 + timedelta(hours=n)
    return IncidentFacts(
        incident_id=f"inc{n}",
        team_id=TEAM,
        playbook_id=playbook,
        status=FactsStatus.ENDED if ended else FactsStatus.ONGOING,
        started_at=started,
        ended_at=started + timedelta(minutes=30) if ended else None,
        time_to_resolution_seconds=1800 if ended else None,
        participant_ids=people or [A],
        is_public=public,
        source=source,
        first_alert_to_channel_seconds=to_channel,
    )


def shard_of(*reports: IncidentFacts) -> StatsShardStart:
    shard = StatsShardStart(team_id=TEAM, month="2026-03")
    for report in reports:
        record_facts(shard, report)
    return shard


def numbers(*slices: StatsSlice, window: StatsWindow | None = None) -> tuple[int, list[tuple[str, str, str, int]]]:
    merged = StatsSlice()
    for part in slices:
        merged = merged.merge(part)
    stats = compute(TEAM, window or StatsWindow(), merged, T0 + timedelta(days=2))
    rows = [(c.integration_id, c.integration_name, c.kind.value, c.incidents) for c in stats.by_source.integrations]
    return stats.by_source.people, rows


def expected_median(values: list[int]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return float(ordered[n // 2]) if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def test_incidents_are_counted_by_source_with_exact_time_to_channel() -> None:
    delays = [4, 1, 9, 2, 30, 3]  # prod's four, then grafana's two
    reports = [
        facts(0),
        facts(1, ended=True),
        facts(2, PROD, delays[0]),
        facts(3, PROD, delays[1], ended=True),
        facts(4, PROD, delays[2]),
        facts(5, PROD, delays[3], ended=True),
        facts(6, GRAF, delays[4]),
        facts(7, GRAF, delays[5], ended=True),
        facts(8),
    ]
    shard = shard_of(*reports)
    # Reported again (ended, members...): still one incident each.
    for report in reports:
        record_facts(shard, report)
    stats = compute(TEAM, StatsWindow(), slice_of(shard, StatsWindow()), T0 + timedelta(days=1))
    assert stats.total == 9
    assert stats.by_source.people == 3
    assert stats.by_source.integrations == [
        IntegrationCount(
            integration_id="intg-prod", integration_name="prod", kind=IntegrationKind.ALERTMANAGER, incidents=4
        ),
        IntegrationCount(
            integration_id="intg-graf", integration_name="dashboards", kind=IntegrationKind.GRAFANA, incidents=2
        ),
    ]
    delay = stats.first_alert_to_channel_seconds
    assert delay.count == 6
    assert delay.median == expected_median(delays) == 3.5
    assert delay.p90 == sorted(delays)[math.ceil(0.9 * 6) - 1] == 30
    assert delay.max == 30
    # The JSON the API answers with names every new figure.
    body = json.loads(stats.model_dump_json())
    assert body["by_source"]["people"] == 3
    assert body["by_source"]["integrations"][0]["kind"] == "alertmanager"
    assert body["first_alert_to_channel_seconds"] == {"count": 6, "median": 3.5, "p90": 30.0, "max": 30}


def test_window_playbook_and_visibility_select_what_is_counted_by_source() -> None:
    shard = shard_of(
        facts(0, PROD, 10, playbook="pb"),
        facts(1, PROD, 20, public=False, people=[B]),
        facts(2, GRAF, 5, public=False, people=[A, C]),
        facts(3, playbook="pb"),
        facts(30, PROD, 40),
    )
    window = StatsWindow(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=4))
    people, rows = numbers(slice_of(shard, window))
    assert (people, rows) == (1, [("intg-graf", "dashboards", "grafana", 1), ("intg-prod", "prod", "alertmanager", 1)])
    assert slice_of(shard, window).alert_to_channel == [20, 5]
    assert numbers(slice_of(shard, StatsWindow(playbook_id="pb"))) == (1, [("intg-prod", "prod", "alertmanager", 1)])
    # Private incidents count (by source and time to channel) only for those who may see them.
    carol = slice_of(shard, StatsWindow(viewer_id=C))
    assert numbers(carol) == (1, [("intg-prod", "prod", "alertmanager", 2), ("intg-graf", "dashboards", "grafana", 1)])
    assert sorted(carol.alert_to_channel) == [5, 10, 40]
    bob = slice_of(shard, StatsWindow(viewer_id=B))
    assert numbers(bob) == (1, [("intg-prod", "prod", "alertmanager", 3)])
    assert sorted(bob.alert_to_channel) == [10, 20, 40]
    empty = compute(TEAM, StatsWindow(), slice_of(shard, StatsWindow(since=T0 + timedelta(days=9))), T0)
    assert (empty.by_source.people, empty.by_source.integrations) == (0, [])
    assert (empty.first_alert_to_channel_seconds.count, empty.first_alert_to_channel_seconds.median) == (0, None)


def test_a_renamed_integration_is_one_row_named_as_on_its_latest_incident_across_shards() -> None:
    renamed = PROD.model_copy(update={"integration_name": "prod (eu)"})
    first = shard_of(facts(0, PROD, 1), facts(5, renamed, 2), facts(6, GRAF, 3))
    second = shard_of(facts(2, PROD, 4), facts(3, PROD, 5), facts(4, GRAF, 6))
    assert len(first.sources) == 3  # interned by id, name and kind
    want = (0, [("intg-prod", "prod (eu)", "alertmanager", 4), ("intg-graf", "dashboards", "grafana", 2)])
    everything = StatsWindow()
    assert numbers(slice_of(first, everything), slice_of(second, everything)) == want
    assert numbers(slice_of(second, everything), slice_of(first, everything)) == want
    # Before the rename, the name it had then.
    before = StatsWindow(until=T0 + timedelta(hours=5))
    assert numbers(slice_of(first, before), slice_of(second, before))[1][0] == ("intg-prod", "prod", "alertmanager", 3)
    # Equal counts: by name.
    tie = shard_of(facts(0, GRAF, 1), facts(1, PROD, 1))
    assert [row[1] for row in numbers(slice_of(tie, everything))[1]] == ["dashboards", "prod"]


def test_facts_and_shards_recorded_before_sources_read_as_peoples() -> None:
    old_report = facts(0).model_dump(mode="json", exclude={"source", "first_alert_to_channel_seconds"})
    assert IncidentFacts.model_validate(old_report).source is None
    # A shard as continue-as-new carried it before: seven fields a record.
    old_shard = {
        "team_id": TEAM,
        "month": "2026-03",
        "users": [A],
        "playbooks": ["pb"],
        "records": {
            "old1": [0, 1_772_366_400_000, 1_772_368_200_000, 1800, 60, [0], 1],
            "old2": [-1, 1_772_370_000_000, None, None, None, [0], 0],
        },
    }
    shard = StatsShardStart.model_validate_json(json.dumps(old_shard))
    assert all(len(record) == 13 for record in shard.records.values())  # completed to the fields of today
    record_facts(shard, facts(5, PROD, 7))
    stats = compute(TEAM, StatsWindow(), slice_of(shard, StatsWindow()), T0 + timedelta(days=1))
    assert (stats.total, stats.ended, stats.by_source.people) == (3, 1, 2)
    assert stats.by_source.integrations[0].incidents == 1
    assert stats.first_alert_to_channel_seconds.median == 7
    # And what it carries on is read back the same.
    again = StatsShardStart.model_validate_json(shard.model_dump_json())
    assert again.records == shard.records
    assert again.sources == [PROD]


def started(source: AlertSource | None) -> Incident:
    ids = (f"id{n}" for n in itertools.count())
    bot = Actor(user_id=B, username="incident-bot", is_team_member=True, is_channel_member=True)
    person = Actor(user_id=A, username="alice", is_team_member=True, is_channel_member=True)
    start = IncidentStart(
        id="inc1",
        team_id=TEAM,
        name="Disk full",
        reporter=bot if source else person,
        commander=UserFact(user_id=C, username="tess", is_team_member=True) if source else None,
        source=source,
    )
    return Incident(new_incident(start, T0 + timedelta(seconds=2), lambda: next(ids)), lambda: next(ids))


def test_an_alert_opened_incident_reports_its_source_and_first_alert_to_channel() -> None:
    source = AlertSource(
        integration_id="intg-prod",
        integration_name="prod",
        kind=IntegrationKind.ALERTMANAGER,
        group_key="disk",
        first_alert_at=T0,
    )
    incident = started(source)
    assert stats_facts(incident.state).first_alert_to_channel_seconds is None  # no channel yet
    incident.channel_ready(T0 + timedelta(seconds=7, milliseconds=600), "c" * 26, "disk-full", [], None)
    reported = stats_facts(incident.state)
    assert reported.source == PROD
    assert reported.first_alert_to_channel_seconds == 8
    # Continue-as-new carries the moment the channel was made.
    carried = IncidentState.model_validate_json(incident.state.model_dump_json())
    assert carried.channel_created_at == T0 + timedelta(seconds=7, milliseconds=600)
    assert stats_facts(carried) == reported

    by_hand = started(None)
    by_hand.channel_ready(T0 + timedelta(seconds=3), "d" * 26, "disk-full", [], None)
    assert (stats_facts(by_hand.state).source, stats_facts(by_hand.state).first_alert_to_channel_seconds) == (
        None,
        None,
    )
