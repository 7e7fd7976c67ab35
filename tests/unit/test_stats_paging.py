"""Statistics of paging: time to acknowledge (exact mean, median and nearest-rank p90) and pages
per person, from the incident's paging rules to the computed numbers, without Temporal."""

from __future__ import annotations

import json
import math
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError

from models import incident_commands as cmd
from models.common import UserFact
from models.effects import StatsEffect
from models.incident import IncidentState, IncidentStatus
from models.incident_views import stats_facts
from models.paging import PAGES_KEPT, PageDelivery, PagePost, PageStatus, PagingTally, ScheduleFact
from models.stats import (
    RECORD_FIELDS,
    AcknowledgeStats,
    FactsStatus,
    IncidentFacts,
    PersonPages,
    StatsShardStart,
    StatsSlice,
    StatsWindow,
    compute,
    record_facts,
    slice_of,
)
from tests.unit.test_incident_paging import ALICE, BOB, CAROL, DAVE, T0, TEAM, actor, delivered, incident, policy
from workflows.incident_rules import Incident

EVE = "e" * 26


def stats_effects(made: Incident) -> int:
    return sum(1 for pending in made.state.outbox if isinstance(pending.effect, StatsEffect))


def by_hand(made: Incident, user_id: str, at: timedelta) -> None:
    made.page(cmd.PageSomeone(actor=actor(member=True), target=UserFact(user_id=user_id, username="x")), T0 + at)


def acknowledge(made: Incident, user_id: str, page_index: int, at: timedelta) -> None:
    command = cmd.AcknowledgePage(actor=actor(user_id), page_id=made.state.pages[page_index].id)
    made.check_acknowledge_page(command)
    made.acknowledge_page(command, T0 + at)


def test_an_expired_page_acknowledged_later_is_the_first_acknowledgement_and_every_page_is_counted() -> None:
    made = incident(policy([BOB], [CAROL], ack="30s"))
    assert stats_facts(made.state).time_to_acknowledge_seconds is None  # tier 1 paged, nobody acknowledged
    assert made.state.paging_tally.first_paged_at == T0
    made.state.outbox.clear()
    delivered(made)
    assert made.state.paging_tally.received == {BOB: 1}
    assert stats_effects(made) == 1, "a page that reached someone is reported at once"
    assert made.escalate_if_due(T0 + timedelta(seconds=30))
    delivered(made)
    assert [p.status for p in made.state.pages] == [PageStatus.EXPIRED, PageStatus.OPEN]
    facts = stats_facts(made.state)
    assert (facts.time_to_acknowledge_seconds, facts.pages_by_user) == (None, {BOB: 1, CAROL: 1})
    # Bob answers his expired page late (its buttons still stood): that is the first acknowledgement.
    made.state.outbox.clear()
    acknowledge(made, BOB, 0, timedelta(seconds=42, milliseconds=600))
    assert stats_effects(made) == 1, "an acknowledgement is reported at once"
    assert [p.status for p in made.state.pages] == [PageStatus.ACKNOWLEDGED, PageStatus.EXPIRED]
    # Later pages, acknowledged later, a schedule's page and one that reached nobody change no first.
    by_hand(made, DAVE, timedelta(seconds=100))
    made.page(cmd.PageSomeone(actor=actor(member=True), target=ScheduleFact(schedule_id="s1", name="db")), T0)
    by_hand(made, CAROL, timedelta(seconds=101))
    delivered(made, unreachable=(CAROL,))  # the schedule's page reaches dave, who is on call (`delivered`)
    assert made.state.pages[-1].status == PageStatus.UNREACHABLE
    made.state.outbox.clear()
    acknowledge(made, DAVE, 2, timedelta(seconds=130))
    facts = stats_facts(made.state)
    assert facts.time_to_acknowledge_seconds == 43  # rounded: 42.6 s
    assert facts.pages_by_user == {BOB: 1, CAROL: 1, DAVE: 2}
    assert facts.acknowledged_by_user == {BOB: 1, DAVE: 1}
    assert made.state.paging_tally == PagingTally.of(made.state.pages)
    # Continue-as-new carries the tally; a state from before it tallies the pages it kept.
    carried = IncidentState.model_validate_json(made.state.model_dump_json())
    assert stats_facts(carried) == facts
    older = json.loads(made.state.model_dump_json(exclude={"paging_tally"}))
    assert stats_facts(IncidentState.model_validate(older)) == facts
    # The end reports them too (a paged incident that nobody acknowledged: None).
    made.end(cmd.EndIncident(actor=actor(member=True)), T0 + timedelta(minutes=5))
    assert stats_facts(made.state).time_to_acknowledge_seconds == 43
    nobody = incident(policy([BOB], ack="30s"))
    delivered(nobody)
    assert (stats_facts(nobody.state).time_to_acknowledge_seconds, stats_facts(nobody.state).pages_by_user) == (
        None,
        {BOB: 1},
    )
    unpaged = incident()
    assert stats_facts(unpaged.state).time_to_acknowledge_seconds is None
    assert (stats_facts(unpaged.state).pages_by_user, stats_facts(unpaged.state).acknowledged_by_user) == ({}, {})


