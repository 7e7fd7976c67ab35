"""The webhook pages over HTTP: a playbook's webhooks for the people who may edit it (a
team's for its admins), the secret shown once in the page that answers the form, rotation,
editing, the deliveries page, deletion with a confirmation; a refused URL shown beside its
field; and nothing at all for whoever may not manage them."""

from __future__ import annotations

import html
import re

import httpx

from tests.harness import User, World, eventually
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import create_playbook
from tests.integration.test_alert_intake import team_admin
from tests.integration.test_backstage import start_incident
from tests.integration.test_backstage_escaping import read
from tests.webhook_receiver import WebhookReceiver

SHOWN_ONCE = "Copy the secret now: it is not shown again."
SECRET = re.compile(r'id="secret-value">([^<]+)</code>')
HOOK = "http://127.0.0.1:9/hook"


def listing(playbook_id: str) -> str:
    return f"/backstage/playbooks/{playbook_id}/webhooks"


def secret(page: httpx.Response) -> str:
    found = SECRET.search(page.text)
    assert found, "the page shows no secret"
    return html.unescape(found[1])


async def rest_list(world: World, user: User, playbook_id: str) -> httpx.Response:
    return await world.api(user).get(f"/api/v1/playbooks/{playbook_id}/webhooks")


async def test_a_playbook_member_creates_a_webhook_sees_its_secret_once_edits_rotates_and_deletes_it(
    world: World,
) -> None:
    book = await create_playbook(world, world.alice, "Hooks")
    page = await sign_in(world, world.alice)
    # The playbook's page links to its webhooks.
    playbook_page = await page.get(f"/backstage/playbooks/{book['id']}")
    assert f'href="{listing(book["id"])}"' in playbook_page.text
    empty = await page.get(listing(book["id"]))
    assert empty.status_code == 200, text(empty)[:300]
    assert "No webhooks yet" in text(empty)
    assert 'value="incident.started"' in empty.text

    form = {
        "csrf_token": csrf(empty),
        "url": HOOK,
        "events": ["incident.started", "incident.ended"],
        "custom_events": "deploy.freeze",
        "description": 'Status <b>page</b>"',
    }
    # No event chosen: refused beside the events, with what was typed kept.
    eventless = await page.post(
        listing(book["id"]), data=form | {"events": [], "custom_events": "", "request_key": "k0"}
    )
    assert eventless.status_code == 422
    assert 'id="err-events"' in eventless.text
    assert f'value="{HOOK}"' in eventless.text

    created = await page.post(listing(book["id"]), data=form | {"request_key": "k1"})
    assert 'id="err-url"' not in created.text, (
        "loopback refused: devstack/stack.py's stack_settings needs webhook_allowed_networks '127.0.0.0/8,::1/128'"
    )
    assert created.status_code == 201, text(created)[:500]
    assert "location" not in created.headers
    assert created.headers["cache-control"] == "no-store"
    assert SHOWN_ONCE in text(created)
    first = secret(created)
    assert first.startswith("whsec_")
    assert first not in str(created.url)
    parsed = read(created)
    assert parsed.shows('Status <b>page</b>"')
    assert parsed.dangers == []
    listed = (await rest_list(world, world.alice, book["id"])).json()
    assert len(listed) == 1
    hook = listed[0]
    assert hook["secret_hint"] == first[-4:]
    assert hook["events"] == ["incident.started", "incident.ended", "deploy.freeze"]
    base = f"{listing(book['id'])}/{hook['id']}"

    # The same form sent again makes nothing more and shows no secret.
    again = await page.post(listing(book["id"]), data=form | {"request_key": "k1"})
    assert "This form was sent before" in text(again)
    assert SECRET.search(again.text) is None
    assert len((await rest_list(world, world.alice, book["id"])).json()) == 1

    # A reload lists it, never with its secret.
    reloaded = await page.get(listing(book["id"]))
    shown = text(reloaded)
    assert first not in reloaded.text
    assert SHOWN_ONCE not in shown
    assert f"ending …{first[-4:]}" in shown
    assert HOOK in shown
    assert "incident.started, incident.ended, deploy.freeze" in shown

    # Rotating: a different secret, shown once.
    rotated = await page.post(f"{base}/secret", data={"csrf_token": csrf(reloaded)})
    assert rotated.status_code == 200, text(rotated)[:300]
    assert rotated.headers["cache-control"] == "no-store"
    assert SHOWN_ONCE in text(rotated)
    second = secret(rotated)
    assert second != first
    assert f"ending …{second[-4:]}" in text(rotated)
    assert second not in (await page.get(listing(book["id"]))).text

    # Editing the events.
    editing = await page.get(base)
    assert editing.status_code == 200
    assert 'value="deploy.freeze"' in editing.text
    saved = await page.post(
        base,
        data={"csrf_token": csrf(editing), "url": HOOK, "events": ["*"], "custom_events": "", "description": "All"},
    )
    assert saved.status_code == 303, text(saved)[:300]
    assert saved.headers["location"] == listing(book["id"])
    after = await page.get(listing(book["id"]))
    assert "saved" in text(after)
    assert "All events" in text(after)
    assert (await rest_list(world, world.alice, book["id"])).json()[0]["events"] == ["*"]
    # A bad custom type is refused beside its field, the form keeping what was typed.
    bad = await page.post(
        base, data={"csrf_token": csrf(editing), "url": HOOK, "custom_events": "Not An Event", "description": "x"}
    )
    assert bad.status_code == 422
    assert 'id="err-custom_events"' in bad.text
    assert 'value="Not An Event"' in bad.text

    # The deliveries page: none yet.
    deliveries = await page.get(f"{base}/deliveries")
    assert deliveries.status_code == 200
    assert "Nothing sent yet" in text(deliveries)
    assert "0 deliveries" in text(deliveries)

    # Deleting asks first.
    asking = await page.get(f"{base}/delete")
    assert asking.status_code == 200
    assert "Delete the webhook to" in text(asking)
    unconfirmed = await page.post(f"{base}/delete", data={"csrf_token": csrf(asking)})
    assert unconfirmed.status_code == 409
    assert len((await rest_list(world, world.alice, book["id"])).json()) == 1
    deleted = await page.post(f"{base}/delete", data={"csrf_token": csrf(asking), "confirmed": "1"})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == listing(book["id"])
    assert "deleted" in text(await page.get(listing(book["id"])))
    await eventually(
        lambda: rest_list(world, world.alice, book["id"]), lambda r: r.json() == [], what="the webhook deleted"
    )
    assert (await page.get(base)).status_code == 404


