"""Pure helpers: statistics formulas, access rules, signing, channel names, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import permissions
from models.channel_names import channel_name_for
from models.common import Actor
from models.playbook import PlaybookSpec, StageSpec
from models.stats import (
    FactsStatus,
    IncidentFacts,
    StatsShardStart,
    StatsWindow,
    accepts,
    compute,
    median,
    percentile,
    record_facts,
    shard_month,
    slice_of,
    stats_workflow_id,
)
from settings import SettingsError, load_settings
from signing import Signer

A, B = "a" * 26, "b" * 26


def test_median_and_nearest_rank_percentile() -> None:
    assert median([]) is None
    assert median([5]) == 5
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert percentile([], 0.9) is None
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile(list(range(1, 12)), 0.9) == 10
    assert percentile([7], 0.9) == 7


def test_stats_shard_is_idempotent_and_windows_by_start() -> None:
    shard = StatsShardStart(team_id="t", month="2025-01")
    start = datetime(2025, 1, 10, 12, tzinfo=UTC)
    facts = IncidentFacts(
        incident_id="i1",
        team_id="t",
        playbook_id="p",
        status=FactsStatus.ONGOING,
        started_at=start,
        participant_ids=[A],
    )
    record_facts(shard, facts)
    ended = facts.model_copy(
        update={
            "status": FactsStatus.ENDED,
            "ended_at": start + timedelta(minutes=10),
            "time_to_resolution_seconds": 600,
            "participant_ids": [A, B],
        }
    )
    record_facts(shard, ended)
    record_facts(shard, ended)
    assert len(shard.records) == 1
    data = slice_of(shard, StatsWindow())
    stats = compute("t", StatsWindow(), data, start + timedelta(days=1))
    assert (stats.total, stats.ended, stats.ongoing, stats.participants) == (1, 1, 0, 2)
    assert stats.time_to_resolution_seconds.mean == 600
    assert slice_of(shard, StatsWindow(since=start + timedelta(milliseconds=1))).total == 0
    assert slice_of(shard, StatsWindow(since=start)).total == 1
    assert slice_of(shard, StatsWindow(until=start)).total == 0
    assert slice_of(shard, StatsWindow(playbook_id="other")).total == 0
    # Private incidents count only for their participants.
    assert slice_of(shard, StatsWindow(viewer_id="c" * 26)).total == 0
    assert slice_of(shard, StatsWindow(viewer_id=B)).total == 1


def test_incident_membership_reconciles_mattermost_and_the_incident() -> None:
    read_at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    joined = {A: read_at + timedelta(seconds=1)}

    def said(member: bool | None, at: datetime | None = read_at) -> Actor:
        return Actor(user_id=A, is_channel_member=member, observed_at=at)

    # Mattermost says yes: a member.
    assert permissions.is_incident_member(said(True), member_ids=[], joined_at={})
    # Mattermost says no, read before the incident brought them in: the incident knows better.
    assert permissions.is_incident_member(said(False), member_ids=[A], joined_at=joined)
    # Mattermost says no after they joined: removed outside this tool.
    late = read_at + timedelta(seconds=5)
    assert not permissions.is_incident_member(said(False, late), member_ids=[A], joined_at=joined)
    # Mattermost says no while the incident is still inviting them (no join time yet): a member.
    assert permissions.is_incident_member(said(False), member_ids=[A], joined_at={})
    assert not permissions.is_incident_member(said(False), member_ids=[], joined_at={})
    # Mattermost cannot tell (the bot lost access): the incident's member list decides.
    assert permissions.is_incident_member(said(None), member_ids=[A], joined_at={})
    assert not permissions.is_incident_member(said(None), member_ids=[B], joined_at={})


def test_access_rules() -> None:
    outsider = Actor(user_id=B, is_team_member=True)
    stranger = Actor(user_id=B)
    admin = Actor(user_id=B, is_system_admin=True)
    assert permissions.is_system_admin("system_user system_admin")
    assert not permissions.is_system_admin("system_user")
    assert permissions.can_see_incident(outsider, is_member=False, is_public=True)
    assert not permissions.can_see_incident(outsider, is_member=False, is_public=False)
    assert not permissions.can_see_incident(stranger, is_member=False, is_public=True)
    assert permissions.can_see_incident(stranger, is_member=True, is_public=False)
    assert permissions.can_change_incident(stranger, is_member=True)
    assert not permissions.can_change_incident(outsider, is_member=False)
    assert permissions.can_change_incident(admin, is_member=False)
    assert permissions.can_use_playbook(outsider, is_team_member=True, member_ids=[B])
    assert not permissions.can_use_playbook(outsider, is_team_member=False, member_ids=[B])
    assert not permissions.can_create_channel(outsider, public=False, permissions={"create_public_channel"})
    assert permissions.incident_query_filter(admin) == ""
    assert B in permissions.incident_query_filter(outsider)


def test_signed_tokens_cannot_be_forged() -> None:
    signer = Signer("secret")
    token = signer.sign({"incident_id": "x", "n": 1})
    assert signer.verify(token) == {"incident_id": "x", "n": 1}
    body, mac = token.split(".")
    assert signer.verify(f"{body}.{mac[:-1]}A") is None
    assert signer.verify(token + "x") is None
    assert Signer("other").verify(token) is None
    assert signer.verify(None) is None
    assert signer.verify("no-dot") is None
    with pytest.raises(ValueError, match="secret"):
        Signer("")


def test_channel_names_are_valid_and_keep_the_id() -> None:
    name = channel_name_for(incident_id="abcdefghij", name="x" * 200, template="", date="2026-01-01", playbook_title="")
    assert len(name) == 64
    assert name.endswith("-abcdefghij")
    assert channel_name_for(incident_id="abcdefghij", name="  ", template="{id}", date="d", playbook_title="") == (
        "abcdefghij"
    )


def test_playbook_spec_rules() -> None:
    spec = PlaybookSpec(title=" Outage ", checklists=[StageSpec(title="A")], member_ids=[A, A])
    assert spec.title == "Outage"
    assert spec.member_ids == [A]
    with pytest.raises(ValueError, match="same title"):
        PlaybookSpec(title="x", checklists=[StageSpec(title="A"), StageSpec(title="a")])


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "99999")
    with pytest.raises(SettingsError, match="API_PORT"):
        load_settings(_env_file=None)
    monkeypatch.setenv("API_PORT", "8000")
    monkeypatch.setenv("PUBLIC_URL", "ftp://x")
    with pytest.raises(SettingsError, match="PUBLIC_URL"):
        load_settings(_env_file=None)


def test_statistics_shards_fill_in_order_and_keep_their_incidents() -> None:
    shard = StatsShardStart(team_id=A, month="2026-11", capacity=2)
    started = datetime(2026, 11, 3, tzinfo=UTC)

    def facts(incident_id: str) -> IncidentFacts:
        return IncidentFacts(
            incident_id=incident_id, team_id=A, playbook_id=None, status=FactsStatus.ONGOING, started_at=started
        )

    for incident_id in ("one", "two"):
        assert accepts(shard, incident_id)
        record_facts(shard, facts(incident_id))
    assert not accepts(shard, "three")  # full: the next shard takes it
    assert accepts(shard, "one")  # a re-report of an incident it holds stays here
    assert stats_workflow_id(A, "2026-11") == f"incident-stats-{A}-2026-11"
    assert stats_workflow_id(A, "2026-11", 2) == f"incident-stats-{A}-2026-11-2"
    assert shard_month(stats_workflow_id(A, "2026-11")) == "2026-11"
    assert shard_month(stats_workflow_id(A, "2026-11", 12)) == "2026-11"
    assert shard_month("incident-stats-nothing") is None
