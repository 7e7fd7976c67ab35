"""The backstage in a real browser, signed in through the stand-in's OAuth consent page.

With BACKSTAGE_SCREENSHOTS=1 the pages are also saved to docs/screenshots/ (1280 px and
390 px wide), the pictures the README shows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from models.incident_alerts import LINKS_KEPT
from tests.harness import User, World, eventually
from tests.integration.test_alert_intake import team_admin
from tests.integration.test_backstage import make_playbook, start_incident
from tests.integration.test_backstage_escaping import make_hostile

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TAKE_SHOTS = os.environ.get("BACKSTAGE_SCREENSHOTS") == "1"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
NAME = "Checkout fails for every customer in the EU region after deploy"
UPDATE = "Failing over to the replica; follow https://status.example.com/incidents/checkout-eu-region-deploy-4"
# Everything that does not fit: the page wider than the screen, an element sticking out of
# it, or a box whose content scrolls sideways inside it (a wide table in a scrolling wrapper).
SIDEWAYS = """(() => {
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (e.classList.length ? '.' + [...e.classList].join('.') : '');
  const found = [];
  const page = document.documentElement.scrollWidth - window.innerWidth;
  if (page > 0) found.push(`the page is ${page}px wider than the screen`);
  for (const e of document.querySelectorAll('body *')) {
    if (e.closest('.skip')) continue;  // the skip link waits off-screen until focused
    const box = e.getBoundingClientRect();
    if (!box.width && !box.height) continue;  // not rendered (folded, hidden)
    if (box.right > window.innerWidth + 1) found.push(`${name(e)} ends at ${Math.round(box.right)}px`);
    const overflow = getComputedStyle(e).overflowX;
    if ((overflow === 'auto' || overflow === 'scroll') && e.scrollWidth > e.clientWidth + 1)
      found.push(`${name(e)} scrolls sideways: ${e.scrollWidth}px in ${e.clientWidth}px`);
  }
  return found.slice(0, 8);
})()"""
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
    """Nothing on the page scrolls sideways once its layout settles (charts resize on the
    browser's ResizeObserver, a frame or two after the viewport changes)."""

    async def sideways() -> list[str]:
        return list(await page.evaluate(SIDEWAYS))

    try:
        await eventually(sideways, lambda found: not found, timeout=5, what="the page to fit the screen")
    except AssertionError:
        raise AssertionError(f"{page.url} at {page.viewport_size}: {await sideways()}") from None


async def fits(page: Page, url: str, showing: str | None = None) -> None:
    """`url`, opened (once `showing`, a selector, is on the page), fits the screen's width."""
    await page.goto(url)
    if showing:
        await expect(page.locator(showing)).to_be_attached()
    await no_sideways_scroll(page)


async def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """The page as the README shows it: the first screen, or all of it in a window as tall as
    the page (so what sticks to the window's bottom, the editor's Save, is at the bottom)."""
    if not TAKE_SHOTS:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    screen = page.viewport_size
    assert screen is not None
    if full_page:
        height = int(await page.evaluate("document.documentElement.scrollHeight"))
        await page.set_viewport_size({"width": screen["width"], "height": max(height, screen["height"])})
    await page.screenshot(path=str(SHOTS / f"{name}.png"))
    await page.set_viewport_size(screen)


NEWCOMER_CHECKLISTS = [
    {
        "title": "Triage",
        "items": [{"title": "Page the DBA"}, {"title": "Check replication", "command": "/incident info"}],
    },
    {"title": "Mitigate", "items": [{"title": "Fail over", "command": "/db failover"}]},
]


async def test_a_newcomer_starts_an_incident_posts_an_update_runs_a_command_and_reads_the_timeline(
    browser: Browser, world: World
) -> None:
    book = await make_playbook(
        world,
        world.alice,
        create_public_incident=True,
        checklists=NEWCOMER_CHECKLISTS,
        invited_user_ids=[world.bob.id],
        reminder_timer_default_seconds=900,
    )
    context, page = await signed_in(browser, world, world.alice, DESKTOP)

    # A first visit: no incidents yet, the filters folded away, and a way to start one.
    await expect(page.locator("#incident-list")).to_contain_text("No incidents yet")
    await expect(page.locator("details.filter-box")).not_to_have_attribute("open", "")
    await page.get_by_role("link", name="Start incident").click()
    # The form offers the person's playbooks (lists follow Temporal's visibility a moment late).
    option = page.locator(f'#playbook_id option[value="{book["id"]}"]')
    await eventually(lambda: _reload_until(page, option), what="the playbook offered")
    await page.get_by_label("Playbook").select_option(book["id"])
    await page.get_by_label("Incident name").fill(NAME)
    await page.get_by_label("Description").fill(
        "Payments time out after the 14:02 deploy; the EU database is read-only."
    )
    await shot(page, "incident-start")
    await page.get_by_role("button", name="Start incident").click()
    await expect(page.get_by_role("heading", name=NAME)).to_be_visible()
    await expect(page.locator(".flash")).to_contain_text("started")
    incident_id = page.url.rsplit("/", 1)[-1]
    record = (await world.api(world.alice).get(f"/api/v1/incidents/{incident_id}")).json()
    assert record["playbook_id"] == book["id"]
    assert record["commander_id"] == world.alice.id
    # The channel is made meanwhile; the page shows it by itself.
    await expect(page.get_by_role("link", name="Open the channel in Mattermost")).to_be_visible(timeout=15_000)
    await expect(page.locator("#web-ui-link")).to_have_attribute("href", f"{_web_ui(world)}/incident-{incident_id}")

    # The update form is at the top, above the checklist.
    update_form = await page.locator(".post-update").bounding_box()
    stages = await page.locator("#stages-title").bounding_box()
    assert update_form is not None
    assert stages is not None
    assert update_form["y"] < stages["y"]
    await page.get_by_label("Status", exact=True).select_option("identified")
    await page.get_by_label("Message").fill(UPDATE)
    await page.get_by_role("button", name="Post update").click()
    await expect(page.locator("#last-update")).to_contain_text("Failing over to the replica")
    newest = page.locator("#timeline li").first
    await expect(newest).to_contain_text("posted a status update (identified)")
    await expect(newest.locator(".update-text")).to_have_text(UPDATE)

    # Checking an item with the keyboard; the checklist post in Mattermost follows.
    check = page.locator("#item-0-0 button.check")
    await check.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#item-0-0 button.check")).to_have_attribute("aria-pressed", "true")
    channel = str(record["channel_id"] or (await _channel_of(world, incident_id)))
    await world.standin.wait_for(
        lambda: any("[x] Page the DBA" in post["message"] for post in world.standin.posts(channel))
    )

    # An item's command runs as the person clicking, in Mattermost; its answer and the run are shown.
    await page.get_by_role("button", name="Run /incident info").click()
    await expect(page.locator(".flash")).to_contain_text("Mattermost answered: #### Incident: " + NAME)
    await expect(page.locator("#timeline li").first).to_contain_text("ran /incident info for Check replication")
    replies = world.standin.ephemeral_posts(user_id=world.alice.id, channel_id=channel)
    assert replies[-1]["post"]["message"].startswith("#### Incident: " + NAME)
    # Mattermost refusing to run one is said too (nothing answers /db here).
    await page.get_by_role("button", name="Make stage 2 active").click()
    await page.get_by_role("button", name="Move on").click()
    await page.get_by_role("button", name="Run /db failover").click()
    await expect(page.locator(".flash.error")).to_contain_text("Mattermost did not run it")
    await page.get_by_role("button", name="Dismiss").click()
    await expect(page.locator(".flash")).to_have_count(0)

    # A change made in Mattermost arrives on the open page by itself.
    reply = await world.slash(world.alice, "check 1", channel_id=channel)
    assert "Fail over" in str(reply.get("text", ""))
    await expect(page.locator("#item-1-0 button.check")).to_have_attribute("aria-pressed", "true", timeout=15_000)
    await shot(page, "incident")

    # On a phone: the top of the page, then the timeline as cards, filtered to status updates.
    await page.set_viewport_size(PHONE)
    await page.evaluate("window.scrollTo(0, 0)")
    await no_sideways_scroll(page)
    await shot(page, "incident-phone", full_page=False)
    await page.get_by_role("link", name="Status updates (1)").click()
    await expect(page.locator("#timeline li")).to_have_count(1)
    await expect(page.locator("#timeline li")).to_contain_text(UPDATE)
    await no_sideways_scroll(page)
    await shot(page, "timeline-phone", full_page=False)
    await page.get_by_role("link", name=re.compile(r"^All \(")).click()
    await expect(page.locator("#timeline li").nth(4)).to_be_visible()
    await context.close()


async def test_the_list_the_playbook_editor_and_the_dashboard(browser: Browser, world: World) -> None:
    book = await make_playbook(world, world.alice, create_public_incident=True)
    context, page = await signed_in(browser, world, world.alice, DESKTOP)
    # A dashboard with nothing ended says so instead of drawing an empty chart.
    incident = await start_incident(world, world.alice, book["id"], NAME)
    await eventually(
        lambda: world.api(world.alice).get("/api/v1/stats", params={"team_id": world.team_id}),
        lambda r: r.json()["total"] >= 1,
        what="the incident counted",
    )
    await page.goto(f"{world.stack.api_url}/backstage/teams/{world.team_id}/stats")
    await expect(page.locator("#chart-ttr-empty")).to_have_text(
        "No ended incidents yet: time to resolution shows once one ends."
    )
    await expect(page.locator("#chart-started")).to_be_attached()

    # The list, with the incident's name, status, commander by name and stage; filters open once used.
    await page.goto(f"{world.stack.api_url}/backstage/teams/{world.team_id}/incidents")
    row = page.locator("#incident-list tbody tr", has_text=NAME)
    await eventually(lambda: _reload_until(page, row), what="the incident in the list")
    await expect(row).to_contain_text(f"@{world.alice.username}")
    await expect(row).to_contain_text("Triage")
    await shot(page, "incidents")
    await page.get_by_text("Filters and sorting").click()
    await page.get_by_label("Search names").fill("Checkout")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("details.filter-box")).to_have_attribute("open", "")
    await expect(row).to_be_visible()

    # The editor: removing an item is immediate and undoable until saved.
    await page.goto(f"{world.stack.api_url}/backstage/playbooks/{book['id']}")
    second = page.locator("li.edit-item", has=page.locator('[id="checklists[0].items[1].title"]'))
    await expect(second.get_by_role("button", name="Undo")).to_be_hidden()
    await second.get_by_role("button", name="Remove item").click()
    await expect(second.get_by_label(re.compile("^Item title"))).to_be_hidden()
    await expect(second).to_contain_text("Stage 1, item 2 “Check replication” will be removed when you save.")
    await expect(second.get_by_role("button", name="Undo")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(second.get_by_label(re.compile("^Item title"))).to_be_visible()
    await expect(second.get_by_role("button", name="Remove item")).to_be_focused()
    await page.keyboard.press("Enter")
    # A wrong slash command: the error names the field as people read it, at the field.
    command = page.locator('[id="checklists[1].items[0].command"]')
    await command.fill("db failover")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#error-summary")).to_be_focused()
    await expect(page.locator("#error-summary")).to_contain_text(
        "Stage 2, item 1, slash command: must be a slash command"
    )
    await expect(command).to_have_attribute("aria-invalid", "true")
    await expect(page.locator('[id="err-checklists-1-items-0-command"]')).to_contain_text("must be a slash command")
    await shot(page, "playbook-error")
    await command.fill("/db failover")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".flash")).to_contain_text("Saved version 2")
    saved = (await world.api(world.alice).get(f"/api/v1/playbooks/{book['id']}")).json()
    assert [i["title"] for i in saved["checklists"][0]["items"]] == ["Page the DBA"]

    # The dashboard draws non-empty charts once an incident ended.
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


