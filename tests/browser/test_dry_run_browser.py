"""The playbook editor's *Try against past incidents* in a real browser, on a phone: the draft as
edited is tried, the report shows above the editor and fits the screen, nothing is saved; under
the pages' CSP."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.test_backstage_browser import (  # noqa: F401 - the CSP check is an autouse fixture
    PHONE,
    no_sideways_scroll,
    nothing_refused_by_the_csp,
    signed_in,
)
from tests.harness import World, eventually
from tests.integration.test_backstage import make_playbook, start_incident


async def test_the_draft_is_tried_against_an_ended_incident_and_the_report_fits_a_phone(
    browser: Browser, world: World
) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Checkout down in every region after the deploy")
    api = world.api(world.alice)
    moved = await api.post(f"/api/v1/incidents/{incident['id']}/stage", json={"direction": "next", "force": True})
    assert moved.status_code == 200, moved.text
    ended = await api.post(f"/api/v1/incidents/{incident['id']}/end")
    assert ended.status_code == 200, ended.text
    spec = {name: book[name] for name in ("title", "checklists", "member_ids")}
    await eventually(
        lambda: api.post(f"/api/v1/playbooks/{book['id']}/dry-run", json={"spec": spec}),
        lambda r: len(r.json().get("incidents", [])) == 1,
        what="the ended incident listed",
    )

    context, page = await signed_in(browser, world, world.alice, PHONE)
    await page.goto(f"{world.stack.api_url}/backstage/playbooks/{book['id']}")
    # Mitigate renamed: the move to it still happens ("next"), but the stage the incident
    # reached is another one; nothing refused, and the report says what differs.
    await page.locator('[id="checklists[1].title"]').fill("Recover")
    await page.get_by_label("the last").fill("3")
    await page.get_by_role("button", name="Try against past incidents").click()
    report = page.locator("#dry-run-report")
    await expect(report).to_contain_text("This draft against the last 3 ended incident(s)")
    await expect(report).to_contain_text("Checkout down in every region after the deploy")
    await expect(report).to_contain_text("Steps never done")
    await expect(page.locator('[id="checklists[1].title"]')).to_have_value("Recover")
    await no_sideways_scroll(page)
    saved = (await api.get(f"/api/v1/playbooks/{book['id']}")).json()
    assert saved["version"] == 1
    assert saved["checklists"][1]["title"] == "Mitigate"
    await context.close()