def test_the_figures_stay_exact_beyond_the_pages_kept() -> None:
    made = incident()
    total = PAGES_KEPT + 50
    for n in range(total):
        by_hand(made, BOB if n % 2 else CAROL, timedelta(seconds=10 + n))
        delivered(made)
    acknowledge(made, BOB, -1, timedelta(seconds=10 + total + 5))
    assert len(made.state.pages) == PAGES_KEPT
    facts = stats_facts(made.state)
    # From the very first page (at +10 s, no longer kept) to the acknowledgement.
    assert facts.time_to_acknowledge_seconds == total + 5
    assert facts.pages_by_user == {CAROL: total // 2, BOB: total // 2}
    assert facts.acknowledged_by_user == {BOB: 1}
    # What the kept pages alone would say is short of it.
    assert PagingTally.of(made.state.pages).received == {CAROL: PAGES_KEPT // 2, BOB: PAGES_KEPT // 2}


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["ack", "decline", "deadline", "deliver", "unreachable", "page", "end", "restart"]),
        st.sampled_from([BOB, CAROL, DAVE]),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(EVENTS)
def test_the_tally_kept_as_pages_go_is_the_tally_of_the_pages(events: list[tuple[str, str]]) -> None:
    """Under the pages kept, the counters the rules maintain are exactly what the pages say."""
    made = incident(policy([BOB], [CAROL, DAVE], ack="10s", repeat=1))
    now = T0
    for kind, who in events:
        now += timedelta(seconds=3)
        ongoing = made.state.status == IncidentStatus.ONGOING
        if kind == "deadline":
            now += timedelta(seconds=10)
            made.escalate_if_due(now)
        elif kind == "deliver":
            delivered(made)
        elif kind == "unreachable":
            delivered(made, unreachable=(who,))
        elif kind == "page" and ongoing:
            made.page(cmd.PageSomeone(actor=actor(member=True), target=UserFact(user_id=who, username="x")), now)
        elif kind == "end" and ongoing:
            made.end(cmd.EndIncident(actor=actor(member=True)), now)
        elif kind == "restart" and not ongoing:
            made.restart(cmd.RestartIncident(actor=actor(member=True)), now)
        elif kind in ("ack", "decline"):
            page = next((p for p in reversed(made.state.pages) if who in p.user_ids), None)
            if page is None:
                continue
            try:
                if kind == "ack":
                    made.check_acknowledge_page(cmd.AcknowledgePage(actor=actor(who), page_id=page.id))
                    made.acknowledge_page(cmd.AcknowledgePage(actor=actor(who), page_id=page.id), now)
                else:
                    made.check_decline_page(cmd.DeclinePage(actor=actor(who), page_id=page.id))
                    made.decline_page(cmd.DeclinePage(actor=actor(who), page_id=page.id), now)
            except ApplicationError:
                continue
        assert made.state.paging_tally == PagingTally.of(made.state.pages)
        ack_s = stats_facts(made.state).time_to_acknowledge_seconds
        assert ack_s is None or ack_s >= 0


# ----------------------------------------------------------------------------- records and numbers


def paged_facts(
    n: int,
    to_ack: int | None,
    pages: dict[str, int],
    acks: dict[str, int] | None = None,
    *,
    public: bool = True,
    people: list[str] | None = None,
) -> IncidentFacts:
    return IncidentFacts(
        incident_id=f"inc{n}",
        team_id=TEAM,
        playbook_id=None,
        status=FactsStatus.ONGOING,
        started_at=T0 + timedelta(hours=n),
        participant_ids=people or [ALICE],
        is_public=public,
        time_to_acknowledge_seconds=to_ack,
        pages_by_user=pages,
        acknowledged_by_user=acks or {},
    )


def shard_of(*reports: IncidentFacts) -> StatsShardStart:
    shard = StatsShardStart(team_id=TEAM, month="2026-01")
    for report in reports:
        record_facts(shard, report)
    return shard


def test_records_carry_time_to_acknowledge_and_pages_per_person_and_round_trip() -> None:
    shard = shard_of(
        paged_facts(0, 40, {BOB: 2, CAROL: 1}, {BOB: 1}),
        paged_facts(1, None, {CAROL: 3}),
        paged_facts(2, None, {}),
        paged_facts(3, 7, {DAVE: 1}, {DAVE: 1, EVE: 1}),  # eve acknowledged a page that had not reached her
    )
    assert all(len(record) == RECORD_FIELDS == 13 for record in shard.records.values())
    users = shard.users
    assert shard.records["inc0"][9:11] == [40, [[users.index(BOB), 2, 1], [users.index(CAROL), 1, 0]]]
    assert shard.records["inc2"][9:11] == [None, []]
    # Reported again (acknowledged since): replaced, not added.
    record_facts(shard, paged_facts(1, 90, {CAROL: 3}, {CAROL: 1}))
    data = slice_of(shard, StatsWindow())
    assert sorted(data.time_to_acknowledge) == [7, 40, 90]
    assert data.pages_received == {BOB: 2, CAROL: 4, DAVE: 1}
    assert data.pages_acknowledged == {BOB: 1, CAROL: 1, DAVE: 1, EVE: 1}
    again = StatsShardStart.model_validate_json(shard.model_dump_json())
    assert again.records == shard.records
    assert slice_of(again, StatsWindow()) == data
    # The slice travels as the query's answer.
    assert StatsSlice.model_validate_json(data.model_dump_json()) == data


def test_records_of_nine_and_seven_fields_still_load_as_paging_nobody() -> None:
    old_shard = {
        "team_id": TEAM,
        "month": "2026-01",
        "users": [ALICE],
        "playbooks": [],
        "records": {
            "seven": [-1, 1_767_603_600_000, None, None, None, [0], 1],
            "nine": [-1, 1_767_607_200_000, None, None, None, [0], 1, -1, None],
            "nine-too": [-1, 1_767_610_800_000, None, None, None, [0], 1, -1, None],
        },
    }
    shard = StatsShardStart.model_validate_json(json.dumps(old_shard))
    assert shard.records["seven"][7:] == [-1, None, None, [], None, []]
    assert shard.records["nine"][9:] == [None, [], None, []]
    assert shard.records["nine"][10] is not shard.records["nine-too"][10]
    record_facts(shard, paged_facts(5, 12, {BOB: 1}, {BOB: 1}))
    stats = compute(TEAM, StatsWindow(), slice_of(shard, StatsWindow()), T0 + timedelta(days=1))
    assert stats.total == 4
    assert stats.time_to_acknowledge_seconds == AcknowledgeStats(count=1, mean=12, median=12, p90=12, max=12)
    assert stats.pages_per_person == [PersonPages(user_id=BOB, pages=1, acknowledged=1)]
    old_facts = paged_facts(0, None, {}).model_dump(
        mode="json", exclude={"time_to_acknowledge_seconds", "pages_by_user", "acknowledged_by_user"}
    )
    assert IncidentFacts.model_validate(old_facts).pages_by_user == {}


def test_slices_merge_and_the_numbers_are_exact() -> None:
    delays = [30, 5, 12, 7, 100, 45, 9, 60, 21, 14, 3]  # eleven: an odd count
    first = shard_of(*(paged_facts(n, d, {BOB: 1}, {BOB: 1}) for n, d in enumerate(delays[:6])))
    second = shard_of(
        *(paged_facts(n + 10, d, {CAROL: 2, BOB: 1}, {CAROL: 1}) for n, d in enumerate(delays[6:])),
        paged_facts(30, None, {DAVE: 6}),
        paged_facts(31, None, {EVE: 1}, {EVE: 1}),
        paged_facts(32, None, {}),
    )
    merged = slice_of(first, StatsWindow()).merge(slice_of(second, StatsWindow()))
    assert sorted(merged.time_to_acknowledge) == sorted(delays)
    assert merged.pages_received == {BOB: 11, CAROL: 10, DAVE: 6, EVE: 1}
    stats = compute(TEAM, StatsWindow(), merged, T0 + timedelta(days=3))
    ordered = sorted(delays)
    ack = stats.time_to_acknowledge_seconds
    assert ack.count == 11
    assert ack.mean == sum(delays) / 11 == 306 / 11
    assert ack.median == ordered[5] == 14
    assert ack.p90 == ordered[math.ceil(0.9 * 11) - 1] == 60  # nearest rank: the 10th of 11
    assert ack.max == 100
    # Most paged first, then the most acknowledged, then by id.
    assert stats.pages_per_person == [
        PersonPages(user_id=BOB, pages=11, acknowledged=6),
        PersonPages(user_id=CAROL, pages=10, acknowledged=5),
        PersonPages(user_id=DAVE, pages=6, acknowledged=0),
        PersonPages(user_id=EVE, pages=1, acknowledged=1),
    ]
    # An even count: the median is the mean of the two middle values.
    even = compute(TEAM, StatsWindow(), slice_of(first, StatsWindow()), T0)
    assert even.time_to_acknowledge_seconds.median == (sorted(delays[:6])[2] + sorted(delays[:6])[3]) / 2 == 21
    assert even.time_to_acknowledge_seconds.p90 == 100  # the 6th of 6
    # Nothing paged: empty, not zero.
    empty = compute(TEAM, StatsWindow(), StatsSlice(), T0)
    assert empty.time_to_acknowledge_seconds == AcknowledgeStats(count=0, mean=None, median=None, p90=None, max=None)
    assert empty.pages_per_person == []
    body = json.loads(stats.model_dump_json())
    assert body["time_to_acknowledge_seconds"] == {
        "count": 11,
        "mean": 306 / 11,
        "median": 14.0,
        "p90": 60.0,
        "max": 100,
    }
    assert body["pages_per_person"][0] == {"user_id": BOB, "pages": 11, "acknowledged": 6}


def test_private_incidents_count_only_for_the_people_in_them() -> None:
    shard = shard_of(
        paged_facts(0, 10, {BOB: 1}, {BOB: 1}),
        # Private to alice and carol; bob was paged in it but is not in it: it is not his to count.
        paged_facts(1, 20, {BOB: 2, CAROL: 1}, {CAROL: 1}, public=False, people=[ALICE, CAROL]),
    )
    bob = compute(TEAM, StatsWindow(), slice_of(shard, StatsWindow(viewer_id=BOB)), T0)
    assert (bob.total, bob.time_to_acknowledge_seconds.count, bob.time_to_acknowledge_seconds.mean) == (1, 1, 10)
    assert bob.pages_per_person == [PersonPages(user_id=BOB, pages=1, acknowledged=1)]
    carol = compute(TEAM, StatsWindow(), slice_of(shard, StatsWindow(viewer_id=CAROL)), T0)
    assert (carol.total, carol.time_to_acknowledge_seconds.mean) == (2, 15)
    assert carol.pages_per_person == [
        PersonPages(user_id=BOB, pages=3, acknowledged=1),
        PersonPages(user_id=CAROL, pages=1, acknowledged=1),
    ]
    window = compute(TEAM, StatsWindow(), slice_of(shard, StatsWindow(since=T0 + timedelta(hours=1))), T0)
    assert (window.time_to_acknowledge_seconds.count, len(window.pages_per_person)) == (1, 2)


def test_a_delivery_reaching_nobody_is_not_counted_nor_reported_and_a_page_counts_once() -> None:
    made = incident(policy([BOB], ack="30s"))
    made.state.outbox.clear()
    made.page_delivered(made.state.pages[0].id, PageDelivery(problems=["@bob is deactivated"]), T0)
    assert made.state.paging_tally.received == {}
    assert stats_effects(made) == 0
    again = incident(policy([BOB], ack="30s"))
    post = PagePost(user_id=BOB, channel_id="dm", post_id="p1")
    page_id = again.state.pages[0].id
    again.page_delivered(page_id, PageDelivery(posts=[post, post]), T0)
    # Told twice (the paging lane does not: it sends only unsent pages): counted once.
    again.page_delivered(page_id, PageDelivery(posts=[post]), T0)
    assert again.state.paging_tally.received == {BOB: 1}