async def test_every_page_fits_a_phone_with_long_names_and_a_200_item_playbook(browser: Browser, world: World) -> None:
    items = [{"title": f"Step {n}: " + "verify the thing " * 3, "command": f"/run step-{n}"} for n in range(200)]
    big = await make_playbook(
        world,
        world.alice,
        title="B" * 64,
        checklists=[{"title": "Everything " + "w" * 100, "items": items}, {"title": "Close", "items": []}],
    )
    incident = await start_incident(world, world.alice, big["id"], "N" * 64)
    api = world.api(world.alice)
    update = {"message": "See https://status.example.com/" + "x" * 120 + " " + "long" * 40, "status": "monitoring"}
    assert (await api.post(f"/api/v1/incidents/{incident['id']}/status-updates", json=update)).status_code == 200
    base = world.stack.api_url
    context, page = await signed_in(browser, world, world.alice, PHONE)
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # The list, with its filters folded and then in use.
    row = page.locator("#incident-list tbody tr", has_text="N" * 64)
    await eventually(lambda: _reload_until(page, row), what="the incident in the list")
    await no_sideways_scroll(page)
    await shot(page, "incidents-phone")
    await page.goto(f"{base}/backstage/teams/{world.team_id}/incidents?search=" + "N" * 60)
    await expect(page.locator("details.filter-box")).to_have_attribute("open", "")
    await no_sideways_scroll(page)
    await fits(page, f"{base}/backstage/teams/{world.team_id}/incidents/new")

    # The incident page: 200 items, the timeline, an item being edited.
    await fits(page, f"{base}/backstage/incidents/{incident['id']}", showing="#item-0-199")
    await page.locator("#item-0-199").get_by_role("link", name=re.compile("^Edit")).click()
    await expect(page.get_by_label("Position")).to_have_value("199")
    await no_sideways_scroll(page)
    # Posting an update by keyboard alone, focus visible on the way.
    await page.get_by_label("Message").focus()
    await page.keyboard.type("Still on it.")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Post update")).to_be_focused()
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    await page.keyboard.press("Enter")
    await expect(page.locator("#last-update")).to_contain_text("Still on it.")
    await no_sideways_scroll(page)

    # The playbooks, the editor with 200 items, and the dashboard.
    await fits(page, f"{base}/backstage/teams/{world.team_id}/playbooks")
    await fits(page, f"{base}/backstage/playbooks/{big['id']}", showing='[id="checklists[0].items[199].title"]')
    await fits(page, f"{base}/backstage/teams/{world.team_id}/stats")
    await shot(page, "stats-phone")
    await fits(page, f"{base}/backstage/todo")
    await fits(page, f"{base}/backstage/teams/{world.team_id}/severities")

    # Wide again: the same pages fit a desktop screen.
    await page.set_viewport_size(DESKTOP)
    await no_sideways_scroll(page)
    for path in (f"/backstage/incidents/{incident['id']}", f"/backstage/playbooks/{big['id']}"):
        await fits(page, base + path)

    # The sign-in page, signed out.
    await context.clear_cookies()
    await page.set_viewport_size(PHONE)
    await page.goto(f"{base}/backstage/login")
    await expect(page.get_by_role("link", name="Sign in with Mattermost")).to_be_visible()
    await no_sideways_scroll(page)
    await context.close()


