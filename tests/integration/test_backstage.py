"""The backstage over HTTP: sign-in through Mattermost OAuth, the same data and rules as the
REST API, every button the same update, CSRF and the session cookie, /docs offline.

The browser tests (tests/browser) drive the same pages in Chromium; these check the rules
without a browser, on the real stack.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx

from tests.harness import User, World, eventually
from tests.integration.backstage_helpers import csrf, sign_in, text


async def make_playbook(world: World, owner: User, **fields: Any) -> dict[str, Any]:
    body = {
        "team_id": world.team_id,
        "title": "Database outage",
        "member_ids": [owner.id],
        "checklists": [
            {"title": "Triage", "items": [{"title": "Page the DBA"}, {"title": "Check replication"}]},
            {"title": "Mitigate", "items": [{"title": "Fail over", "command": "/db failover"}]},
        ],
        **fields,
    }
    response = await world.api(owner).post("/api/v1/playbooks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def start_incident(
    world: World, reporter: User, playbook_id: str, name: str, description: str = ""
) -> dict[str, Any]:
    response = await world.api(reporter).post(
        "/api/v1/incidents",
        json={"team_id": world.team_id, "name": name, "description": description, "playbook_id": playbook_id},
    )
    assert response.status_code == 201, response.text
    incident_id = response.json()["id"]
    # Polled as the admin: a reporter's "not in the channel yet", read while the incident was
    # still inviting them, would stay cached for AUTH_CACHE_SECONDS and make them an assignee
    # the workflow refuses (a fact about Mattermost then, not about the backstage).
    ready = await eventually(
        lambda: world.api(world.admin).get(f"/api/v1/incidents/{incident_id}"),
        lambda r: r.json().get("channel_id") is not None,
        what="the incident's channel",
    )
    incident: dict[str, Any] = ready.json()
    channel = incident["channel_id"]
    await world.standin.wait_for(lambda: reporter.id in world.standin.channel_members(channel))
    return incident


async def test_sign_in_through_mattermost_oauth_and_out(world: World) -> None:
    page = await sign_in(world, world.bob)
    home = await page.get("/backstage")
    assert home.status_code == 303
    assert home.headers["location"] == f"/backstage/teams/{world.team_id}/incidents"
    cookie = next(c for c in page.cookies.jar if c.name == "backstage_session")
    assert cookie.path == "/backstage"
    assert cookie.has_nonstandard_attr("HttpOnly")
    listed = await page.get(home.headers["location"])
    assert f"@{world.bob.username}" in text(listed)
    assert len(world.standin.oauth_sessions(world.bob.id)) == 1
    out = await page.post("/backstage/logout", data={"csrf_token": csrf(listed)})
    assert out.status_code == 303
    # Signing out ends the session in Mattermost too: the token works nowhere any more.
    assert world.standin.oauth_sessions(world.bob.id) == []
    again = await page.get(home.headers["location"])
    assert again.status_code == 303
    assert again.headers["location"].startswith("/backstage/login?next=")


async def test_a_forged_or_foreign_oauth_state_signs_nobody_in(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.stack.api_url) as browser:
        forged = await browser.get("/backstage/oauth/callback", params={"code": "x", "state": "not.signed"})
        assert forged.status_code == 400
        assert "Sign in again" in text(forged)
        # A state made for another browser (its nonce cookie is not here) is refused too.
        started = await browser.get("/backstage/login/start")
        state = re.search(r"state=([^&]+)", started.headers["location"])
        assert state
        async with httpx.AsyncClient(base_url=world.stack.api_url) as other:
            stolen = await other.get("/backstage/oauth/callback", params={"code": "x", "state": state[1]})
        assert stolen.status_code == 400
        assert "backstage_session" not in browser.cookies


async def test_the_list_shows_what_the_api_lists_with_names(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Primary DB down " + "x" * 48)
    page = await sign_in(world, world.alice)
    url = f"/backstage/teams/{world.team_id}/incidents"
    listed = await eventually(lambda: page.get(url), lambda r: incident["id"] in r.text, what="the incident listed")
    row = text(listed)
    assert incident["name"] in row
    assert f"@{world.alice.username}" in row
    assert "Triage" in row
    assert "Ongoing" in row
    api = await world.api(world.alice).get("/api/v1/incidents", params={"team_id": world.team_id})
    assert f"{api.json()['total_count']} incident" in row
    # Filters: a search that matches nothing, an unknown commander (said, not ignored).
    none = await page.get(url, params={"search": "no such incident"})
    assert "No incidents match" in text(none)
    unknown = await page.get(url, params={"commander": "nobody-here"})
    assert "there is no user @nobody-here" in text(unknown)
    mine = await page.get(url, params={"commander": world.alice.username, "status": "ongoing", "sort": "name"})
    assert incident["id"] in mine.text
    # Playbook, started between (dates, both included), sort and paging, as the API does them.
    other = await start_incident(world, world.alice, book["id"], "A second one")
    day = incident["started_at"][:10]
    both = {"playbook_id": book["id"], "started_after": day, "started_before": day, "sort": "name", "per_page": "1"}
    first = await eventually(lambda: page.get(url, params=both), lambda r: "2 incidents" in text(r), what="both")
    assert other["id"] in first.text
    assert incident["id"] not in first.text
    assert "Page 1 of 2" in text(first)
    second = await page.get(url, params={**both, "page": "1"})
    assert incident["id"] in second.text
    before = await page.get(url, params={"started_before": "2000-01-01"})
    assert "No incidents match" in text(before)
    wrong = await page.get(url, params={"started_after": "yesterday"})
    assert "a date such as 2026-11-30" in text(wrong)


async def test_a_person_sees_exactly_what_the_rest_api_shows_them(world: World) -> None:
    book = await make_playbook(world, world.alice)  # private incidents by default
    incident = await start_incident(world, world.alice, book["id"], "Private matter")
    checks = {
        # (who, backstage path, REST path)
        "other team": (
            world.mallory,
            f"/backstage/teams/{world.team_id}/incidents",
            f"/api/v1/incidents?team_id={world.team_id}",
        ),
        "non-member of a private incident": (
            world.bob,
            f"/backstage/incidents/{incident['id']}",
            f"/api/v1/incidents/{incident['id']}",
        ),
        "non-member of a playbook": (
            world.bob,
            f"/backstage/playbooks/{book['id']}",
            f"/api/v1/playbooks/{book['id']}",
        ),
    }
    for case, (user, page_path, api_path) in checks.items():
        page = await sign_in(world, user)
        shown = await page.get(page_path)
        api = await world.api(user).get(api_path)
        assert api.status_code == 404, case
        assert shown.status_code == 404, case
        assert api.json()["message"] in text(shown), case
    bob = await sign_in(world, world.bob)
    listed = await bob.get(f"/backstage/teams/{world.team_id}/incidents")
    assert incident["id"] not in listed.text
    stats = await bob.get(f"/backstage/teams/{world.team_id}/stats", params={"playbook_id": book["id"]})
    assert stats.status_code == 404


async def test_buttons_send_the_same_updates_and_reach_mattermost(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Checkout errors")
    page = await sign_in(world, world.alice)
    url = f"/backstage/incidents/{incident['id']}"
    shown = await page.get(url)
    assert shown.status_code == 200
    token = csrf(shown)
    form = {"csrf_token": token, "request_key": "check-1", "stage": "0", "item": "0", "state": "done"}
    checked = await page.post(f"{url}/commands/set_item_state", data=form)
    assert checked.status_code == 303
    # The same form sent again (a double click) applies once.
    assert (await page.post(f"{url}/commands/set_item_state", data=form)).status_code == 303
    record = (await world.api(world.alice).get(f"/api/v1/incidents/{incident['id']}")).json()
    assert record["checklists"][0]["items"][0]["state"] == "done"
    assert sum(1 for e in record["timeline"] if e["type"] == "item_state_changed") == 1
    channel = record["channel_id"]
    await world.standin.wait_for(lambda: any("Page the DBA" in p["message"] for p in world.standin.posts(channel)))
    after = await page.get(url)
    assert "Marked 'Page the DBA' as done." in text(after)
    # Unchecking is the same update with the other state.
    reopened = await page.post(
        f"{url}/commands/set_item_state", data=form | {"request_key": "uncheck-1", "state": "open"}
    )
    assert reopened.status_code == 303
    record = (await world.api(world.alice).get(f"/api/v1/incidents/{incident['id']}")).json()
    assert record["checklists"][0]["items"][0]["state"] == "open"
    await page.post(f"{url}/commands/set_item_state", data=form | {"request_key": "check-2"})

    assigned = await page.post(
        f"{url}/commands/assign_item",
        data={"csrf_token": token, "request_key": "a-1", "stage": "0", "item": "1", "assignee_id": world.alice.id},
    )
    assert assigned.status_code == 303
    flash = text(await page.get(url))
    assert "ssigned" in flash, flash[:400]
    # Moving past an open item asks first, naming the stage; confirming resends with force.
    asked = await page.post(
        f"{url}/commands/change_stage",
        data={"csrf_token": token, "request_key": "s-1", "direction": "next", "from_stage": "0"},
    )
    assert asked.status_code == 409
    assert "Move on" in text(asked)
    assert 'name="from_stage" value="0"' in asked.text
    moved = await page.post(
        f"{url}/commands/change_stage",
        data={"csrf_token": token, "request_key": "s-2", "direction": "next", "force": "1", "from_stage": "0"},
    )
    assert moved.status_code == 303
    record = (await world.api(world.alice).get(f"/api/v1/incidents/{incident['id']}")).json()
    assert record["active_stage"] == 1
    assert record["checklists"][0]["items"][1]["assignee_id"] == world.alice.id
    # A stale confirmation (the incident moved on) is refused by the workflow, not applied.
    stale = await page.post(
        f"{url}/commands/change_stage",
        data={"csrf_token": token, "request_key": "s-3", "direction": "next", "force": "1", "from_stage": "0"},
    )
    assert stale.status_code == 303
    assert (await world.api(world.alice).get(f"/api/v1/incidents/{incident['id']}")).json()["active_stage"] == 1
    # A status update with no message is the API's field error, shown by the field.
    empty = await page.post(
        f"{url}/commands/post_status_update", data={"csrf_token": token, "message": "  ", "form": "post-update"}
    )
    assert empty.status_code == 422
    assert 'aria-invalid="true" aria-describedby="post-update-error"' in empty.text


async def act(page: httpx.AsyncClient, url: str, token: str, name: str, form: str, **fields: Any) -> httpx.Response:
    """One of the incident page's controls, sent as the browser sends it (a request key per form)."""
    data = {"csrf_token": token, "request_key": secrets.token_hex(8), "form": form, **fields}
    return await page.post(f"{url}/commands/{name}", data=data)


