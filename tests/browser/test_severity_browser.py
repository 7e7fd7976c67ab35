"""Severity in the browser: a team admin renames and recolours the levels on a phone, the incident
page sets an incident's severity and shows it with its level's colour, under the pages' CSP."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.test_backstage_browser import (  # noqa: F401 - the CSP check is an autouse fixture
    DESKTOP,
    PHONE,
    fits,
    no_sideways_scroll,
    nothing_refused_by_the_csp,
    signed_in,
)
from tests.harness import World
from tests.integration.test_alert_intake import team_admin
from tests.integration.test_backstage import make_playbook, start_incident


async def test_a_team_admin_edits_the_levels_on_a_phone_and_the_incident_page_sets_one(
    browser: Browser, world: World
) -> None:
    tess = team_admin(world)
    base = world.stack.api_url
    context, page = await signed_in(browser, world, tess, PHONE)
    await page.get_by_role("link", name="Severity levels").click()
    await expect(page.locator("#severity-levels")).to_contain_text("SEV1")
    await no_sideways_scroll(page)
    await page.locator("#name-0").fill("Critical " + "x" * 20)
    await page.locator("#colour-0").fill("#123456")
    await page.locator("#name-new").fill("Planned")
    await page.get_by_role("button", name="Save levels").click()
    await expect(page.locator(".flash")).to_contain_text("Severity levels saved: Critical")
    await expect(page.locator("#severity-levels")).to_contain_text("Planned")
    await no_sideways_scroll(page)
    colour = await page.locator("#level-1 .severity").evaluate("e => getComputedStyle(e, '::before').backgroundColor")
    assert colour == "rgb(18, 52, 86)", "the level's own colour, from the team's stylesheet"

    book = await make_playbook(world, tess)
    incident = await start_incident(world, tess, book["id"], "Checkout down")
    await page.set_viewport_size(DESKTOP)
    await fits(page, f"{base}/backstage/incidents/{incident['id']}")
    await expect(page.locator("#incident-severity")).to_have_text("None given")
    await page.get_by_label("Severity", exact=True).select_option("2")
    await page.get_by_role("button", name="Set severity").click()
    await expect(page.locator(".flash")).to_contain_text("Severity set to SEV2.")
    await expect(page.locator("#incident-severity")).to_have_text("SEV2")
    await page.set_viewport_size(PHONE)
    await no_sideways_scroll(page)
    await context.close()
