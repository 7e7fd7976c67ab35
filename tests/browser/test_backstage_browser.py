"""The backstage in a real browser, signed in through the stand-in's OAuth consent page.

With BACKSTAGE_SCREENSHOTS=1 the pages are also saved to docs/screenshots/ (1280 px and
390 px wide), the pictures the README shows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.harness import User, World, eventually
from tests.integration.test_backstage import make_playbook, start_incident

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TAKE_SHOTS = os.environ.get("BACKSTAGE_SCREENSHOTS") == "1"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# What sticks out, to say why a page scrolls sideways.
WIDEST = """Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(e => !e.closest('.table-wrap'))
  .slice(0, 5)
  .map(e => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)"""
# What Chromium reported blocking under the backstage's Content-Security-Policy, in this test.
CSP_REFUSALS: list[str] = []


@pytest.fixture(autouse=True)
def nothing_refused_by_the_csp() -> Iterator[None]:
    """Every page works under its CSP (no script or style of its own is blocked)."""
    CSP_REFUSALS.clear()
    yield
    assert CSP_REFUSALS == [], CSP_REFUSALS


async def signed_in(browser: Browser, world: World, user: User, viewport: ViewportSize) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    page.on("console", lambda m: CSP_REFUSALS.append(m.text) if "Content Security Policy" in m.text else None)
    page.set_default_timeout(15_000)
    await page.goto(f"{world.stack.api_url}/backstage")
    await page.get_by_role("link", name="Sign in with Mattermost").click()
    # The stand-in's consent page (Mattermost's /oauth/authorize).
    await expect(page.get_by_role("heading", name="Authorize Incident backstage")).to_be_visible()
    await page.get_by_label("Sign in to the stand-in as (username)").fill(user.username)
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(f"**/backstage/teams/{world.team_id}/incidents")
    return context, page


async def no_sideways_scroll(page: Page) -> None:
    """The page fits the screen once its layout settles (charts resize on the browser's
    ResizeObserver, a frame or two after the viewport changes)."""

    async def overflow() -> int:
        return int(await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))

    try:
        await eventually(overflow, lambda wider: wider <= 0, timeout=5, what="the page to fit the screen")
    except AssertionError:
        widest = await page.evaluate(WIDEST)
        wider = await overflow()
        raise AssertionError(f"the page is {wider}px wider than the screen at {page.viewport_size}: {widest}") from None


async def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    if TAKE_SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


async def test_sign_in_list_incident_live_changes_playbook_error_and_dashboard(browser: Browser, world: World) -> None:
    book = await make_playbook(world, world.alice, create_public_incident=True)
    name = "Checkout fails for every customer in the EU region since deploy 4"
    name = (name + " " + "x" * 64)[:64]
    incident = await start_incident(world, world.alice, book["id"], name)
    context, page = await signed_in(browser, world, world.alice, DESKTOP)

    # The list, with the incident's name, status, commander by name and stage.
    row = page.locator("#incident-list tbody tr", has_text=name)
    await eventually(lambda: _reload_until(page, row), what="the incident in the list")
    await expect(row).to_contain_text(f"@{world.alice.username}")
    await expect(row).to_contain_text("Triage")
    await shot(page, "incidents")

    # The incident page: check an item with the keyboard; the change arrives in Mattermost.
    await row.get_by_role("link", name=name).click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()
    await expect(page.locator("#web-ui-link")).to_have_attribute("href", f"{_web_ui(world)}/incident-{incident['id']}")
    check = page.locator("#item-0-0 button.check")
    await check.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#item-0-0 button.check")).to_have_attribute("aria-pressed", "true")
    channel = incident["channel_id"]
    await world.standin.wait_for(
        lambda: any("Page the DBA" in post["message"] for post in world.standin.posts(channel))
    )

    # A change made by a slash command in Mattermost arrives on the open page by itself.
    reply = await world.slash(world.alice, "check 2", channel_id=channel)
    assert "Check replication" in str(reply.get("text", ""))
    await expect(page.locator("#item-0-1 button.check")).to_have_attribute("aria-pressed", "true", timeout=15_000)
    await page.get_by_label("Message").fill("Failing over to the replica.")
    await page.get_by_role("button", name="Post update").click()
    await expect(page.locator("ol.updates")).to_contain_text("Failing over to the replica.")
    await shot(page, "incident")

    # A playbook edit with a wrong slash command shows the API's error at the field.
    await page.goto(f"{world.stack.api_url}/backstage/playbooks/{book['id']}")
    command = page.locator('[id="checklists[1].items[0].command"]')
    await command.fill("db failover")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#error-summary")).to_be_focused()
    await expect(command).to_have_attribute("aria-invalid", "true")
    await expect(page.locator('[id="err-checklists-1-items-0-command"]')).to_contain_text("must be a slash command")
    await shot(page, "playbook-error")

    # The dashboard draws non-empty charts (an ended incident gives time to resolution too).
    ended = await world.api(world.alice).post(f"/api/v1/incidents/{incident['id']}/end")
    assert ended.status_code == 200, ended.text
    await eventually(
        lambda: world.api(world.alice).get("/api/v1/stats", params={"team_id": world.team_id}),
        lambda r: r.json()["ended"] >= 1,
        what="the ended incident counted",
    )
    await page.goto(f"{world.stack.api_url}/backstage/teams/{world.team_id}/stats")
    await expect(page.locator("body")).to_have_attribute("data-charts-ready", "true")
    started = await page.evaluate("Chart.getChart('chart-started').data.datasets[0].data.reduce((a, b) => a + b, 0)")
    assert started >= 1
    status = await page.evaluate("Chart.getChart('chart-status').data.datasets[0].data")
    assert status[1] >= 1
    medians = await page.evaluate("Chart.getChart('chart-ttr').data.datasets[0].data.filter(v => v !== null)")
    assert medians
    await shot(page, "stats")
    await context.close()


async def test_phone_width_long_names_big_playbooks_and_the_keyboard(browser: Browser, world: World) -> None:
    items = [{"title": f"Step {n}: " + "verify the thing " * 3, "command": f"/run step-{n}"} for n in range(200)]
    big = await make_playbook(
        world,
        world.alice,
        title="B" * 64,
        checklists=[{"title": "Everything " + "w" * 100, "items": items}, {"title": "Close", "items": []}],
    )
    incident = await start_incident(world, world.alice, big["id"], "N" * 64)
    context, page = await signed_in(browser, world, world.alice, PHONE)
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    row = page.locator("#incident-list tbody tr", has_text="N" * 64)
    await eventually(lambda: _reload_until(page, row), what="the incident in the list")
    await no_sideways_scroll(page)
    await shot(page, "incidents-phone")
    await page.goto(f"{world.stack.api_url}/backstage/incidents/{incident['id']}")
    await expect(page.locator("#item-0-199")).to_be_attached()
    await no_sideways_scroll(page)
    await shot(page, "incident-phone", full_page=False)  # 200 items: the first screen says enough
    await page.goto(f"{world.stack.api_url}/backstage/playbooks/{big['id']}")
    await expect(page.locator('[id="checklists[0].items[199].title"]')).to_be_attached()
    await no_sideways_scroll(page)
    await page.set_viewport_size(DESKTOP)
    await no_sideways_scroll(page)
    await page.goto(f"{world.stack.api_url}/backstage/incidents/{incident['id']}")
    await no_sideways_scroll(page)
    await page.goto(f"{world.stack.api_url}/backstage/teams/{world.team_id}/stats")
    await page.set_viewport_size(PHONE)
    await no_sideways_scroll(page)
    await shot(page, "stats-phone")
    await context.close()


async def _reload_until(page: Page, row: Any) -> bool:
    await page.reload()
    return bool(await row.count())


def _web_ui(world: World) -> str:
    settings = world.stack.settings
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows"
