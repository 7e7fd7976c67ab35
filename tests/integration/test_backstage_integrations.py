"""The integrations page over HTTP: team admins only, the token shown once in the page that
answers the form (never in a URL or a redirect), rotation, deletion with a confirmation,
deliveries, CSRF on every form; and the incident page of an alert-opened incident shows
where it came from."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import httpx

from models.incident_alerts import LINKS_KEPT
from tests.harness import User, World, eventually
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import create_playbook, state
from tests.integration.test_alert_intake import make_integration, send, team_admin
from tests.integration.test_backstage_escaping import read

ALERTMANAGER = (Path(__file__).parent.parent / "unit" / "payloads" / "alertmanager_example.json").read_bytes()
SHOWN_ONCE = "Copy the token now: it is not shown again."
# Markup, a script and an event handler in a name: shown as text, never run.
HOSTILE = 'Prod <script>__xss=1</script>"><img src=x onerror=__xss=2>'
SECRET = re.compile(r'id="secret-token">([^<]+)</code>')
URL = re.compile(r'id="secret-url">([^<]+)</code>')


def listing(world: World) -> str:
    return f"/backstage/teams/{world.team_id}/integrations"


def secret(page: httpx.Response) -> tuple[str, str]:
    """The URL and the token a page shows once."""
    token, url = SECRET.search(page.text), URL.search(page.text)
    assert token, "the page shows no token"
    assert url, "the page shows no URL"
    return html.unescape(url[1]), html.unescape(token[1])


async def rest(world: World, user: User, integration_id: str) -> httpx.Response:
    return await world.api(user).get(f"/api/v1/integrations/{integration_id}")


async def test_an_admin_creates_one_sees_its_token_once_rotates_it_and_deletes_it(world: World) -> None:
    tess = team_admin(world)
    book = await create_playbook(world, tess, "Paging")
    page = await sign_in(world, tess)
    # Team pages link to the integrations for a team admin.
    incidents = await page.get(f"/backstage/teams/{world.team_id}/incidents")
    assert f'href="{listing(world)}"' in incidents.text
    empty = await page.get(listing(world))
    assert empty.status_code == 200
    assert "No integrations yet" in text(empty)
    assert f'<option value="{book["id"]}"' in empty.text

    # A refusal is shown beside the form, with what was typed.
    form = {"csrf_token": csrf(empty), "kind": "alertmanager", "playbook_id": book["id"]}
    nameless = await page.post(listing(world), data=form | {"request_key": "r0", "name": "  "})
    assert nameless.status_code == 422
    assert "The integration was not created" in text(nameless)
    assert 'id="err-name"' in nameless.text
    assert 'aria-invalid="true" aria-describedby="err-name"' in nameless.text
    foreign = await page.post(
        listing(world), data=form | {"request_key": "r1", "name": "Kept", "playbook_id": "nosuchbook"}
    )
    assert foreign.status_code == 422
    assert "no playbook 'nosuchbook' in this team" in text(foreign)
    assert 'value="Kept"' in foreign.text

    # Created: the URL and the token in the answer to the form itself, never cached.
    created = await page.post(listing(world), data=form | {"request_key": "r2", "name": HOSTILE})
    assert created.status_code == 201, text(created)[:500]
    assert "location" not in created.headers
    assert created.headers["cache-control"] == "no-store"
    assert SHOWN_ONCE in text(created)
    url, token = secret(created)
    assert len(token) >= 40
    assert token not in str(created.url)
    parsed = read(created)
    assert parsed.shows(HOSTILE)
    assert parsed.dangers == []
    assert parsed.scripts == []
    integration_id = url.rsplit("/", 1)[-1]
    assert url == f"{world.stack.api_url}/hooks/alerts/{integration_id}"
    record = (await rest(world, tess, integration_id)).json()
    assert record["token_hint"] == token[-4:]
    assert record["playbook_id"] == book["id"]
    assert record["kind"] == "alertmanager"
    # The same form sent again (a double click, a reload) makes nothing more and shows no token.
    again = await page.post(listing(world), data=form | {"request_key": "r2", "name": HOSTILE})
    assert "This form was sent before" in text(again)
    assert token not in again.text
    assert SECRET.search(again.text) is None

    # The list: name, kind, playbook, routes, the token's last characters, never the token.
    listed = await eventually(
        lambda: page.get(listing(world)), lambda r: integration_id in r.text, what="the integration listed"
    )
    shown = text(listed)
    assert token not in listed.text
    assert SHOWN_ONCE not in shown
    assert f"ending …{token[-4:]}" in shown
    assert "Prometheus Alertmanager" in shown
    assert "Paging" in shown
    assert f"Routes: 0 — edit them with PATCH /api/v1/integrations/{integration_id} , or export" in shown
    assert f'id="url-{integration_id}">{url}</code>' in listed.text
    assert read(listed).shows(HOSTILE)
    assert read(listed).dangers == []
    assert 'data-copy="url-' in listed.text

    # The token works; its delivery is listed, with the incident it opened.
    async with httpx.AsyncClient(timeout=30) as http:
        taken = await http.post(
            url, content=ALERTMANAGER, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        )
    assert taken.status_code == 200, taken.text
    incident_id = taken.json()["incident_id"]
    deliveries_url = f"/backstage/integrations/{integration_id}/deliveries"
    deliveries = await eventually(
        lambda: page.get(deliveries_url), lambda r: incident_id in r.text, what="the delivery listed"
    )
    row = text(deliveries)
    assert "200" in row
    assert f'href="/backstage/incidents/{incident_id}"' in deliveries.text
    assert "Opened incident" in row
    assert 'alertname="HighErrorRate"' in row  # the group key
    assert token not in deliveries.text
    assert read(deliveries).dangers == []

    # Rotating: a new token, shown once; the old one stops working.
    rotated = await page.post(f"/backstage/integrations/{integration_id}/token", data={"csrf_token": csrf(listed)})
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    assert SHOWN_ONCE in text(rotated)
    assert "The previous token no longer works" in text(rotated)
    _, new_token = secret(rotated)
    assert new_token != token
    assert f"ending …{new_token[-4:]}" in text(rotated)
    refused = await send(world, {"url": url, "token": token}, {"title": "x"})
    assert refused.status_code == 401
    assert new_token not in (await page.get(listing(world))).text

    # Deleting asks first (a page, then the form that confirms).
    asking = await page.get(f"/backstage/integrations/{integration_id}/delete")
    assert asking.status_code == 200
    assert "Delete the integration" in text(asking)
    unconfirmed = await page.post(f"/backstage/integrations/{integration_id}/delete", data={"csrf_token": csrf(asking)})
    assert unconfirmed.status_code == 409
    assert (await rest(world, tess, integration_id)).status_code == 200
    deleted = await page.post(
        f"/backstage/integrations/{integration_id}/delete", data={"csrf_token": csrf(asking), "confirmed": "1"}
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == listing(world)
    assert "deleted" in text(await page.get(listing(world)))
    assert (await rest(world, tess, integration_id)).status_code == 404
    gone = await send(world, {"url": url, "token": new_token}, {"title": "x"})
    assert gone.status_code == 401
    await eventually(
        lambda: page.get(listing(world)), lambda r: integration_id not in r.text, what="the integration unlisted"
    )


async def test_a_member_who_is_not_an_admin_and_an_outsider_are_refused_and_learn_nothing(world: World) -> None:
    tess = team_admin(world)
    made = await make_integration(world, tess, "generic")
    before = (await rest(world, tess, made["id"])).json()
    unknown = "zzzzzzzzzz"
    for user, list_status, list_message in (
        (world.alice, 403, "Only team admins can manage this team's integrations."),
        (world.mallory, 404, "Team not found."),
    ):
        page = await sign_in(world, user)
        home = await page.get("/backstage", follow_redirects=True)
        token = csrf(home)  # the session's own: what is refused below is refused for who they are
        assert "/integrations" not in home.text  # no link to what they may not see
        # The team's list: the REST API's answer, as a page.
        shown = await page.get(listing(world))
        assert shown.status_code == list_status, user.username
        assert list_message in text(shown)
        rest_list = await world.api(user).get("/api/v1/integrations", params={"team_id": world.team_id})
        assert (rest_list.status_code, rest_list.json()["message"]) == (list_status, list_message)
        created = await page.post(
            listing(world), data={"csrf_token": token, "kind": "generic", "name": "Mine", "request_key": "m1"}
        )
        assert created.status_code == list_status
        assert list_message in text(created)
        # One integration: exactly what one that does not exist answers.
        answers: list[httpx.Response] = [shown, created]
        for method, path, fields in (
            ("GET", "/backstage/integrations/{}/deliveries", {}),
            ("GET", "/backstage/integrations/{}/delete", {}),
            ("POST", "/backstage/integrations/{}/token", {"csrf_token": token}),
            ("POST", "/backstage/integrations/{}/delete", {"csrf_token": token, "confirmed": "1"}),
        ):
            real = await page.request(method, path.format(made["id"]), data=fields or None)
            none = await page.request(method, path.format(unknown), data=fields or None)
            assert real.status_code == none.status_code == 404, (user.username, method, path)
            assert text(real) == text(none)
            assert "Integration not found." in text(real)
            answers.append(real)
        for answer in answers:
            assert made["name"] not in answer.text
            assert made["url"] not in answer.text
    assert (await rest(world, tess, made["id"])).json() == before


async def test_every_integration_form_needs_the_sessions_csrf_token(world: World) -> None:
    tess = team_admin(world)
    made = await make_integration(world, tess, "grafana")
    before = (await rest(world, tess, made["id"])).json()
    page = await sign_in(world, tess)
    other = csrf(await (await sign_in(world, world.bob)).get(f"/backstage/teams/{world.team_id}/incidents"))
    posts: dict[str, dict[str, str]] = {
        listing(world): {"kind": "generic", "name": "Forged", "request_key": "f1"},
        f"/backstage/integrations/{made['id']}/token": {},
        f"/backstage/integrations/{made['id']}/delete": {"confirmed": "1"},
    }
    for path, fields in posts.items():
        for forged in ({}, {"csrf_token": ""}, {"csrf_token": "x" * 40}, {"csrf_token": other}):
            refused = await page.post(path, data=fields | forged)
            assert refused.status_code == 403, (path, forged)
            assert "This form is not from your current session" in text(refused)
            assert SECRET.search(refused.text) is None
    assert (await rest(world, tess, made["id"])).json() == before
    async with world.api(tess) as api:
        listed = await api.get("/api/v1/integrations", params={"team_id": world.team_id})
    assert "Forged" not in [i["name"] for i in listed.json()]


async def test_the_incident_page_of_an_alert_opened_incident_shows_its_source(world: World) -> None:
    tess = team_admin(world)
    integration = await make_integration(world, tess, "generic", name="Checkout probes")
    links = [f"https://grafana.example/d/{n}" for n in range(6)]
    links[1] = 'https://grafana.example/d?x="><svg/onload=__xss=7>'
    alert: dict[str, Any] = {
        "title": "Checkout errors",
        "group_key": "checkout",
        "severity": "critical",
        "labels": {"shard": "1"},
        "links": links,
    }
    opened = await send(world, integration, alert)
    assert opened.status_code == 200, opened.text
    incident_id = opened.json()["incident_id"]
    assert (await send(world, integration, alert | {"labels": {"shard": "2"}})).status_code == 200
    resolved = alert | {"labels": {"shard": "2"}, "status": "resolved"}
    assert (await send(world, integration, resolved)).status_code == 200
    await eventually(
        lambda: state(world, incident_id),
        lambda s: s.source is not None and (s.source.firing, s.source.resolved) == (1, 1),
        what="one alert firing and one resolved",
    )
    page = await sign_in(world, tess)
    shown = await page.get(f"/backstage/incidents/{incident_id}")
    assert shown.status_code == 200, text(shown)[:300]
    source = text(shown)
    assert "Opened by alerts · Generic integration “Checkout probes”" in source
    assert "1 firing" in source
    assert "1 resolved" in source
    assert "Alert severity: critical" in source
    parsed = read(shown)
    hrefs = set(parsed.attributes)
    # An incident keeps an alert's first LINKS_KEPT links: shown as sent (escaped in the markup:
    # it parses back), the others not.
    assert set(links[:LINKS_KEPT]) <= hrefs
    assert links[LINKS_KEPT] not in shown.text
    assert "<svg" not in shown.text
    assert parsed.dangers == []
    assert parsed.scripts == []
    # The live part of the page (what it polls) shows it too.
    live = await page.get(f"/backstage/incidents/{incident_id}/live?digest=none")
    assert "Opened by alerts" in text(live)
    # An incident started by hand shows no source.
    book = await create_playbook(world, tess, "Manual")
    started = await world.api(tess).post(
        "/api/v1/incidents", json={"team_id": world.team_id, "name": "By hand", "playbook_id": book["id"]}
    )
    assert started.status_code == 201, started.text
    manual = await page.get(f"/backstage/incidents/{started.json()['id']}")
    assert manual.status_code == 200
    assert "Opened by alerts" not in text(manual)