async def test_an_integration_shows_its_token_once_copies_it_and_every_integration_page_fits_a_phone(
    browser: Browser, world: World
) -> None:
    tess = team_admin(world)
    book = await make_playbook(world, tess, title="Paging " + "p" * 57)
    base = world.stack.api_url
    context, page = await signed_in(browser, world, tess, DESKTOP)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.on("dialog", lambda dialog: dialog.accept())  # rotating asks first

    # A team admin finds the page in the header, and creates one.
    await page.get_by_role("link", name="Integrations").click()
    await expect(page.locator("#integration-list")).to_contain_text("No integrations yet")
    option = page.locator(f'#playbook_id option[value="{book["id"]}"]')
    await eventually(lambda: _reload_until(page, option), what="the playbook offered")
    await page.get_by_label("Alerts come from").select_option("generic")
    await page.get_by_label("Name", exact=True).fill("G" * 64)
    await page.get_by_label("Playbook its incidents run").select_option(book["id"])
    await page.get_by_role("button", name="Create integration").click()

    # Its token, shown once, with the URL: focused first, copied with one click.
    secret = page.locator("#secret")
    await expect(secret).to_contain_text("Copy the token now: it is not shown again.")
    await expect(secret).to_be_focused()
    token = str(await page.locator("#secret-token").text_content()).strip()
    url = str(await page.locator("#secret-url").text_content()).strip()
    await page.get_by_role("button", name="Copy token").click()
    await expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert await page.evaluate("navigator.clipboard.readText()") == token
    await secret.get_by_role("button", name="Copy URL").click()
    assert await page.evaluate("navigator.clipboard.readText()") == url
    await shot(page, "integration-created")
    await page.set_viewport_size(PHONE)
    await no_sideways_scroll(page)
    await page.set_viewport_size(DESKTOP)

    # Alerts with a long group key and long links: a delivery, and an incident showing its source.
    async with httpx.AsyncClient(timeout=30) as http:
        sent = await http.post(
            url,
            json={
                "title": "Checkout errors",
                "group_key": "k" * 300,
                "severity": "critical",
                "links": [f"https://grafana.example/d/{n}/" + "x" * 150 for n in range(6)],
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert sent.status_code == 200, sent.text
    incident_id = sent.json()["incident_id"]
    integration_id = url.rsplit("/", 1)[-1]

    # On a phone: the list, the deliveries, the confirmation, the incident with its source.
    await page.set_viewport_size(PHONE)
    await fits(page, f"{base}/backstage/teams/{world.team_id}/integrations", showing=f"#integration-{integration_id}")
    await shot(page, "integrations-phone")
    deliveries = f"{base}/backstage/integrations/{integration_id}/deliveries"
    row = page.locator("#delivery-list tbody tr", has_text=incident_id)
    await page.goto(deliveries)
    await eventually(lambda: _reload_until(page, row), what="the delivery listed")
    await no_sideways_scroll(page)
    await shot(page, "integration-deliveries-phone")
    await fits(page, f"{base}/backstage/integrations/{integration_id}/delete")
    await fits(page, f"{base}/backstage/incidents/{incident_id}", showing="#incident-source")
    await expect(page.locator("#incident-source li")).to_have_count(LINKS_KEPT)  # what an incident keeps
    await shot(page, "incident-from-alerts-phone", full_page=False)

    # Rotating (it asks first) shows the new token once; deleting asks on a page of its own.
    await page.set_viewport_size(DESKTOP)
    await page.goto(f"{base}/backstage/teams/{world.team_id}/integrations")
    await page.get_by_role("button", name=re.compile("^Rotate token")).click()
    await expect(page.locator("#secret")).to_contain_text("The previous token no longer works")
    assert str(await page.locator("#secret-token").text_content()).strip() != token
    await page.get_by_role("link", name=re.compile("^Delete")).click()
    await expect(page.get_by_role("alertdialog")).to_contain_text("Delete the integration")
    await page.get_by_role("button", name="Delete integration").click()
    await expect(page.locator(".flash")).to_contain_text("deleted")
    await context.close()


async def _channel_of(world: World, incident_id: str) -> str:
    ready = await eventually(
        lambda: world.api(world.alice).get(f"/api/v1/incidents/{incident_id}"),
        lambda r: r.json().get("channel_id") is not None,
        what="the incident's channel",
    )
    return str(ready.json()["channel_id"])


async def _reload_until(page: Page, row: Any) -> bool:
    await page.reload()
    return bool(await row.count())


def _web_ui(world: World) -> str:
    settings = world.stack.settings
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows"


# Anything a hostile value could have become: a script of the page's own, an event handler, a
# `javascript:` link (tests/integration/test_backstage_escaping.py checks the same in the HTML).
INJECTED = """(() => [...document.querySelectorAll('*')].flatMap(e => {
  const found = [...e.attributes].filter(a => a.name.startsWith('on')
      || (['href', 'src', 'action', 'formaction'].includes(a.name) && /^\\s*javascript:/i.test(a.value)))
    .map(a => `<${e.tagName.toLowerCase()} ${a.name}>`);
  if (e.tagName === 'SCRIPT' && e.type !== 'application/json' && !e.src.includes('/backstage/static/'))
    found.push('<script> ' + e.textContent.slice(0, 40));
  return found;
}))()"""


async def test_no_script_runs_from_what_people_typed_on_any_page(browser: Browser, world: World) -> None:
    hostile = await make_hostile(world)
    # The hostile item is one of alice's open items, with a due time, once visibility lists it.
    api = world.api(world.alice)
    items = f"/api/v1/incidents/{hostile.incident_id}/checklists/0/items/0"
    assert (await api.put(f"{items}/assignee", json={"assignee_id": world.alice.id})).status_code == 200
    assert (await api.put(f"{items}/due", json={"due": "1h"})).status_code == 200
    await eventually(
        lambda: hostile.page.get("/backstage/todo"), lambda r: hostile.incident_id in r.text, what="alice's open item"
    )
    context, page = await signed_in(browser, world, world.alice, DESKTOP)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    paths = {
        "incident list": f"/backstage/teams/{world.team_id}/incidents",
        "incident page": f"/backstage/incidents/{hostile.incident_id}",
        "live fragment": f"/backstage/incidents/{hostile.incident_id}/live?digest=none",
        "start form": f"/backstage/teams/{world.team_id}/incidents/new",
        "playbook list": f"/backstage/teams/{world.team_id}/playbooks",
        "playbook editor": f"/backstage/playbooks/{hostile.playbook_id}",
        "playbook history": f"/backstage/playbooks/{hostile.playbook_id}/history",
        "dashboard": f"/backstage/teams/{world.team_id}/stats",
        "my open items": "/backstage/todo",
    }
    for name, path in paths.items():
        await page.goto(world.stack.api_url + path)
        await page.wait_for_load_state("load")
        if name == "playbook editor":
            # The editor writes the item's title into its "will be removed" line itself.
            await page.get_by_role("button", name="Remove item").first.click()
            await expect(page.locator("p.undo").first).to_contain_text("__xss=1")
        if name == "dashboard":
            await expect(page.locator("body")).to_have_attribute("data-charts-ready", "true")
        assert await page.evaluate("window.__xss") is None, name
        assert await page.evaluate(INJECTED) == [], name
        assert "__xss=1</script>" in await page.locator("body").inner_text(), name
    assert dialogs == []
    await context.close()
