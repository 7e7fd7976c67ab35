"""The list's default order reads about one page from visibility (`newest_incidents`), and
answers exactly what reading every incident answers: same items, same totals, with ended,
restarted, private and time-bounded incidents in the team."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from service import incident_lists
from tests.harness import World, eventually
from tests.integration.test_incidents_api import playbook, ready, start


# 0: ended incidents' runs close at once (a restart starts a new run); 3600 (production's
# kind of window): ended incidents' runs stay open, and a restart reopens the same run.
@pytest.mark.parametrize("reopen_window", [0.0, 3600.0])
async def test_pages_in_the_default_order_equal_the_full_listing(
    world: World, monkeypatch: pytest.MonkeyPatch, reopen_window: float
) -> None:
    # One host, one clock: no allowance, so the listings stop as early as they can here.
    monkeypatch.setattr(incident_lists, "CLOCK_SKEW", timedelta(0))
    monkeypatch.setattr(world.stack.settings, "reopen_window_seconds", reopen_window)
    book = await playbook(world, world.alice, member_ids=[world.bob.id], create_public_incident=True)
    api = world.api(world.alice)
    made = []
    for n in range(7):
        # Every third is private to alice (no playbook: a private channel).
        body: dict[str, Any] = {"name": f"Incident {n}"} | ({} if n % 3 == 2 else {"playbook_id": book["id"]})
        made.append(await start(world, world.alice, **body))
    for incident in made:
        await ready(world, world.alice, incident["id"])
    for incident in (made[1], made[3], made[4]):
        assert (await api.post(f"/api/v1/incidents/{incident['id']}/end")).status_code == 200
    # Restarted once (an ended old run and a running new one), and restarted then ended again.
    for incident in (made[3], made[4]):
        assert (await api.post(f"/api/v1/incidents/{incident['id']}/restart")).status_code == 200
    assert (await api.post(f"/api/v1/incidents/{made[4]['id']}/end")).status_code == 200
    middle = (await api.get(f"/api/v1/incidents/{made[2]['id']}")).json()["started_at"]

    async def listing(user: Any, **params: Any) -> dict[str, Any]:
        response = await world.api(user).get("/api/v1/incidents", params={"team_id": world.team_id, **params})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def full(user: Any, **params: Any) -> list[str]:
        """Every incident, through the path that reads them all (ascending), newest first."""
        body = await listing(user, direction="asc", per_page=200, **params)
        return [i["id"] for i in body["items"]][::-1]

    # Visibility is eventually consistent: wait until the full listing shows the final statuses.
    await eventually(
        lambda: listing(world.alice, status="ended", direction="asc"),
        lambda body: sorted(i["id"] for i in body["items"]) == sorted([made[1]["id"], made[4]["id"]]),
        what="the ended ones listed",
    )
    cases: list[dict[str, Any]] = [{"status": status} for status in ("all", "ongoing", "ended")] + [
        {"started_after": middle},
        {"started_before": middle, "status": "all"},
        {"commander_id": world.alice.id},
    ]
    for user in (world.alice, world.bob):
        for params in cases:
            everything = await full(user, **params)
            for per_page in (1, 2, 3):
                seen: list[str] = []
                for page in range(len(everything) // per_page + 1):
                    body = await listing(user, page=page, per_page=per_page, **params)
                    assert body["total_count"] == len(everything), (user.username, params, body)
                    assert body["has_more"] == ((page + 1) * per_page < len(everything))
                    seen += [i["id"] for i in body["items"]]
                assert seen == everything, (user.username, params, per_page)
    # Bob sees the public ones only; alice all seven, each incident once.
    assert len(await full(world.alice)) == 7
    assert len(await full(world.bob)) == 5


async def test_slash_list_shows_the_newest_and_says_how_many_there_are(world: World) -> None:
    made = [await start(world, world.alice, name=f"Listed {n}") for n in range(4)]
    for incident in made:
        await ready(world, world.alice, incident["id"])
    reply = await eventually(
        lambda: world.slash(world.alice, "list"),
        lambda r: all(f"Listed {n}" in r["text"] for n in range(4)),
        what="all four listed",
    )
    text = reply["text"]
    assert [text.index(f"Listed {n}") for n in (3, 2, 1, 0)] == sorted(text.index(f"Listed {n}") for n in range(4))
    assert "newest" not in text  # all of them fit
