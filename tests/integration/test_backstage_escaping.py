"""What people typed is shown as text on every backstage page, never as markup.

An incident's name, description and status update, a checklist item's title and a
playbook's title, each full of `<script>`, `"><img onerror>`, `javascript:` links and
`{{ }}`, are read back from every page that shows them (and from the dashboard's chart
data): each is there, as typed, and the page has no script, event handler or
`javascript:` link of its own making. tests/browser/test_backstage_browser.py loads the same
pages in Chromium and checks that nothing ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx
import pytest

from tests.harness import Stack, World, eventually, world_in
from tests.integration.backstage_helpers import csrf, sign_in
from tests.integration.test_backstage import make_playbook, start_incident


def hostile(label: str, *, long: bool = False) -> str:
    """A value that is markup, a script and a template expression at once; `label` tells the
    fields apart (at most 4 characters: names and titles take 64)."""
    text = f'{label}<script>__xss=1</script>"><img src=x onerror=__xss=2>{{{{7*7}}}}'
    if long:
        text += " <a href=\"javascript:__xss=3\">x</a> ' onmouseover='__xss=4' <svg onload=__xss=5> ${7*7}"
    return text


NAME = hostile("name")
DESCRIPTION = hostile("desc", long=True)
UPDATE = hostile("upd", long=True)
ITEM = hostile("item", long=True)
PLAYBOOK = hostile("book")
OWN_SCRIPTS = ("/backstage/static/",)
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data"}


class Markup(HTMLParser):
    """A page as a browser's parser reads it: its text and attribute values, and anything in it
    that would run a script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.attributes: list[str] = []
        self.scripts: list[str] = []
        self.dangers: list[str] = []
        self.chart_data: list[str] = []
        self._in_data_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.attributes.extend(values.values())
        for name, value in values.items():
            if name.startswith("on"):
                self.dangers.append(f"<{tag} {name}={value!r}>")
            if name in URL_ATTRIBUTES and re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith("javascript:"):
                self.dangers.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            if values.get("type") == "application/json":
                self._in_data_script = True
            elif not values.get("src", "").startswith(OWN_SCRIPTS):
                self.scripts.append(str(values))
        if tag in ("iframe", "object", "embed", "base") or "http-equiv" in values:
            self.dangers.append(f"<{tag} {values}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_data_script = False

    def handle_data(self, data: str) -> None:
        (self.chart_data if self._in_data_script else self.text).append(data)

    def shows(self, value: str) -> bool:
        """Whether `value` is in the page's text (as a browser's textContent) or a field's value."""
        return value in "".join(self.text) or value in self.attributes


def read(page: httpx.Response) -> Markup:
    parsed = Markup()
    parsed.feed(page.text)
    parsed.close()
    return parsed


@dataclass
class Hostile:
    """One team's incident, playbook and status update, all typed by someone hostile."""

    world: World
    page: httpx.AsyncClient
    incident_id: str
    playbook_id: str


async def make_hostile(world: World) -> Hostile:
    book = await make_playbook(
        world,
        world.alice,
        title=PLAYBOOK,
        description=DESCRIPTION,
        checklists=[{"title": "Triage", "items": [{"title": ITEM, "description": DESCRIPTION}]}],
    )
    incident_id = (await start_incident(world, world.alice, book["id"], NAME, DESCRIPTION))["id"]
    api = world.api(world.alice)
    updated = await api.post(f"/api/v1/incidents/{incident_id}/status-updates", json={"message": UPDATE})
    assert updated.status_code == 200, updated.text
    page = await sign_in(world, world.alice)
    # Lists read from Temporal's visibility, a moment behind.
    await listed(page, f"/backstage/teams/{world.team_id}/incidents", incident_id)
    await listed(page, f"/backstage/teams/{world.team_id}/playbooks", book["id"])
    return Hostile(world, page, incident_id, book["id"])


async def listed(page: httpx.AsyncClient, listing: str, made: str) -> None:
    await eventually(lambda: page.get(listing), lambda r: made in r.text, what=f"{made} in {listing}")


@pytest.fixture(scope="module")
async def hostile_team(stack: Stack) -> AsyncIterator[Hostile]:
    async with world_in(stack) as world:
        yield await make_hostile(world)


async def refused_start(h: Hostile) -> httpx.Response:
    """The start form sent back with what was typed (a name too long)."""
    form = f"/backstage/teams/{h.world.team_id}/incidents/new"
    fields = {"csrf_token": csrf(await h.page.get(form)), "playbook_id": h.playbook_id}
    return await h.page.post(form, data=fields | {"name": NAME + NAME, "description": DESCRIPTION})


async def flash_after_a_control(h: Hostile) -> httpx.Response:
    """The notice after a control, which names the item."""
    url = f"/backstage/incidents/{h.incident_id}"
    fields = {"csrf_token": csrf(await h.page.get(url)), "stage": "0", "item": "0", "state": "in_progress"}
    sent = await h.page.post(f"{url}/commands/set_item_state", data=fields)
    assert sent.status_code == 303, sent.text
    return await h.page.get(sent.headers["location"])


def get(path: str) -> Callable[[Hostile], Awaitable[httpx.Response]]:
    async def fetch(h: Hostile) -> httpx.Response:
        return await h.page.get(path.format(team=h.world.team_id, incident=h.incident_id, playbook=h.playbook_id))

    return fetch


# Each page, and what it must show of what was typed.
PAGES: dict[str, tuple[Callable[[Hostile], Awaitable[httpx.Response]], tuple[str, ...]]] = {
    "incident list": (get("/backstage/teams/{team}/incidents"), (NAME, PLAYBOOK)),
    "incident page": (get("/backstage/incidents/{incident}"), (NAME, DESCRIPTION, UPDATE, ITEM)),
    "live fragment": (get("/backstage/incidents/{incident}/live?digest=none"), (UPDATE, ITEM)),
    # (The sentence quotes the title as Python does, escaping its own quotes: its start is compared.)
    "notice after a control": (flash_after_a_control, (hostile("item"),)),
    "start form": (get("/backstage/teams/{team}/incidents/new"), (PLAYBOOK,)),
    "start form with a refusal": (refused_start, (NAME + NAME, DESCRIPTION, PLAYBOOK)),
    "playbook list": (get("/backstage/teams/{team}/playbooks"), (PLAYBOOK,)),
    "playbook editor": (get("/backstage/playbooks/{playbook}"), (PLAYBOOK, DESCRIPTION, ITEM)),
    "playbook history": (get("/backstage/playbooks/{playbook}/history"), (PLAYBOOK,)),
    "dashboard": (get("/backstage/teams/{team}/stats"), (PLAYBOOK,)),
}


@pytest.mark.parametrize("name", PAGES)
async def test_what_people_typed_is_shown_as_text_on_every_page(hostile_team: Hostile, name: str) -> None:
    fetch, expected = PAGES[name]
    page = await fetch(hostile_team)
    assert page.status_code in (200, 422), (name, page.status_code)
    parsed = read(page)
    for value in expected:
        assert parsed.shows(value), f"{name} does not show {value!r} as typed"
    assert parsed.dangers == [], name
    assert parsed.scripts == [], name
    for data in parsed.chart_data:
        json.loads(data)  # the chart data is JSON, and nothing in it closes its <script>
        assert "<" not in data, data
