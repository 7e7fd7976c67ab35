"""On-call schedules end to end: REST (who may read and change them, what is refused and why),
who is on call across a daylight-saving change, `/incident oncall` through the stand-in, the
YAML round trip, the backstage page, and the handoff told by direct message, on a server whose
time skips ahead for the schedule's workflow (no waiting in the test)."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import TimeSkipper

from models.schedules import ChangeSchedule, Rotation, Schedule, ScheduleState, schedule_workflow_id
from tests.harness import User, World, eventually, own_server, own_worker, short_history_server
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.test_alert_intake import team_admin
from workflows.schedule_workflow import ScheduleWorkflow


def body(world: World, **changes: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "team_id": world.team_id,
        "name": "payments-primary",
        "time_zone": "Europe/Berlin",
        "rotations": [
            {"members": [world.alice.id, world.bob.id], "shift": "1w", "handoff": "Mon 09:00", "start": "2026-03-16"}
        ],
    }
    made.update(changes)
    return made


async def create(world: World, admin: User, **changes: Any) -> dict[str, Any]:
    async with world.api(admin) as api:
        made = await api.post("/api/v1/schedules", json=body(world, **changes))
    assert made.status_code == 201, made.text
    schedule: dict[str, Any] = made.json()
    return schedule


async def listed(world: World, user: User) -> list[str]:
    async with world.api(user) as api:
        answer = await api.get("/api/v1/schedules", params={"team_id": world.team_id})
    assert answer.status_code == 200, answer.text
    return [s["id"] for s in answer.json()]


async def test_schedules_through_rest_with_access(world: World) -> None:
    tess = team_admin(world)
    schedule = await create(world, tess)
    sid = schedule["id"]
    assert schedule["name"] == "payments-primary"
    assert schedule["created_by"] == tess.id
    await eventually(lambda: listed(world, world.alice), lambda ids: sid in ids, what="the schedule to be listed")

    api = world.api(world.alice)
    read = await api.get(f"/api/v1/schedules/{sid}")
    assert read.status_code == 200
    assert read.json()["rotations"][0]["members"] == [world.alice.id, world.bob.id]

    # A member who is not a team admin reads but does not change.
    changed = body(world, name="payments")
    refused = await api.put(f"/api/v1/schedules/{sid}", json=changed)
    assert refused.status_code == 403
    assert "team admins" in refused.json()["message"]
    assert (await api.delete(f"/api/v1/schedules/{sid}")).status_code == 403

    # Someone outside the team learns nothing, on every route.
    outsider = world.api(world.mallory)
    for method, path, payload in [
        ("GET", f"/api/v1/schedules/{sid}", None),
        ("PUT", f"/api/v1/schedules/{sid}", changed),
        ("DELETE", f"/api/v1/schedules/{sid}", None),
        ("GET", f"/api/v1/schedules/{sid}/oncall", None),
        ("GET", f"/api/v1/schedules?team_id={world.team_id}", None),
        ("GET", f"/api/v1/schedules/export?team_id={world.team_id}", None),
    ]:
        answer = await outsider.request(method, path, json=payload)
        assert answer.status_code == 404, (method, path, answer.text)
    created = await outsider.post("/api/v1/schedules", json=body(world, name="other"))
    assert created.status_code == 404
    unknown = await api.get("/api/v1/schedules/abcdefghij")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == (await outsider.get(f"/api/v1/schedules/{sid}")).json()["message"]

    # The admin changes it; the team cannot change.
    admin = world.api(tess)
    updated = await admin.put(f"/api/v1/schedules/{sid}", json=changed)
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "payments"
    moved = await admin.put(f"/api/v1/schedules/{sid}", json={**changed, "team_id": "z" * 26})
    assert moved.status_code == 422
    assert "team_id" in moved.json()["fields"]

    # The name is unique in the team, whatever its case.
    await eventually(
        lambda: admin.get(f"/api/v1/schedules?team_id={world.team_id}"),
        lambda answer: [s["name"] for s in answer.json()] == ["payments"],
        what="the new name to be listed",
    )
    clash = await admin.post("/api/v1/schedules", json=body(world, name="PAYMENTS"))
    assert clash.status_code == 422
    assert "already has a schedule named" in clash.json()["fields"]["name"]

    deleted = await admin.delete(f"/api/v1/schedules/{sid}")
    assert deleted.status_code == 204
    assert (await api.get(f"/api/v1/schedules/{sid}")).status_code == 404
    assert (await admin.delete(f"/api/v1/schedules/{sid}")).status_code == 404
    await eventually(lambda: listed(world, world.alice), lambda ids: sid not in ids, what="the schedule to go")


async def test_a_repeated_creation_makes_one_schedule(world: World) -> None:
    """A client's retry (the same Idempotency-Key) and a double click on the backstage's form
    (the same request key) each make one schedule; another caller's same key is their own."""
    tess = team_admin(world)
    async with world.api(tess) as api:
        headers = {"Idempotency-Key": "make-primary"}
        first = await api.post("/api/v1/schedules", json=body(world, name="retried"), headers=headers)
        again = await api.post("/api/v1/schedules", json=body(world, name="retried"), headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    async with world.api(world.admin) as api:
        theirs = await api.post("/api/v1/schedules", json=body(world, name="theirs"), headers=headers)
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != first.json()["id"]
    page = await sign_in(world, tess)
    shown = await page.get(f"/backstage/teams/{world.team_id}/schedules")
    key = re.search(r'name="request_key" value="([^"]+)"', shown.text)
    assert key is not None
    spec = f"name: clicked\ntime_zone: UTC\nrotations:\n  - members: [{world.bob.username}]\n    shift: 1d\n"
    spec += "    handoff: '09:00'\n    start: '2026-12-07'\n"
    form = {"csrf_token": csrf(shown), "request_key": key[1], "spec": spec}
    for _ in range(2):
        assert (await page.post(f"/backstage/teams/{world.team_id}/schedules", data=form)).status_code == 303

    async def names() -> list[str]:
        async with world.api(tess) as api:
            return [s["name"] for s in (await api.get("/api/v1/schedules", params={"team_id": world.team_id})).json()]

    shown_names = await eventually(names, lambda n: {"retried", "theirs", "clicked"} <= set(n), what="all listed")
    assert sorted(shown_names).count("retried") == 1
    assert shown_names.count("clicked") == 1


async def test_invalid_schedules_are_refused_with_their_fields(world: World) -> None:
    tess = team_admin(world)
    api = world.api(tess)
    rotation = {"members": [world.alice.id], "shift": "1d", "handoff": "09:00", "start": "2026-03-16"}
    cases = [
        (body(world, time_zone="Mars/Olympus"), "time_zone", "IANA time zone"),
        (body(world, rotations=[{**rotation, "shift": "30m"}]), "rotations[0].shift", "shift"),
        (body(world, rotations=[{**rotation, "handoff": "25:00"}]), "rotations[0].handoff", "handoff"),
        (body(world, rotations=[{**rotation, "members": [world.mallory.id]}]), "rotations[0].members[0]", "member"),
        (body(world, rotations=[{**rotation, "members": ["q" * 26]}]), "rotations[0].members[0]", "no user"),
        (
            body(
                world,
                overrides=[{"user_id": world.alice.id, "from": "2026-03-16T10:00:00Z", "to": "2026-03-16T09:00:00Z"}],
            ),
            "overrides[0]",
            "before",
        ),
        (body(world, channel_id="c" * 26), "channel_id", "channel"),
    ]
    for payload, field, words in cases:
        answer = await api.post("/api/v1/schedules", json=payload)
        assert answer.status_code == 422, (field, answer.text)
        fields = answer.json()["fields"]
        assert field in fields, (field, fields)
        assert words in fields[field], (field, fields)


async def test_who_is_on_call_across_a_daylight_saving_change(world: World) -> None:
    schedule = await create(world, team_admin(world))
    api = world.api(world.carol)

    async def oncall(at: str) -> dict[str, Any]:
        answer = await api.get(f"/api/v1/schedules/{schedule['id']}/oncall", params={"at": at})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    # Berlin moves to summer time on Sunday 29 March 2026: Monday's handoff stays 09:00 local.
    before = await oncall("2026-03-30T06:59:00Z")
    assert before["oncall"] == [{"user_id": world.bob.id, "username": world.bob.username}]
    assert [h["at"] for h in before["next_handoffs"][:2]] == ["2026-03-30T07:00:00Z", "2026-04-06T07:00:00Z"]
    assert before["next_handoffs"][0]["outgoing"] == [world.bob.id]
    assert before["next_handoffs"][0]["incoming"] == [world.alice.id]
    assert len(before["next_handoffs"]) == 5
    after = await oncall("2026-03-30T09:00:00+02:00")
    assert after["oncall"] == [{"user_id": world.alice.id, "username": world.alice.username}]
    winter = await oncall("2026-03-23T08:00:00Z")  # 09:00 in Berlin, winter time
    assert winter["oncall"][0]["user_id"] == world.bob.id
    for at in ("yesterday", "9999-12-31T23:00:00-05:00", "1970-01-01T00:00:00Z"):
        bad = await api.get(f"/api/v1/schedules/{schedule['id']}/oncall", params={"at": at})
        assert bad.status_code == 422, (at, bad.text)
        assert "at" in bad.json()["fields"]


async def test_a_handoff_is_told_by_direct_message(world: World) -> None:
    """The schedule's workflow on a server that lets its time skip ahead: a day passes in a moment."""
    now = datetime.now(UTC)
    soon = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    schedule = Schedule(
        id="handoffabc",
        team_id=world.team_id,
        name="handoff",
        time_zone="UTC",
        rotations=[
            Rotation(
                members=[world.alice.id, world.bob.id], shift="1d", handoff=soon.strftime("%H:%M"), start=soon.date()
            )
        ],
        channel_id=world.town_square["id"],
    )
    skipping = {"frontend.WorkflowTimeSkippingEnabled": "true"}
    async with own_server(dynamic_config=skipping) as (_, client), own_worker(world, client):
        handle = await client.start_workflow(
            ScheduleWorkflow.run,
            ScheduleState(schedule=schedule, told_until=now),
            id=schedule_workflow_id(schedule.id),
            task_queue=world.stack.settings.temporal_task_queue,
        )
        await TimeSkipper(client).fast_forward(handle, timedelta(days=1, hours=3))
        bot = world.stack.bot["id"]

        async def dm(user: User) -> list[str]:
            channel = world.standin.direct_channel(bot, user.id)
            if channel is None:
                return []
            driver = world.driver(user)
            try:
                page = await driver.posts.get_posts_for_channel(channel["id"])
            finally:
                await driver.close()
            return [page["posts"][pid]["message"] for pid in page["order"]]

        bob_dms = await eventually(lambda: dm(world.bob), bool, what="bob to be told he is on call")
        assert "You are now on call for **handoff**" in bob_dms[0]
        alice_dms = await eventually(lambda: dm(world.alice), bool, what="alice to be told her shift ended")
        assert "Your on-call shift for **handoff** ended" in alice_dms[0]
        assert f"@{world.bob.username}" in alice_dms[0]
        posts = await eventually(
            lambda: _channel_posts(world),
            lambda found: any("On-call handoff for **handoff**" in m for m in found),
            what="the channel to be told",
        )
        assert len([m for m in posts if "On-call handoff" in m]) == 1
        assert len(bob_dms) == 1


async def test_handoffs_across_a_daylight_saving_change_keep_their_local_time(world: World) -> None:
    """Time skips months ahead, across Berlin's change to summer time on Sunday 28 March 2027:
    the Monday 09:00 handoff is told at 09:00 local on both sides of it (08:00 and 07:00 UTC)."""
    now = datetime.now(UTC)
    schedule = Schedule(
        id="dsthandoff",
        team_id=world.team_id,
        name="dst-berlin",
        time_zone="Europe/Berlin",
        rotations=[
            Rotation(members=[world.alice.id, world.bob.id], shift="1w", handoff="Mon 09:00", start=date(2027, 3, 15))
        ],
        channel_id=world.town_square["id"],
    )
    skipping = {"frontend.WorkflowTimeSkippingEnabled": "true"}
    async with own_server(dynamic_config=skipping) as (_, client), own_worker(world, client):
        handle = await client.start_workflow(
            ScheduleWorkflow.run,
            ScheduleState(schedule=schedule, told_until=now),
            id=schedule_workflow_id(schedule.id),
            task_queue=world.stack.settings.temporal_task_queue,
        )
        after = datetime(2027, 3, 29, 7, 30, tzinfo=UTC)  # half an hour after the summer-time handoff
        await TimeSkipper(client).fast_forward(handle, after - now)

        def told(found: list[str]) -> list[str]:
            return [m for m in found if "On-call handoff for **dst-berlin**" in m]

        posts = await eventually(
            lambda: _channel_posts(world), lambda found: len(told(found)) >= 2, what="both handoffs told"
        )
        handoffs = told(posts)
        # The rotation's start (alice on from 15 March) hands over from nobody: not a handoff.
        assert len(handoffs) == 2, handoffs
        assert "at Mon 22 Mar 09:00 CET" in handoffs[0]
        assert f"Coming on: @{world.bob.username}" in handoffs[0]
        # The first handoff in summer time: still 09:00 local (07:00 UTC, not 08:00).
        assert "at Mon 29 Mar 09:00 CEST" in handoffs[1]
        assert f"Coming on: @{world.alice.username}" in handoffs[1]
        assert "Next handoff: Mon 05 Apr 09:00 CEST." in handoffs[1]
        # The workflow's clock when it told the last one: the local 09:00, in UTC.
        fired = [
            event.event_time.ToDatetime(tzinfo=UTC)
            async for event in handle.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED
        ]

        def fired_near(moment: datetime) -> bool:
            return any(timedelta(0) <= at - moment < timedelta(minutes=1) for at in fired)

        assert fired_near(datetime(2027, 3, 22, 8, 0, tzinfo=UTC)), fired
        assert fired_near(datetime(2027, 3, 29, 7, 0, tzinfo=UTC)), fired
        assert not fired_near(datetime(2027, 3, 29, 8, 0, tzinfo=UTC)), fired


async def _channel_posts(world: World) -> list[str]:
    return [p["message"] for p in world.standin.posts(world.town_square["id"])]


async def test_oncall_through_the_slash_command(world: World) -> None:
    empty = await world.slash(world.carol, "oncall")
    assert empty["text"].startswith("This team has no on-call schedules yet.")
    tess = team_admin(world)
    today = datetime.now(UTC).date().isoformat()
    primary = {"members": [world.alice.id], "shift": "1w", "handoff": "Mon 09:00", "start": today}
    await create(world, tess, name="payments-primary", rotations=[primary])
    await create(world, tess, name="db", time_zone="UTC", rotations=[{**primary, "members": [world.bob.id]}])
    await eventually(lambda: listed(world, world.carol), lambda ids: len(ids) == 2, what="both schedules listed")

    one = await world.slash(world.carol, "oncall PAYMENTS-primary")
    assert one["response_type"] == "ephemeral"
    assert one["text"].startswith(f"On call now in **payments-primary**: @{world.alice.username}.")
    assert "Next handoff (Europe/Berlin): no handoff ahead." in one["text"]
    every = await world.slash(world.carol, "oncall")
    assert f"| db | @{world.bob.username} | no handoff ahead |" in every["text"]
    assert f"| payments-primary | @{world.alice.username} | no handoff ahead |" in every["text"]
    unknown = await world.slash(world.carol, "oncall nope")
    assert unknown["text"] == "This team has no schedule named 'nope'. Its schedules: `db`, `payments-primary`."
    help_text = (await world.slash(world.carol, "help"))["text"]
    assert "| `/incident oncall [<schedule>]` | Who is on call now" in help_text


async def test_yaml_export_and_import_round_trip(world: World) -> None:
    tess = team_admin(world)
    override = {"user_id": world.carol.id, "from": "2026-03-20T00:00:00Z", "to": "2026-03-21T00:00:00Z"}
    made = await create(world, tess, overrides=[override])
    await eventually(lambda: listed(world, tess), lambda ids: made["id"] in ids, what="the schedule listed")
    api = world.api(tess)
    exported = await api.get("/api/v1/schedules/export", params={"team_id": world.team_id})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/yaml")
    text = exported.text
    assert "name: payments-primary" in text
    assert "team_id" not in text.split("\n", 2)[2]
    # People by username, as a playbook file names them; no user id in the file.
    written = yaml.safe_load(text)["schedules"][0]
    assert written["rotations"][0]["members"] == [world.alice.username, world.bob.username]
    assert written["overrides"] == [
        {"user": world.carol.username, "from": "2026-03-20T00:00:00Z", "to": "2026-03-21T00:00:00Z"}
    ]
    assert not {world.alice.id, world.bob.id, world.carol.id} & set(re.findall(r"[a-z0-9]{26}", text))

    # Applied as it is: nothing changes.
    yaml_headers = {"Content-Type": "application/yaml"}
    params = {"team_id": world.team_id}
    same = await api.put("/api/v1/schedules/import", params=params, content=text, headers=yaml_headers)
    assert same.status_code == 200, same.text
    assert same.json() == {"created": [], "updated": [], "unchanged": [made["id"]]}

    # A changed rotation and new schedules, matched by name: people by username (an @ in
    # quotes), or by user id as files written before usernames have them.
    changed = text.replace("shift: 1w", "shift: 2w") + (
        "- name: db\n  time_zone: UTC\n  rotations:\n"
        f"  - members: ['@{world.dave.username}', {world.carol.username.upper()}]\n"
        "    shift: 1d\n    handoff: '08:00'\n    start: 2026-03-16\n"
        "- name: legacy\n  rotations:\n"
        f"  - members: [{world.bob.id}]\n    shift: 1w\n    start: 2026-03-16\n"
        f"  overrides:\n  - user_id: {world.alice.id}\n"
        "    from: 2026-03-20T00:00:00Z\n    to: 2026-03-21T00:00:00Z\n"
    )
    applied = await api.put("/api/v1/schedules/import", params=params, content=changed, headers=yaml_headers)
    assert applied.status_code == 200, applied.text
    result = applied.json()
    assert [s["id"] for s in result["updated"]] == [made["id"]]
    assert result["updated"][0]["rotations"][0]["shift"] == "2w"
    assert result["updated"][0]["rotations"][0]["members"] == [world.alice.id, world.bob.id]
    assert result["updated"][0]["overrides"][0]["user_id"] == world.carol.id
    created = {s["name"]: s for s in result["created"]}
    assert list(created) == ["db", "legacy"]
    assert created["db"]["rotations"][0]["members"] == [world.dave.id, world.carol.id]
    assert created["legacy"]["rotations"][0]["members"] == [world.bob.id]
    assert created["legacy"]["overrides"][0]["user_id"] == world.alice.id
    await eventually(lambda: listed(world, tess), lambda ids: len(ids) == 3, what="the schedules listed")
    again = await api.get("/api/v1/schedules/export", params=params)
    assert f"user: {world.alice.username}" in again.text  # the legacy file, now written by username
    assert world.bob.id not in again.text

    # Errors name their schedule, field and line; nothing is applied.
    lines = changed.splitlines()
    dave_line = next(n for n, line in enumerate(lines, 1) if world.dave.username in line)
    carol_line = next(n for n, line in enumerate(lines, 1) if f"user: {world.carol.username}" in line)
    bad = (
        changed.replace(f"'@{world.dave.username}'", world.mallory.username)
        .replace(f"user: {world.carol.username}", "user: '@nobody'")
        .replace("shift: 2w", "shift: 3w")
    )
    refused = await api.put("/api/v1/schedules/import", params=params, content=bad, headers=yaml_headers)
    assert refused.status_code == 422
    fields = refused.json()["fields"]
    assert fields["schedules[0].overrides[0].user"] == f"line {carol_line}: no user @nobody"
    assert fields["schedules[1].rotations[0].members[0]"].startswith(f"line {dave_line}: ")
    assert "not a member of this team" in fields["schedules[1].rotations[0].members[0]"]
    assert f"line {carol_line}: no user @nobody" in refused.json()["message"]
    read = await api.get(f"/api/v1/schedules/{made['id']}")
    assert read.json()["rotations"][0]["shift"] == "2w"
    assert read.json()["overrides"][0]["user_id"] == world.carol.id
    # Only admins apply files; outsiders learn nothing.
    assert (
        await world.api(world.alice).put("/api/v1/schedules/import", params=params, content=text, headers=yaml_headers)
    ).status_code == 403
    assert (
        await world.api(world.mallory).put(
            "/api/v1/schedules/import", params=params, content=text, headers=yaml_headers
        )
    ).status_code == 404


async def test_the_backstage_schedules_page(world: World) -> None:
    tess = team_admin(world)
    page = await sign_in(world, tess)
    listing = f"/backstage/teams/{world.team_id}/schedules"
    empty = await page.get(listing)
    assert empty.status_code == 200, text(empty)[:300]
    assert "No schedules yet" in text(empty)
    assert f'href="{listing}"' in empty.text  # the navigation links to it
    assert "- members: [<username>, <username>]" in text(empty)  # the example names people by username

    # A bad schedule is refused with its line, what was typed kept; a good one is created.
    today = datetime.now(UTC).date()
    typed = (
        "name: primary\ntime_zone: UTC\nrotations:\n"
        f"- members: [{world.alice.username}, '@{world.mallory.username}']\n"
        f"  shift: 1d\n  handoff: '09:00'\n  start: {today}\n"
    )
    refused = await page.post(listing, data={"csrf_token": csrf(empty), "spec": typed})
    assert refused.status_code == 422
    assert f"@{world.mallory.username} ({world.mallory.id}) is not a member of this team" in text(refused)
    nobody = await page.post(
        listing, data={"csrf_token": csrf(empty), "spec": typed.replace(world.mallory.username, "nobody")}
    )
    assert nobody.status_code == 422
    assert "rotations[0].members[1] (line 4: no user @nobody)" in text(nobody)
    assert "@nobody" in html.unescape(nobody.text)  # what was typed is kept
    good = typed.replace(f"'@{world.mallory.username}'", world.bob.username)
    forged = await page.post(listing, data={"csrf_token": "nope", "spec": good})
    assert forged.status_code == 403
    created = await page.post(listing, data={"csrf_token": csrf(empty), "spec": good})
    assert created.status_code == 303, text(created)[:300]

    # Who is on call now, and the handoffs of the next 7 days on its timeline.
    shown = await eventually(lambda: page.get(listing), lambda p: "primary" in text(p), what="the schedule shown")
    assert "Handoffs in the next 7 days (UTC)" in text(shown)
    assert text(shown).count(f"@{world.alice.username}") + text(shown).count(f"@{world.bob.username}") >= 7
    sid = re.search(r'id="schedule-([a-z2-9]{10})"', shown.text)
    assert sid is not None
    edit = await page.get(f"/backstage/schedules/{sid[1]}/edit")
    shown_yaml = html.unescape(edit.text)
    assert "name: primary" in shown_yaml
    assert f"- members:\n  - {world.alice.username}\n  - {world.bob.username}\n" in shown_yaml
    assert world.alice.id not in shown_yaml
    # Saved with a user id for one member (as files written before usernames have them).
    saved = await page.post(
        f"/backstage/schedules/{sid[1]}/edit",
        data={
            "csrf_token": csrf(edit),
            "spec": good.replace("shift: 1d", "shift: 2d").replace(world.bob.username, world.bob.id),
        },
    )
    assert saved.status_code == 303, text(saved)[:300]
    stored = (await world.api(tess).get(f"/api/v1/schedules/{sid[1]}")).json()["rotations"][0]
    assert stored["shift"] == "2d"
    assert stored["members"] == [world.alice.id, world.bob.id]

    # A member reads but is offered no changes; an outsider sees nothing.
    member = await sign_in(world, world.carol)
    read = await member.get(listing)
    assert "primary" in text(read)
    assert "/edit" not in read.text
    outsider = await sign_in(world, world.mallory)
    assert (await outsider.get(listing)).status_code == 404
    assert (await outsider.get(f"/backstage/schedules/{sid[1]}/edit")).status_code == 404

    confirm = await page.get(f"/backstage/schedules/{sid[1]}/delete")
    assert "Delete the schedule “primary”?" in text(confirm)
    deleted = await page.post(
        f"/backstage/schedules/{sid[1]}/delete", data={"csrf_token": csrf(confirm), "confirmed": "1"}
    )
    assert deleted.status_code == 303
    assert (await world.api(tess).get(f"/api/v1/schedules/{sid[1]}")).status_code == 404


async def test_a_schedule_continues_as_new_with_its_changes(world: World) -> None:
    rotation = Rotation(members=[world.alice.id, world.bob.id], shift="1w", start=datetime.now(UTC).date())
    schedule = Schedule(id="continuing", team_id=world.team_id, name="long-lived", rotations=[rotation])
    async with short_history_server(world, 30) as client:
        handle = await client.start_workflow(
            ScheduleWorkflow.run,
            ScheduleState(schedule=schedule, told_until=datetime.now(UTC)),
            id=schedule_workflow_id(schedule.id),
            task_queue=world.stack.settings.temporal_task_queue,
        )
        for n in range(12):
            changed = schedule.model_copy(update={"name": f"long-lived-{n}"})
            await handle.execute_update(ScheduleWorkflow.update_schedule, ChangeSchedule(schedule=changed))

        moved = schedule.model_copy(update={"team_id": "z" * 26})
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ScheduleWorkflow.update_schedule, ChangeSchedule(schedule=moved))
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.message == "A schedule cannot move to another team; create one there instead."

        async def runs() -> int:
            return len([e async for e in client.list_workflows(f"WorkflowId = '{handle.id}'")])

        await eventually(runs, lambda n: n > 1, what="the schedule to continue as new")
        latest = await client.get_workflow_handle(handle.id).query(ScheduleWorkflow.schedule)
        assert latest is not None
        assert latest.name == "long-lived-11"