async def test_a_metadata_url_is_refused_beside_the_url_field(world: World) -> None:
    book = await create_playbook(world, world.alice, "Metadata")
    page = await sign_in(world, world.alice)
    empty = await page.get(listing(book["id"]))
    metadata = "http://169.254.169.254/latest"
    refused = await page.post(
        listing(book["id"]),
        data={"csrf_token": csrf(empty), "url": metadata, "events": ["*"], "request_key": "m1", "description": ""},
    )
    assert refused.status_code == 422
    assert "The webhook was not created" in text(refused)
    error = re.search(r'<p class="error" id="err-url">([^<]+)</p>', refused.text)
    assert error, "no error beside the URL"
    assert 'aria-invalid="true" aria-describedby="err-url"' in refused.text
    assert f'value="{metadata}"' in refused.text
    assert SECRET.search(refused.text) is None
    assert (await rest_list(world, world.alice, book["id"])).json() == []


async def test_who_may_not_manage_them_gets_not_found_everywhere(world: World) -> None:
    book = await create_playbook(world, world.alice, "Private hooks")
    made = await world.api(world.alice).post(
        f"/api/v1/playbooks/{book['id']}/webhooks", json={"url": HOOK, "events": ["*"], "description": "Mine"}
    )
    assert made.status_code == 201, made.text
    hook_id = made.json()["id"]
    unknown = "zzzzzzzzzz"
    for user in (world.bob, world.mallory):
        page = await sign_in(world, user)
        token = csrf(await page.get("/backstage", follow_redirects=True))
        base = listing(book["id"])
        for method, path, fields in (
            ("GET", base, {}),
            ("POST", base, {"url": HOOK, "events": "*", "request_key": "x"}),
            ("GET", f"{base}/{{}}", {}),
            ("POST", f"{base}/{{}}", {"url": HOOK, "events": "*"}),
            ("POST", f"{base}/{{}}/secret", {}),
            ("GET", f"{base}/{{}}/delete", {}),
            ("POST", f"{base}/{{}}/delete", {"confirmed": "1"}),
            ("GET", f"{base}/{{}}/deliveries", {}),
            ("POST", f"{base}/{{}}/deliveries", {"event_id": "e"}),
        ):
            data = fields | {"csrf_token": token} if method == "POST" else None
            real = await page.request(method, path.format(hook_id), data=data)
            assert real.status_code == 404, (user.username, method, path)
            assert "Mine" not in real.text
            assert HOOK not in real.text
            none = await page.request(method, path.format(unknown), data=data)
            assert none.status_code == 404
        # No link to them on the pages they do see.
        incidents = await page.get(f"/backstage/teams/{world.team_id}/playbooks")
        assert "/webhooks" not in incidents.text
    listed = (await rest_list(world, world.alice, book["id"])).json()
    assert [(h["id"], h["description"]) for h in listed] == [(hook_id, "Mine")]