async def said(page: httpx.AsyncClient, answer: httpx.Response) -> str:
    """What the person reads after a control: the page it leads to (with its notice), or the page itself."""
    if answer.status_code == 303:
        return text(await page.get(answer.headers["location"]))
    return text(answer)


async def record_of(world: World, incident_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await world.api(world.alice).get(f"/api/v1/incidents/{incident_id}")).json()
    return found


async def applied(
    world: World, page: httpx.AsyncClient, url: str, token: str, name: str, form: str, **fields: Any
) -> dict[str, Any]:
    """A control the incident page at `url` must apply (it answers 303, back to the page): the
    incident's record after it."""
    answer = await act(page, url, token, name, form, **fields)
    assert answer.status_code == 303, answer.text
    return await record_of(world, url.removeprefix("/backstage/incidents/"))


async def test_the_people_channel_and_reminder_controls_reach_the_workflow(world: World) -> None:
    book = await make_playbook(world, world.alice, invited_user_ids=[world.bob.id], reminder_timer_default_seconds=900)
    incident = await start_incident(world, world.alice, book["id"], "Controls")
    channel = incident["channel_id"]
    await world.standin.wait_for(lambda: world.bob.id in world.standin.channel_members(channel))
    page = await sign_in(world, world.alice)
    url = f"/backstage/incidents/{incident['id']}"
    shown = await eventually(lambda: page.get(url), lambda r: f"@{world.bob.username}</option>" in r.text, what="bob")
    token = csrf(shown)
    # Each control posts its command's fields by their REST names; it offers the incident's
    # people, the team's people not in it yet, and the channels the person can announce in.
    assert '<select id="commander-who" name="user_id"' in shown.text
    assert f'<option value="{world.bob.id}">@{world.bob.username}</option>' in shown.text
    assert f'<option value="@{world.carol.username}">' in shown.text
    assert f'<option value="@{world.alice.username}">' not in shown.text
    assert f'<option value="{world.town_square["id"]}">~town-square' in shown.text

    handed = await act(page, url, token, "change_commander", "commander", user_id=world.bob.id)
    assert handed.status_code == 303
    assert f"@{world.bob.username} is now the commander." in await said(page, handed)
    assert (await record_of(world, incident["id"]))["commander_id"] == world.bob.id
    # Refusals read as in Mattermost: beside the form for a wrong value, as a notice for a conflict.
    again = await act(page, url, token, "change_commander", "commander", user_id=world.bob.id)
    assert f"@{world.bob.username} is already the commander." in await said(page, again)
    outsider = await act(page, url, token, "change_commander", "commander", user_id=world.mallory.id)
    assert f"@{world.mallory.username} must be part of this channel to make them commander." in await said(
        page, outsider
    )
    nobody_at_all = await act(page, url, token, "change_commander", "commander", user_id="")
    assert nobody_at_all.status_code == 422
    assert 'id="commander-error"' in nobody_at_all.text

    invited = await act(
        page, url, token, "invite_members", "invite", user_ids=f"@{world.carol.username} {world.dave.id}"
    )
    assert invited.status_code == 303
    await eventually(
        lambda: record_of(world, incident["id"]),
        lambda r: {world.carol.id, world.dave.id} <= set(r["member_ids"]),
        what="carol and dave in the incident",
    )
    nobody = await act(page, url, token, "invite_members", "invite", user_ids="@nobody-here")
    assert nobody.status_code == 422
    assert "There is no user @nobody-here." in text(nobody)
    assert 'value="@nobody-here" aria-invalid="true" aria-describedby="invite-error"' in nobody.text

    # A multiple choice of channels posts channel_ids once per channel.
    both = [world.town_square["id"], world.channels["off-topic"]["id"]]
    announced = await act(page, url, token, "announce", "announce", channel_ids=both)
    assert announced.status_code == 303, announced.text
    await world.standin.wait_for(
        lambda: all(any("Controls" in p["message"] for p in world.standin.posts(c)) for c in both)
    )
    unseen = await act(page, url, token, "announce", "announce", channel_ids="~no-such-channel")
    assert unseen.status_code == 422
    assert "There is no channel ~no-such-channel" in text(unseen)

    # The reminder: a preset, a custom number of minutes, one out of bounds, a snooze, off.
    hourly = await applied(world, page, url, token, "set_reminder", "reminder", seconds="3600")
    assert hourly["reminder_seconds"] == 3600
    custom = await applied(world, page, url, token, "set_reminder", "reminder-custom", minutes="45")
    assert custom["reminder_seconds"] == 2700
    too_long = await act(page, url, token, "set_reminder", "reminder-custom", minutes="20000")
    assert too_long.status_code == 422
    assert "at most 7d" in text(too_long)
    assert 'id="reminder-custom-error"' in too_long.text
    before = (await record_of(world, incident["id"]))["next_reminder_at"]
    snoozed = await applied(world, page, url, token, "snooze_reminder", "snooze", seconds="14400")
    assert snoozed["next_reminder_at"] > before
    off = await applied(world, page, url, token, "set_reminder", "reminder", seconds="0")
    assert off["reminder_seconds"] == 0
    assert "every " not in text(await page.get(url)).split("Update reminder")[1][:40]
    late = await act(page, url, token, "snooze_reminder", "snooze", seconds="1800")
    assert "The status update reminder is off for this incident." in await said(page, late)


