"""The incident as it stood at any moment, in a real browser: the as-of page's slider, moved with
the keyboard, by setting its value and by dragging it on a phone, shows each recorded change from
the moment it was made and not a second before; the typed moment (UTC) shows the same; someone
who may not see the private incident gets the page an unknown id gets; under the pages' CSP."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
from playwright.async_api import Browser, Page, expect

from tests.browser.test_backstage_browser import (  # noqa: F401 - the CSP check is an autouse fixture
    DESKTOP,
    PHONE,
    no_sideways_scroll,
    nothing_refused_by_the_csp,
    signed_in,
)
from tests.harness import World, eventually
from tests.integration.test_backstage import make_playbook, start_incident

UPDATE = "Failing over to the replica in eu-west-1"


@dataclass(frozen=True)
class Change:
    """A recorded change: when the incident took it, the slider's last offset (whole seconds after
    the start) before it and its first offset after it, and the last whole UTC second before it."""

    at: datetime
    before: int
    after: int
    second_before: datetime


async def _clock() -> datetime:
    return datetime.now(UTC)


async def _made(
    api: httpx.AsyncClient, url: str, started: datetime, send: Callable[[], Awaitable[httpx.Response]], kind: str
) -> Change:
    """Make one change, then wait until the clock is past both the slider's second and the UTC
    second it fell in, so the next change falls in later ones (no two share a moment anyone can pick)."""
    answer = await send()
    assert answer.status_code == 200, answer.text
    record = (await api.get(url)).json()
    at = max(datetime.fromisoformat(e["at"]) for e in record["timeline"] if e["type"] == kind)
    offset = (at - started).total_seconds()
    whole = at.replace(microsecond=0)
    change = Change(
        at=at,
        before=math.ceil(offset) - 1,
        after=math.ceil(offset),
        second_before=(at - timedelta(microseconds=1)).replace(microsecond=0),
    )
    boundary = max(started + timedelta(seconds=change.after), whole + timedelta(seconds=1))
    await eventually(_clock, lambda now: now > boundary, timeout=3, what=f"the second after the {kind}")
    return change


async def _shows(page: Page, world: World, changes: int, *, at: datetime | None = None) -> None:
    """The page shows the incident with its first `changes` changes made (at `at`, when known):
    an item checked, a status update, bob the commander, the next stage."""
    if at is not None:  # the page of that moment, not the one before it
        await expect(page.locator("#as-of-banner time")).to_have_attribute("datetime", at.isoformat())
    await expect(page.locator("#item-0-0 .check")).to_have_attribute("aria-label", "done" if changes >= 1 else "open")
    await expect(page.locator("#last-update")).to_contain_text(UPDATE if changes >= 2 else "No status update yet.")
    commander = world.bob if changes >= 3 else world.alice
    await expect(page.locator("#incident-commander")).to_have_text(f"@{commander.username}")
    stage = "2 of 2: Mitigate" if changes >= 4 else "1 of 2: Triage"
    await expect(page.locator("#incident-stage")).to_have_text(stage)
    # Read-only: no form that changes the incident.
    await expect(page.locator("form.command")).to_have_count(0)


async def test_the_slider_shows_each_change_from_its_moment_on_and_hides_the_incident_from_others(
    browser: Browser, world: World
) -> None:
    book = await make_playbook(world, world.alice)  # private incidents: only their members see them
    incident = await start_incident(world, world.alice, book["id"], "Checkout down after the deploy")
    incident_id = incident["id"]
    started = datetime.fromisoformat(incident["started_at"])
    api = world.api(world.alice)
    base = f"/api/v1/incidents/{incident_id}"
    invited = await api.post(f"{base}/members", json={"user_ids": [world.bob.id]})
    assert invited.status_code == 200, invited.text
    await eventually(
        lambda: api.get(base), lambda r: world.bob.id in r.json()["member_ids"], what="bob in the incident"
    )
    made_in_turn: list[tuple[Callable[[], Awaitable[httpx.Response]], str]] = [
        (lambda: api.put(f"{base}/checklists/0/items/0/state", json={"state": "done"}), "item_state_changed"),
        (lambda: api.post(f"{base}/status-updates", json={"status": "identified", "message": UPDATE}), "status_update"),
        (lambda: api.post(f"{base}/commander", json={"user_id": world.bob.id}), "commander_changed"),
        (lambda: api.post(f"{base}/stage", json={"direction": "next", "force": True}), "stage_changed"),
    ]
    changes = [await _made(api, base, started, send, kind) for send, kind in made_in_turn]
    for earlier, later in pairwise(changes):
        assert earlier.after <= later.before, "each change in a second of the slider's own"
        assert earlier.at <= later.second_before, "each change in a UTC second of its own"

    # From the incident's page to its latest moment: every change made, the slider at its end.
    context, page = await signed_in(browser, world, world.alice, DESKTOP)
    await page.goto(f"{world.stack.api_url}/backstage/incidents/{incident_id}")
    await page.get_by_role("link", name="See it as it stood at any moment").click()
    await expect(page.locator("#as-of-banner")).to_contain_text("As it stood at")
    await _shows(page, world, 4)
    slider = page.get_by_role("slider", name=re.compile("^Move through the incident"))
    assert await slider.get_attribute("max") == await slider.input_value()
    assert int(await slider.input_value()) >= changes[-1].after

    # Home: its start, nothing done yet.
    await slider.press("Home")
    await page.wait_for_url(re.compile(r"/as-of\?offset=0$"))
    await _shows(page, world, 0, at=started)
    # The moment it names, sent as the page filled it in (to the second): still the start.
    await page.get_by_role("button", name="Show", exact=True).click()
    await page.wait_for_url(re.compile(r"/as-of\?at="))
    await _shows(page, world, 0, at=started)

    # Each change: the second before it (the slider set there), then one step right (the key).
    for made, change in enumerate(changes, start=1):
        if await slider.input_value() != str(change.before):
            await slider.fill(str(change.before))
            await page.wait_for_url(re.compile(rf"/as-of\?offset={change.before}$"))
        await _shows(page, world, made - 1, at=started + timedelta(seconds=change.before))
        await expect(slider).to_have_value(str(change.before))
        await slider.press("ArrowRight")
        await page.wait_for_url(re.compile(rf"/as-of\?offset={change.after}$"))
        await _shows(page, world, made, at=started + timedelta(seconds=change.after))
        await expect(slider).to_have_value(str(change.after))

    # A moment typed in UTC: the last second before the status update, then the one it fell in.
    moment = page.get_by_label("Or a moment (UTC)")
    for second, made in ((changes[1].second_before, 1), (changes[1].second_before + timedelta(seconds=1), 2)):
        await moment.fill(second.strftime("%Y-%m-%dT%H:%M:%S"))
        await page.get_by_role("button", name="Show", exact=True).click()
        await _shows(page, world, made, at=second)

    # On a phone: the page fits, and dragging the slider to its start says the moment while it
    # moves, then shows it once let go.
    await page.set_viewport_size(PHONE)
    await page.goto(f"{world.stack.api_url}/backstage/incidents/{incident_id}/as-of")
    await _shows(page, world, 4)
    await no_sideways_scroll(page)
    await slider.scroll_into_view_if_needed()
    box = await slider.bounding_box()
    assert box is not None
    middle = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] - 2, middle)
    await page.mouse.down()
    await page.mouse.move(box["x"] + 1, middle, steps=5)
    await expect(slider).to_have_value("0")
    await expect(page.locator("#as-of-chosen")).to_have_text(started.strftime("%Y-%m-%d %H:%M:%S") + " UTC")
    await page.mouse.up()
    await page.wait_for_url(re.compile(r"/as-of\?offset=0$"))
    await _shows(page, world, 0, at=started)
    await no_sideways_scroll(page)
    await context.close()

    # Carol is in the team but not in the private incident: its past is "not found", the very page
    # an id that names no incident gets.
    context, page = await signed_in(browser, world, world.carol, DESKTOP)
    hidden = await page.goto(f"{world.stack.api_url}/backstage/incidents/{incident_id}/as-of?offset=1")
    assert hidden is not None
    hidden_text = await page.locator("main").inner_text()
    hidden_title = await page.title()
    unknown = await page.goto(f"{world.stack.api_url}/backstage/incidents/zzzzzzzzzz/as-of?offset=1")
    assert unknown is not None
    assert hidden.status == unknown.status == 404
    assert await page.locator("main").inner_text() == hidden_text
    assert await page.title() == hidden_title
    assert "Checkout down" not in hidden_text
    await context.close()
