"""Paging's statistics on the real stack: time to acknowledge and pages per person, from pages
sent by an escalation and by hand and acknowledged in the direct message, to `GET /api/v1/stats`
(exact, for each viewer) and the backstage dashboard."""

from __future__ import annotations

import re
from typing import Any

from models.incident import IncidentState
from models.paging import PageStatus
from tests.harness import World, eventually
from tests.integration.backstage_helpers import sign_in, text
from tests.integration.incident_helpers import fact, playbook, start
from tests.integration.slash_helpers import click, control
from tests.integration.test_paging import paged, policy, until
from tests.integration.test_stats import stats
from workflows.incident_messages import format_duration


def acknowledged_after(current: IncidentState) -> int:
    """Whole seconds from the incident's first page to its first acknowledgement, from the pages."""
    first_page = min(p.paged_at for p in current.pages)
    first_ack = min(p.acted_at for p in current.pages if p.status == PageStatus.ACKNOWLEDGED and p.acted_at)
    return round((first_ack - first_page).total_seconds())


def people(body: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(p["user_id"], p["pages"], p["acknowledged"]) for p in body["pages_per_person"]]


def tile(page: str, name: str) -> str:
    found = re.search(rf'id="{name}">([^<]*)<', page)
    assert found, name
    return found.group(1)


async def test_time_to_acknowledge_and_pages_per_person_are_exact_while_incidents_are_ongoing(world: World) -> None:
    alice, bob, carol, dave = world.alice, world.bob, world.carol, world.dave
    # One: the escalation pages bob, nobody answers within 5 s, carol is paged and acknowledges.
    escalated = await start(world, book=playbook(world, escalation=policy([bob], [carol], ack="5s")))
    await paged(world, bob)
    carols = await paged(world, carol)
    await click(world, carol, carols["id"], control(carols, "Acknowledge"))
    one = await until(escalated, lambda s: carol.id in s.member_ids and not s.outbox, "carol acknowledged")
    # Two: bob, already in the incident, is paged by hand and acknowledges (no one joins: only the
    # acknowledgement itself reports to the statistics).
    by_hand = await start(world, book=playbook(world), invited=[fact(bob, member=False)], name="Replica lag")
    ready = await until(by_hand, lambda s: bob.id in s.member_ids and not s.outbox, "bob in the channel")
    async with world.api(alice) as api:
        made = await api.post(f"/api/v1/incidents/{ready.id}/pages", json={"user_id": bob.id, "reason": "lag"})
        assert made.status_code == 200, made.text
    bobs = await paged(world, bob, count=2)
    await click(world, bob, bobs["id"], control(bobs, "Acknowledge"))
    two = await until(
        by_hand, lambda s: s.paging_tally.first_acknowledged_at is not None and not s.outbox, "bob acknowledged"
    )

    assert [p.status for p in one.pages] == [PageStatus.EXPIRED, PageStatus.ACKNOWLEDGED]
    assert one.paging_tally.first_paged_at == one.pages[0].paged_at
    assert one.paging_tally.first_acknowledged_at == one.pages[1].acted_at
    first, second = acknowledged_after(one), acknowledged_after(two)
    assert 5 <= first < 60, "carol was paged once bob's 5 s had passed"
    assert 0 <= second < 60
    slow = max(first, second)
    everyone = {
        "count": 2,
        "mean": (first + second) / 2,
        "median": (first + second) / 2,
        "p90": float(slow),  # nearest rank: the 2nd of 2
        "max": slow,
    }
    # Both incidents are ongoing: what they reported as pages went out and were acknowledged.
    seen = await eventually(
        lambda: stats(world, world.admin),
        lambda s: s["time_to_acknowledge_seconds"]["count"] == 2 and len(s["pages_per_person"]) == 2,
        what="both acknowledgements reported",
    )
    assert (seen["total"], seen["ongoing"]) == (2, 2)
    assert seen["time_to_acknowledge_seconds"] == everyone
    assert people(seen) == [(bob.id, 2, 1), (carol.id, 1, 1)]
    alice_sees = await stats(world, alice)  # in both
    assert (alice_sees["time_to_acknowledge_seconds"], people(alice_sees)) == (everyone, people(seen))

    # Both incidents are private: each person counts only the ones they are in.
    bob_sees = await stats(world, bob)  # the second only (paged in the first, but not in it)
    assert bob_sees["time_to_acknowledge_seconds"] == {
        "count": 1,
        "mean": float(second),
        "median": float(second),
        "p90": float(second),
        "max": second,
    }
    assert people(bob_sees) == [(bob.id, 1, 1)]
    carol_sees = await stats(world, carol)  # the first only
    assert carol_sees["time_to_acknowledge_seconds"]["mean"] == first
    assert people(carol_sees) == [(carol.id, 1, 1), (bob.id, 1, 0)]
    dave_sees = await stats(world, dave)
    assert dave_sees["time_to_acknowledge_seconds"] == {
        "count": 0,
        "mean": None,
        "median": None,
        "p90": None,
        "max": None,
    }
    assert dave_sees["pages_per_person"] == []

    # The dashboard shows the same numbers, and the people by name.
    page = await sign_in(world, alice)
    shown = await page.get(f"/backstage/teams/{world.team_id}/stats")
    assert shown.status_code == 200
    assert tile(shown.text, "tile-ack-mean") == format_duration((first + second) / 2)
    assert tile(shown.text, "tile-ack-median") == format_duration((first + second) / 2)
    assert tile(shown.text, "tile-ack-p90") == format_duration(slow)
    words = text(shown)
    assert "Pages per person" in words
    assert f"Person Pages Acknowledged @{bob.username} 2 1 @{carol.username} 1 1" in words
    assert (
        f"mean {format_duration((first + second) / 2)}, median {format_duration((first + second) / 2)}, "
        f"p90 {format_duration(slow)}, longest {format_duration(slow)}, over 2 incidents acknowledged" in words
    )
    nobody = await sign_in(world, dave)
    empty = text(await nobody.get(f"/backstage/teams/{world.team_id}/stats"))
    assert "Nobody acknowledged a page in this window's incidents." in empty
    assert "No pages reached anyone in this window's incidents." in empty