async def test_the_checklist_controls_edit_items_and_run_their_commands(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Checklist controls")
    page = await sign_in(world, world.alice)
    url = f"/backstage/incidents/{incident['id']}"
    token = csrf(await page.get(url))

    def titles(record: dict[str, Any], stage: int = 0) -> list[str]:
        return [item["title"] for item in record["checklists"][stage]["items"]]

    added = await act(
        page,
        url,
        token,
        "add_item",
        "add-0",
        stage="0",
        title="Share the summary",
        command="/incident info",
        back="stage-0",
    )
    assert added.status_code == 303
    assert added.headers["location"] == f"{url}#stage-0"
    assert titles(await record_of(world, incident["id"])) == ["Page the DBA", "Check replication", "Share the summary"]
    wrong = await act(page, url, token, "add_item", "add-0", stage="0", title="Fail over", command="db failover")
    assert wrong.status_code == 422
    assert 'id="add-0-error"' in wrong.text
    assert 'value="db failover" aria-invalid="true"' in wrong.text

    # Editing opens in place (a link), keeps what is typed on a refusal, and clears a description.
    first = (await record_of(world, incident["id"]))["checklists"][0]["items"][0]
    editing = await page.get(url, params={"edit": first["id"]})
    assert 'id="edit-0-0-title"' in editing.text
    refused = await act(page, url, token, "edit_item", "edit-0-0", stage="0", item="0", edit=first["id"],
                        title="", description="Call +1 555 0100", command="")  # fmt: skip
    assert refused.status_code == 422
    assert 'id="edit-0-0-error"' in refused.text
    assert "Call +1 555 0100</textarea>" in refused.text
    edited = await act(page, url, token, "edit_item", "edit-0-0", stage="0", item="0", title="Page the on-call DBA",
                       description="", command="")  # fmt: skip
    assert edited.status_code == 303
    assert edited.headers["location"] == f"{url}"
    record = await applied(world, page, url, token, "move_item", "move-0-2", stage="0", item="2", to_position="0")
    assert titles(record) == ["Share the summary", "Page the on-call DBA", "Check replication"]
    assert record["checklists"][0]["items"][1]["description"] == ""
    removed = await applied(world, page, url, token, "remove_item", "remove-0-2", stage="0", item="2")
    assert titles(removed) == ["Share the summary", "Page the on-call DBA"]

    # Run: the item's slash command runs as the person, in the incident channel; Mattermost's
    # answer is shown and the run is on the timeline.
    ran = await act(page, url, token, "run_item_command", "run-0-0", stage="0", item="0", back="item-0-0")
    assert ran.status_code == 303
    assert ran.headers["location"] == f"{url}#item-0-0"
    after = await said(page, ran)
    assert "Recorded that /incident info ran. Mattermost answered: #### Incident: Checklist controls" in after
    assert "@" + world.alice.username + " ran /incident info for Share the summary" in after
    replies = world.standin.ephemeral_posts(user_id=world.alice.id, channel_id=incident["channel_id"])
    assert replies[-1]["post"]["message"].startswith("#### Incident: Checklist controls")
    # Mattermost refusing the command is said (nothing answers /db here); an item without one is refused.
    mitigate = await act(page, url, token, "run_item_command", "run-1-0", stage="1", item="0")
    assert "Mattermost did not run it" in await said(page, mitigate)
    none = await act(page, url, token, "run_item_command", "run-0-1", stage="0", item="1")
    assert "has no slash command to run" in await said(page, none)

    # Moving to a stage: past open items, the page asks first (the command table's confirmation).
    asked = await act(page, url, token, "change_stage", "stage-to-1", stage="1", from_stage="0")
    assert asked.status_code == 409
    assert "Items still open" in text(asked)
    assert 'name="force" value="1"' in asked.text
    confirmed = await applied(
        world, page, url, token, "change_stage", "confirm-form", stage="1", from_stage="0", force="1"
    )
    assert confirmed["active_stage"] == 1
    # Ending asks too; the yes ends it, and the page then offers the restart.
    ending = await act(page, url, token, "end_incident", "end", confirmed="0")
    assert ending.status_code == 409
    assert "End incident?" in text(ending)
    assert 'name="confirmed" value="1"' in ending.text
    ended = await applied(world, page, url, token, "end_incident", "confirm-form", confirmed="1")
    assert ended["status"] == "ended"
    assert ">Restart incident</button>" in (await page.get(url)).text


async def test_the_timeline_is_newest_first_with_update_texts_and_a_filter_by_kind(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Ordered")
    api = world.api(world.alice)
    for message in ("First look: https://grafana.example.com/d/" + "x" * 80, "Replica promoted"):
        answer = await api.post(f"/api/v1/incidents/{incident['id']}/status-updates", json={"message": message})
        assert answer.status_code == 200
    checked = await api.put(f"/api/v1/incidents/{incident['id']}/checklists/0/items/0/state", json={"state": "done"})
    assert checked.status_code == 200, checked.text
    page = await sign_in(world, world.alice)
    url = f"/backstage/incidents/{incident['id']}"
    everything = text(await page.get(url)).split("Timeline All", 1)[1]
    order = [everything.index(s) for s in ("marked Page the DBA", "Replica promoted", "First look", "started the")]
    assert order == sorted(order)
    assert everything.startswith(" (4) Status updates (2) Checklist (1) Start and end (1)")
    updates = text(await page.get(url, params={"kind": "updates"})).split("Timeline All", 1)[1]
    assert "Replica promoted" in updates
    assert "First look: https://grafana.example.com/d/" in updates
    assert "marked Page the DBA" not in updates
    assert "started the incident" not in updates
    # Live, the filter holds: the page polls with it.
    live = await page.get(f"{url}/live", params={"kind": "updates", "digest": "none"})
    assert "started the incident" not in text(live)


async def test_starting_from_the_list_starts_as_rest_does(world: World) -> None:
    book = await make_playbook(world, world.alice, description="x")
    page = await sign_in(world, world.alice)
    listed = await page.get(f"/backstage/teams/{world.team_id}/incidents")
    # A first visit: nothing yet, filters folded, a way to start.
    assert "No incidents yet." in text(listed)
    assert '<details class="filter-box" >' in listed.text
    assert f'href="/backstage/teams/{world.team_id}/incidents/new"' in listed.text
    assert '<details class="filter-box" open>' in (await page.get(listed.url, params={"status": "ended"})).text
    form = f"/backstage/teams/{world.team_id}/incidents/new"
    shown = await eventually(lambda: page.get(form), lambda r: book["id"] in r.text, what="the playbook offered")
    fields = {"csrf_token": csrf(shown), "request_key": "start-1", "playbook_id": book["id"], "name": "Started here",
              "description": "From the backstage"}  # fmt: skip
    started = await page.post(form, data=fields)
    assert started.status_code == 303, started.text
    incident_id = started.headers["location"].rsplit("/", 1)[-1]
    # Sent twice (a double click), one incident.
    again = await page.post(form, data=fields)
    assert again.headers["location"] == started.headers["location"]
    record = await record_of(world, incident_id)
    assert (record["name"], record["description"], record["playbook_id"]) == (
        "Started here", "From the backstage", book["id"]
    )  # fmt: skip
    assert record["reporter_id"] == record["commander_id"] == world.alice.id
    assert "Started here" in text(await page.get(started.headers["location"]))
    # Refusals are the start's own, on the form with what was typed.
    unnamed = await page.post(form, data=fields | {"request_key": "start-2", "name": " "})
    assert unnamed.status_code == 422
    assert 'aria-invalid="true" aria-describedby="err-name"' in unnamed.text
    assert "From the backstage</textarea>" in unnamed.text
    bob = await sign_in(world, world.bob)
    bobs_form = await bob.get(form)
    foreign = await bob.post(form, data=fields | {"csrf_token": csrf(bobs_form), "request_key": "start-3"})
    assert foreign.status_code == 404
    assert "Playbook not found." in text(foreign)
    outsider = await sign_in(world, world.mallory)
    assert (await outsider.get(form)).status_code == 404


async def test_the_dashboard_says_what_is_missing_instead_of_empty_charts(world: World) -> None:
    page = await sign_in(world, world.alice)
    empty = text(await page.get(f"/backstage/teams/{world.team_id}/stats"))
    assert "No incidents started in this window." in empty
    assert "No ended incidents yet: time to resolution shows once one ends." in empty
    assert "No status updates yet." in empty
    book = await make_playbook(world, world.alice)
    await start_incident(world, world.alice, book["id"], "Counted")
    await eventually(
        lambda: world.api(world.alice).get("/api/v1/stats", params={"team_id": world.team_id}),
        lambda r: r.json()["total"] == 1,
        what="the incident counted",
    )
    one = await page.get(f"/backstage/teams/{world.team_id}/stats")
    assert 'id="chart-started"' in one.text
    assert "No ended incidents yet" in text(one)


async def test_the_live_region_changes_when_mattermost_changes_the_incident(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Latency")
    page = await sign_in(world, world.alice)
    live = f"/backstage/incidents/{incident['id']}/live"

    async def unchanged() -> str | None:
        """The region's digest when asking again with it answers "nothing new" (204). Right after
        the start the incident may still be changing (its checklist post, its people joining)."""
        first = await page.get(live, params={"digest": "none"})
        assert first.status_code == 200
        digest = first.headers["x-digest"]
        return digest if (await page.get(live, params={"digest": digest})).status_code == 204 else None

    digest = await eventually(unchanged, lambda found: found is not None, what="the live region to settle")
    assert digest is not None
    reply = await world.slash(world.alice, "check 2", channel_id=incident["channel_id"])
    assert "done" in reply.get("text", "").lower()
    changed = await page.get(live, params={"digest": digest})
    assert changed.status_code == 200
    assert 'aria-pressed="true"' in changed.text


async def test_state_changing_forms_need_the_sessions_csrf_token(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "CSRF")
    page = await sign_in(world, world.alice)
    url = f"/backstage/incidents/{incident['id']}"
    for token in ("", "forged"):
        refused = await page.post(
            f"{url}/commands/set_item_state", data={"csrf_token": token, "stage": "0", "item": "0", "state": "done"}
        )
        assert refused.status_code == 403
        assert "Reload the page" in text(refused)
    record = (await world.api(world.alice).get(f"/api/v1/incidents/{incident['id']}")).json()
    assert record["checklists"][0]["items"][0]["state"] == "open"
    # Another person's session token does not fit this session.
    other = await sign_in(world, world.bob)
    foreign = csrf(await other.get(f"/backstage/teams/{world.team_id}/incidents"))
    refused = await page.post(f"{url}/commands/end_incident", data={"csrf_token": foreign, "confirmed": "1"})
    assert refused.status_code == 403


async def test_playbook_editing_shows_the_apis_field_errors_conflicts_and_history(world: World) -> None:
    book = await make_playbook(world, world.alice)
    page = await sign_in(world, world.alice)
    url = f"/backstage/playbooks/{book['id']}"
    shown = await page.get(url)
    assert shown.status_code == 200
    form: dict[str, str] = {
        "csrf_token": csrf(shown),
        "version": "1",
        "title": "Database outage",
        "members": world.alice.username,
        "default_commander": "nobody-like-this",
        "reminder_minutes": "15",
        "checklists[0].title": "Triage",
        "checklists[0].items[0].title": "Page the DBA",
        "checklists[0].items[0].command": "page dba",
    }
    refused = await page.post(url, data=form)
    assert refused.status_code == 422
    body = text(refused)
    assert "must be a slash command" in body
    # The summary names the field as people read it.
    assert ">Stage 1, item 1, slash command</a>: must be a slash command" in refused.text
    assert "no such user: @nobody-like-this" in body
    assert 'id="checklists[0].items[0].command"' in refused.text
    # The API's own checks (people must be in the team) are the page's too.
    form |= {"default_commander": world.mallory.username, "checklists[0].items[0].command": "/page dba"}
    refused = await page.post(url, data=form)
    assert refused.status_code == 422
    assert f"@{world.mallory.username} is not a member of this team" in text(refused)
    assert 'aria-invalid="true" aria-describedby="err-default_commander"' in refused.text
    form |= {"default_commander": ""}
    saved = await page.post(url, data=form)
    assert saved.status_code == 303
    api = (await world.api(world.alice).get(f"/api/v1/playbooks/{book['id']}")).json()
    assert api["version"] == 2
    assert api["reminder_timer_default_seconds"] == 900
    assert [s["title"] for s in api["checklists"]] == ["Triage"]
    # Saving an edit of version 1 again: the conflict is said, the draft kept.
    conflict = await page.post(url, data=form | {"title": "Stale edit"})
    assert conflict.status_code == 409
    assert "Someone else saved this playbook" in text(conflict)
    assert 'value="Stale edit"' in conflict.text
    history = await page.get(f"{url}/history")
    assert "created" in text(history)
    exported = await page.get(f"{url}/export")
    assert exported.headers["content-type"].startswith("application/yaml")
    assert "Page the DBA" in exported.text
    imported = await page.post(
        f"/backstage/teams/{world.team_id}/playbooks/import",
        data={
            "csrf_token": csrf(shown),
            "yaml": exported.text.replace("title: Database outage", "title: Copy"),
        },
    )
    assert imported.status_code == 303
    broken = await page.post(
        f"/backstage/teams/{world.team_id}/playbooks/import", data={"csrf_token": csrf(shown), "yaml": "title: [x"}
    )
    assert broken.status_code == 422
    assert "line 1" in text(broken)


async def test_statistics_are_the_apis_numbers(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Counted")
    page = await sign_in(world, world.alice)
    api = await eventually(
        lambda: world.api(world.alice).get("/api/v1/stats", params={"team_id": world.team_id}),
        lambda r: r.json()["total"] >= 1,
        what="the incident counted",
    )
    shown = await page.get(f"/backstage/teams/{world.team_id}/stats")
    assert shown.status_code == 200
    assert re.search(r'id="tile-total">\s*' + str(api.json()["total"]), shown.text)
    assert re.search(r'id="tile-ongoing">\s*' + str(api.json()["ongoing"]), shown.text)
    assert '"started": [' in shown.text
    day = incident["started_at"][:10]
    one_day = await page.get(f"/backstage/teams/{world.team_id}/stats", params={"since": day, "until": day})
    assert re.search(r'id="tile-total">\s*' + str(api.json()["total"]), one_day.text)
    assert f'"days": ["{day}"]' in one_day.text
    backwards = await page.get(f"/backstage/teams/{world.team_id}/stats", params={"since": day, "until": "2000-01-01"})
    assert "the first not after the last" in text(backwards)


async def test_the_channel_header_links_to_the_incident_page_and_the_web_ui(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Header")
    url = f"{world.stack.api_url}/backstage/incidents/{incident['id']}"
    await world.standin.wait_for(
        lambda: url in str((world.standin.get_channel(incident["channel_id"]) or {}).get("header"))
    )
    header = str((world.standin.get_channel(incident["channel_id"]) or {})["header"])
    assert "localhost:8233" in header


async def test_docs_work_offline_with_the_bearer_scheme(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.stack.api_url) as http:
        docs = await http.get("/docs")
        redoc = await http.get("/redoc")
        spec = (await http.get("/openapi.json")).json()
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text + redoc.text)
        assert assets
        for asset in assets:
            assert asset.startswith("/docs-assets/"), asset
            assert (await http.get(asset)).status_code == 200
    assert "cdn" not in (docs.text + redoc.text).lower()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, operations in spec["paths"].items():
        if path.startswith("/api/v1"):
            for operation in operations.values():
                assert operation["security"] == [{"bearerAuth": []}], path
                names = [p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"]
                assert "authorization" not in names, path