async def test_a_team_admin_manages_the_teams_webhooks_from_the_integrations_page(world: World) -> None:
    tess = team_admin(world)
    page = await sign_in(world, tess)
    integrations = await page.get(f"/backstage/teams/{world.team_id}/integrations")
    team_hooks = f"/backstage/teams/{world.team_id}/webhooks"
    assert f'href="{team_hooks}"' in integrations.text
    empty = await page.get(team_hooks)
    assert empty.status_code == 200, text(empty)[:300]
    created = await page.post(
        team_hooks,
        data={"csrf_token": csrf(empty), "url": HOOK, "events": ["incident.ended"], "request_key": "t1"},
    )
    assert created.status_code == 201, text(created)[:300]
    assert SHOWN_ONCE in text(created)
    # A team member who is not an admin sees nothing of them.
    alice = await sign_in(world, world.alice)
    assert (await alice.get(team_hooks)).status_code == 404


async def test_a_delivery_is_listed_and_sent_again_from_its_row(world: World) -> None:
    book = await create_playbook(world, world.alice, "Delivered")
    page = await sign_in(world, world.alice)
    async with WebhookReceiver() as receiver:
        empty = await page.get(listing(book["id"]))
        created = await page.post(
            listing(book["id"]),
            data={"csrf_token": csrf(empty), "url": receiver.url, "events": ["incident.started"], "request_key": "d1"},
        )
        assert created.status_code == 201, text(created)[:300]
        receiver.secret = secret(created)
        hook_id = (await rest_list(world, world.alice, book["id"])).json()[0]["id"]
        incident = await start_incident(world, world.alice, book["id"], "Delivered outage")
        await receiver.wait_for(lambda r: len(r.deliveries) == 1, what="the first delivery")
        deliveries_url = f"{listing(book['id'])}/{hook_id}/deliveries"
        shown = await eventually(
            lambda: page.get(deliveries_url),
            lambda r: '<span class="badge">delivered</span>' in r.text,
            what="the delivery listed as delivered",
        )
        assert f'href="/backstage/incidents/{incident["id"]}"' in shown.text
        assert "incident.started" in text(shown)
        event_id = re.search(r'name="event_id" value="([^"]+)"', shown.text)
        assert event_id
        again = await page.post(
            deliveries_url, data={"csrf_token": csrf(shown), "event_id": html.unescape(event_id[1]), "page": "0"}
        )
        assert again.status_code == 303
        assert again.headers["location"] == deliveries_url
        assert "Queued 1 event again." in text(await page.get(deliveries_url))
        await receiver.wait_for(lambda r: len(r.deliveries) == 2, what="the delivery sent again")
        assert receiver.bad_signatures == 0
        unknown = await page.post(deliveries_url, data={"csrf_token": csrf(shown), "event_id": "nosuchevent"})
        assert unknown.status_code == 303
        assert "Delivery not found." in text(await page.get(deliveries_url))


async def test_webhooks_are_exported_as_yaml_and_a_file_is_applied_with_new_secrets_shown_once(world: World) -> None:
    book = await create_playbook(world, world.alice, "As files")
    page = await sign_in(world, world.alice)
    empty = await page.get(listing(book["id"]))
    assert f'href="{listing(book["id"])}/export"' in empty.text
    document = f"webhooks:\n  - url: {HOOK}\n    events: [incident.started]\n    description: from a file\n"
    applied = await page.post(
        f"{listing(book['id'])}/import", data={"csrf_token": csrf(empty), "yaml": document, "prune": ""}
    )
    assert applied.status_code == 200, text(applied)[:300]
    assert "1 created, 0 changed, 0 unchanged" in text(applied)
    shown = re.findall(r'id="secret-[a-z0-9]+">(whsec_[^<]+)</code>', applied.text)
    assert len(shown) == 1
    exported = await page.get(f"{listing(book['id'])}/export")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert f"url: {HOOK}" in exported.text
    assert "whsec_" not in exported.text
    again = await page.get(listing(book["id"]))
    assert shown[0] not in again.text
    bad = document.replace(HOOK, "http://169.254.169.254/latest")
    refused = await page.post(f"{listing(book['id'])}/import", data={"csrf_token": csrf(again), "yaml": bad})
    assert refused.status_code == 422
    assert "The file was not applied" in text(refused)
    assert "line 2:" in text(refused)
    assert "The webhook was not created" not in text(refused)
    listed = (await rest_list(world, world.alice, book["id"])).json()
    assert [s["url"] for s in listed] == [HOOK]
    mallory = await sign_in(world, world.mallory)
    assert (await mallory.get(f"{listing(book['id'])}/export")).status_code == 404
