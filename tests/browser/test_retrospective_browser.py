"""The retrospective's page in the browser: the preview follows the text as it is typed (the
server's rendering, people's HTML as text), saving goes to the next version, and the page fits a
phone, under the pages' CSP."""

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
from tests.integration.test_backstage import make_playbook, start_incident


async def test_the_preview_follows_the_text_and_a_save_makes_the_next_version(browser: Browser, world: World) -> None:
    book = await make_playbook(world, world.alice, retrospective={"due_after": "1d"})
    incident = await start_incident(world, world.alice, book["id"], "Checkout down")
    ended = await world.api(world.alice).post(f"/api/v1/incidents/{incident['id']}/end")
    assert ended.status_code == 200, ended.text
    context, page = await signed_in(browser, world, world.alice, DESKTOP)
    await fits(page, f"{world.stack.api_url}/backstage/incidents/{incident['id']}")
    await page.locator("#retrospective-link").click()
    await expect(page.locator("#retro-preview")).to_contain_text("Retrospective: Checkout down")
    await page.locator("#retro-text").fill("## Cause\n\nThe **certificate** expired <img src=x onerror=alert(1)>")
    await expect(page.locator("#retro-preview")).to_contain_text("The certificate expired")
    await expect(page.locator("#retro-preview h2")).to_have_text(["Cause"])
    await expect(page.locator("#retro-preview strong")).to_have_text("certificate")
    await expect(page.locator("#retro-preview")).to_contain_text("<img src=x onerror=alert(1)>")
    await expect(page.locator("#retro-preview img")).to_have_count(0)
    await page.get_by_role("button", name="Save version 2").click()
    await expect(page.locator(".flash")).to_contain_text("Retrospective saved (version 2).")
    await expect(page.locator("#retro-history")).to_contain_text("Version 2")
    await page.set_viewport_size(PHONE)
    await no_sideways_scroll(page)
    await context.close()
