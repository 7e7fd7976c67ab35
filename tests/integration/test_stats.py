"""`/api/v1/stats`: exact numbers, checked against values computed here independently."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from activities.stats_activities import StatsActivities
from models.common import new_short_id
from models.stats import FactsStatus, IncidentFacts, StatsSlice, StatsWindow, stats_month, stats_workflow_id
from tests.harness import User, World, eventually
from tests.integration.backstage_helpers import sign_in, text
from tests.integration.slash_helpers import settled
from tests.integration.test_alert_intake import make_integration, send, team_admin
from tests.integration.test_incidents_api import playbook, ready, start
from workflows.stats_workflow import IncidentStatsWorkflow

T0 = datetime(2025, 3, 30, 22, 0, tzinfo=UTC)  # two months, several days, a month boundary


def expected(incidents: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The numbers, from first principles (no code shared with the service)."""
    ended = [i for i in incidents if i["ended_at"] is not None]
    ttr = sorted(round((i["ended_at"] - i["started_at"]).total_seconds()) for i in ended)
    per_day: dict[str, list[int]] = {}
    for i in ended:
        per_day.setdefault(i["started_at"].strftime("%Y-%m-%d"), []).append(
            round((i["ended_at"] - i["started_at"]).total_seconds())
        )
    started_per_day: dict[str, int] = {}
    for i in incidents:
        day = i["started_at"].strftime("%Y-%m-%d")
        started_per_day[day] = started_per_day.get(day, 0) + 1
    firsts = [round((i["first"] - i["started_at"]).total_seconds()) for i in incidents if i["first"]]
    ongoing = [i for i in incidents if i["ended_at"] is None]
    n = len(ttr)
    median = None if not n else (ttr[n // 2] if n % 2 else (ttr[n // 2 - 1] + ttr[n // 2]) / 2)
    return {
        "total": len(incidents),
        "ongoing": len(ongoing),
        "ended": n,
        "started_per_day": dict(sorted(started_per_day.items())),
        "ttr": {
            "count": n,
            "mean": sum(ttr) / n if n else None,
            "median": median,
            "p90": ttr[math.ceil(0.9 * n) - 1] if n else None,
            "max": ttr[-1] if n else None,
            "per_day_mean": {day: sum(v) / len(v) for day, v in sorted(per_day.items())},
        },
        "first": sum(firsts) / len(firsts) if firsts else None,
        "ongoing_ages": [(now - i["started_at"]).total_seconds() for i in ongoing],
        "participants": len({p for i in incidents for p in i["people"]}),
    }


def check(stats: dict[str, Any], want: dict[str, Any]) -> None:
    assert stats["total"] == want["total"]
    assert stats["ongoing"] == want["ongoing"]
    assert stats["ended"] == want["ended"]
    assert stats["started_per_day"] == want["started_per_day"]
    ttr = stats["time_to_resolution_seconds"]
    for key in ("count", "median", "p90", "max", "per_day_mean"):
        assert ttr[key] == want["ttr"][key], key
    assert ttr["mean"] == want["ttr"]["mean"]
    assert stats["mean_time_to_first_update_seconds"] == want["first"]
    assert stats["participants"] == want["participants"]


async def seed(world: World, incidents: list[dict[str, Any]], *, shard_capacity: int | None = None) -> None:
    """Report known facts through the same activity code the incident workflows use."""
    reporter = StatsActivities(
        world.stack.temporal,
        task_queue=world.stack.settings.temporal_task_queue,
        shard_capacity=shard_capacity or world.stack.settings.stats_shard_capacity,
    )
    for incident in incidents:
        await reporter.report_incident_facts(
            IncidentFacts(
                incident_id=incident["id"],
                team_id=world.team_id,
                playbook_id=incident.get("playbook"),
                status=FactsStatus.ENDED if incident["ended_at"] else FactsStatus.ONGOING,
                started_at=incident["started_at"],
                ended_at=incident["ended_at"],
                time_to_resolution_seconds=round((incident["ended_at"] - incident["started_at"]).total_seconds())
                if incident["ended_at"]
                else None,
                first_status_update_at=incident["first"],
                participant_ids=incident["people"],
                is_public=incident.get("public", True),
            )
        )


def known_incidents(world: World) -> list[dict[str, Any]]:
    people = [world.alice.id, world.bob.id, world.carol.id, world.dave.id]
    durations = [600, 1800, 45, 7200, 3600, 90, 86400, 300, 1250, 17]
    made = []
    for n, seconds in enumerate(durations):
        started = T0 + timedelta(hours=7 * n, seconds=n)
        made.append(
            {
                "id": new_short_id(),
                "started_at": started,
                "ended_at": started + timedelta(seconds=seconds) if n % 4 != 3 else None,
                "first": started + timedelta(seconds=30 + n) if n % 3 else None,
                "people": people[: 1 + n % 4],
                "playbook": "pb-a" if n % 2 else "pb-b",
            }
        )
    return made


async def stats(world: World, user: User, **params: Any) -> dict[str, Any]:
    response = await world.api(user).get("/api/v1/stats", params={"team_id": world.team_id, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_numbers_are_exact_over_windows_and_months(world: World) -> None:
    incidents = known_incidents(world)
    await seed(world, incidents)
    before = datetime.now(UTC)
    everything = await eventually(lambda: stats(world, world.admin), lambda s: s["total"] == len(incidents))
    after = datetime.now(UTC)
    want = expected(incidents, before)
    check(everything, want)
    ages = want["ongoing_ages"]
    low, high = sum(ages) / len(ages), sum(ages) / len(ages) + (after - before).total_seconds()
    assert low <= everything["ongoing_mean_age_seconds"] <= high
    assert set(everything["started_per_day"]) == {i["started_at"].strftime("%Y-%m-%d") for i in incidents}

    since, until = T0 + timedelta(hours=20), T0 + timedelta(days=2)
    window = [i for i in incidents if since <= i["started_at"] < until]
    check(
        await stats(world, world.admin, since=since.isoformat(), until=until.isoformat()),
        expected(window, datetime.now(UTC)),
    )
    april = datetime(2025, 4, 1, tzinfo=UTC)
    check(
        await stats(world, world.admin, since=april.isoformat()),
        expected([i for i in incidents if i["started_at"] >= april], datetime.now(UTC)),
    )
    empty = await stats(world, world.admin, since="2030-01-01T00:00:00Z")
    assert (empty["total"], empty["time_to_resolution_seconds"]["mean"], empty["participants"]) == (0, None, 0)
    reversed_window = await world.api(world.admin).get(
        "/api/v1/stats", params={"team_id": world.team_id, "since": until.isoformat(), "until": since.isoformat()}
    )
    assert reversed_window.status_code == 422


async def test_private_incidents_count_only_for_their_members(world: World) -> None:
    incidents = known_incidents(world)[:4]
    incidents[0]["public"] = False  # alice only
    incidents[1]["public"] = False  # alice and bob
    await seed(world, incidents)
    await eventually(lambda: stats(world, world.admin), lambda s: s["total"] == 4)
    carol = await stats(world, world.carol)
    check(carol, expected(incidents[2:], datetime.now(UTC)))
    bob = await stats(world, world.bob)
    check(bob, expected(incidents[1:], datetime.now(UTC)))
    outsider = await world.api(world.mallory).get("/api/v1/stats", params={"team_id": world.team_id})
    assert outsider.status_code == 404


async def test_real_incidents_feed_the_statistics(world: World) -> None:
    book = await playbook(world, world.alice, member_ids=[world.bob.id])
    api = world.api(world.alice)
    ids = []
    for name in ("One", "Two", "Three"):
        started = await start(world, world.alice, name=name, playbook_id=book["id"])
        await ready(world, world.alice, started["id"])
        ids.append(started["id"])
    blank = await start(world, world.alice, name="Blank")
    await ready(world, world.alice, blank["id"])
    await api.post(f"/api/v1/incidents/{ids[0]}/status-updates", json={"message": "Looking"})
    await api.post(f"/api/v1/incidents/{ids[1]}/members", json={"user_ids": [world.bob.id]})
    for incident_id in ids[:2]:
        assert (await api.post(f"/api/v1/incidents/{incident_id}/end")).status_code == 200
    records = [(await api.get(f"/api/v1/incidents/{i}")).json() for i in [*ids, blank["id"]]]

    def parse(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    known = [
        {
            "started_at": parse(r["started_at"]),
            "ended_at": parse(r["ended_at"]),
            "first": parse(r["status_updates"][0]["at"]) if r["status_updates"] else None,
            "people": r["member_ids"],
        }
        for r in records
    ]
    everything = await eventually(
        lambda: stats(world, world.alice),
        lambda s: (s["total"], s["ended"], s["participants"]) == (4, 2, 2),
        what="the incidents' reports",
    )
    check(everything, expected(known, datetime.now(UTC)))
    only_book = await stats(world, world.alice, playbook_id=book["id"])
    check(only_book, expected(known[:3], datetime.now(UTC)))
    hidden_book = await world.api(world.carol).get(
        "/api/v1/stats", params={"team_id": world.team_id, "playbook_id": book["id"]}
    )
    assert hidden_book.status_code == 404


async def test_a_month_past_one_shard_continues_in_further_shards(world: World) -> None:
    """Shard capacity 2 (production: 10,000): six incidents of one month fill three shards
    (a full shard forwards a new incident's report to the next), re-reports land in the
    shard that holds the incident, and the numbers stay exact."""
    incidents = [i for i in known_incidents(world) if i["started_at"].month == 4]
    assert len(incidents) == 6
    await seed(world, incidents, shard_capacity=2)
    # Every incident reports again (it ended, got members...): nothing is counted twice.
    for incident in incidents:
        incident["people"] = [world.alice.id, world.dave.id]
    await seed(world, incidents, shard_capacity=2)
    # Reports past a full shard are forwarded by the shard itself: wait for the re-reports.
    everything = await eventually(
        lambda: stats(world, world.admin),
        lambda s: (s["total"], s["participants"]) == (len(incidents), 2),
        what="every report, forwarded",
    )
    check(everything, expected(incidents, datetime.now(UTC)))
    month = stats_month(incidents[0]["started_at"])
    shards = math.ceil(len(incidents) / 2)
    sizes: list[StatsSlice | None] = []
    for shard in range(shards + 1):
        handle = world.stack.temporal.get_workflow_handle_for(
            IncidentStatsWorkflow.run, stats_workflow_id(world.team_id, month, shard)
        )
        try:
            description = await handle.describe()
        except RPCError:
            sizes.append(None)
            continue
        assert description.status == WorkflowExecutionStatus.RUNNING
        sizes.append(await handle.query(IncidentStatsWorkflow.slice, StatsWindow()))
    assert [s.total if s else None for s in sizes] == [2, 2, 2, None]


async def test_an_incident_opened_by_an_alert_counts_under_its_integration_with_its_time_to_channel(
    world: World,
) -> None:
    tess = team_admin(world)
    integration = await make_integration(world, tess, "generic")
    opened = await send(world, integration, {"title": "Checkout errors", "group_key": "checkout"})
    assert opened.status_code == 200, opened.text
    incident_id = opened.json()["incident_id"]
    made = await settled(world, incident_id)
    assert made.source is not None
    assert made.channel_created_at is not None
    to_channel = round((made.channel_created_at - made.source.first_alert_at).total_seconds())
    assert 0 <= to_channel < 60
    async with world.api(tess) as api:
        assert (await api.post(f"/api/v1/incidents/{incident_id}/end")).status_code == 200
    by_hand = await start(world, world.alice, name="By hand")  # private: alice's alone
    await ready(world, world.alice, by_hand["id"])

    integration_row = {
        "integration_id": integration["id"],
        "integration_name": "generic prod",
        "kind": "generic",
        "incidents": 1,
    }
    delay = {"count": 1, "median": float(to_channel), "p90": float(to_channel), "max": to_channel}
    everything = await eventually(
        lambda: stats(world, world.admin),
        lambda s: (s["total"], s["ended"]) == (2, 1),
        what="both incidents' reports, the alert's ended",
    )
    assert everything["by_source"] == {"people": 1, "integrations": [integration_row]}
    assert everything["first_alert_to_channel_seconds"] == delay
    # Who may see what stays as it was: the alert's incident is private to its commander (tess).
    tess_sees = await stats(world, tess)
    assert (tess_sees["total"], tess_sees["by_source"]) == (1, {"people": 0, "integrations": [integration_row]})
    assert tess_sees["first_alert_to_channel_seconds"] == delay
    alice_sees = await stats(world, world.alice)
    assert (alice_sees["total"], alice_sees["by_source"]) == (1, {"people": 1, "integrations": []})
    assert alice_sees["first_alert_to_channel_seconds"] == {"count": 0, "median": None, "p90": None, "max": None}

    page = await sign_in(world, tess)
    shown = await page.get(f"/backstage/teams/{world.team_id}/stats")
    assert shown.status_code == 200
    table = text(shown)
    assert "By source" in table
    assert "generic prod" in table
    assert "Generic integration" in table
    assert "over 1 incident opened by alerts" in table
