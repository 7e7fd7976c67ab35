"""The incident people see and click in Mattermost: the live checklist post, driven through
the stand-in exactly as a Mattermost client drives it (buttons and menus clicked through
`POST /api/v4/posts/{post_id}/actions/{action_id}`, dialogs submitted through
`POST /api/v4/actions/dialogs/submit`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import pytest
from mattermostautodriver.exceptions import NotEnoughPermissions, ResourceNotFound

from api.slash.interactive_callbacks import RECEIVED_BY_MESSAGE
from models.incident import EventType, IncidentState, IncidentStatus, ItemState
from tests.harness import User, World, eventually
from tests.integration.slash_helpers import (
    Started,
    actions,
    bot_posted,
    checklist_post,
    click,
    command,
    control,
    create_playbook,
    dialogs,
    direct_messages,
    on_timeline_only,
    outage,
    pick,
    post_json,
    reminder_post,
    settled,
    start_incident,
    state,
    submit_dialog,
)
from workflows.incident_messages import MENU_OPTIONS_MAX, POST_MESSAGE_MAX


def replies(world: World, user_id: str, incident: Started) -> list[str]:
    return [
        e["post"]["message"] for e in world.standin.ephemeral_posts(user_id=user_id, channel_id=incident.channel_id)
    ]


async def shows(world: World, incident: Started, fragment: str) -> dict[str, Any]:
    """The checklist post once its message contains `fragment` (it is edited in place)."""
    await world.standin.wait_for(lambda: fragment in checklist_post(world, incident)["message"])
    return checklist_post(world, incident)


def patches(world: World, post_id: str) -> int:
    return sum(
        1 for r in world.standin.requests if r["method"] == "PUT" and r["path"] == f"/api/v4/posts/{post_id}/patch"
    )


async def test_the_checklist_post_is_pinned_and_its_buttons_check_and_uncheck(world: World) -> None:
    incident = await outage(world)
    alice = f"@{world.alice.username}"
    post = checklist_post(world, incident)
    assert post["is_pinned"] is True
    assert (await state(world, incident.id)).post_ids["opening"] == post["id"]
    message = post["message"]
    assert message.startswith("#### :rotating_light: Incident: Primary DB down")
    assert f":red_circle: **Ongoing** · **Commander:** {alice}" in message
    # Every stage with its items, the active one marked.
    assert "**Stage 1/3 Triage** · **active** · 0/2 done\n1. [ ] Page the DBA\n2. [ ] Read the logs" in message
    assert "**Stage 2/3 Mitigate** · 0/1 done\n1. [ ] Fail over" in message
    assert "**Stage 3/3 Verify** · 0/0 done\n*(no items)*" in message
    controls = actions(post)
    assert [(a["name"], a["type"]) for a in controls.values()] == [
        ("☐ Page the DBA", "button"),
        ("☐ Read the logs", "button"),
        ("Next stage", "button"),
        ("Post update", "button"),
    ]

    assert (await click(world, world.alice, post["id"], control(post, "Read the logs")))["status"] == "OK"
    edited = await shows(world, incident, "2. [x] Read the logs")
    assert edited["id"] == post["id"], "edited in place, not posted again"
    assert f"2. [x] Read the logs · *checked by {alice} at " in edited["message"]
    assert "**Stage 1/3 Triage** · **active** · 1/2 done" in edited["message"]
    assert replies(world, world.alice.id, incident)[-1] == "Marked 'Read the logs' as done."
    # The same change as `/incident check 2`: on the timeline, shown by this post (no post of its own).
    await on_timeline_only(world, incident, f"{alice} marked **Read the logs** as done (stage 1/3 Triage)")
    assert actions(edited)[control(edited, "Read the logs")]["name"] == "☑ Read the logs"

    await click(world, world.alice, post["id"], control(edited, "Read the logs"))
    await shows(world, incident, "2. [ ] Read the logs")
    assert (await state(world, incident.id)).checklists[0].items[1].state == ItemState.OPEN
    # A typed command shows up on the post too.
    await command(world, world.alice, "check 1", incident)
    await shows(world, incident, "1. [x] Page the DBA")


async def test_a_replayed_or_stale_click_changes_nothing(world: World) -> None:
    incident = await outage(world)
    post = checklist_post(world, incident)
    stale = actions(post)[control(post, "Page the DBA")]  # "☐ Page the DBA", as first shown
    await click(world, world.alice, post["id"], control(post, "Page the DBA"))
    await shows(world, incident, "1. [x] Page the DBA")
    # The edited post has a "☑" in that place; a client holding the old post sends the
    # old control (the stand-in keeps the edited post's controls, so send it as Mattermost would).
    answer = await post_json(
        world,
        "/mattermost/action",
        {
            "user_id": world.alice.id,
            "channel_id": incident.channel_id,
            "post_id": post["id"],
            "trigger_id": "replayed-trigger",
            "context": stale["integration"]["context"],
        },
    )
    assert answer.json() == {"ephemeral_text": "Item 'Page the DBA' is already done."}
    current = await state(world, incident.id)
    assert current.checklists[0].items[0].state == ItemState.DONE
    assert [e.type for e in current.timeline].count(EventType.ITEM_STATE_CHANGED) == 1


async def test_next_stage_asks_like_the_command_then_the_dialog_moves_on(world: World) -> None:
    incident = await outage(world)
    post = checklist_post(world, incident)
    await click(world, world.alice, post["id"], control(post, "Next stage"))
    asked = "Stage 'Triage' still has 2 open item(s). Move on anyway?"
    await world.standin.wait_for(lambda: asked in replies(world, world.alice.id, incident))
    [opened] = dialogs(world, world.alice, "stage")
    assert opened["dialog"]["introduction_text"] == asked
    assert (await state(world, incident.id)).active_stage == 0, "nothing moves before the confirmation"
    assert await submit_dialog(world, world.alice, opened) == {}
    moved = await shows(world, incident, "**Stage 2/3 Mitigate** · **active**")
    assert [a["name"] for a in actions(moved).values()] == ["☐ Fail over", "Next stage", "Post update"]
    # The stage with no open item moves at once.
    await click(world, world.alice, post["id"], control(moved, "Fail over"))
    done = await shows(world, incident, "1. [x] Fail over")
    await click(world, world.alice, post["id"], control(done, "Next stage"))
    last = await shows(world, incident, "**Stage 3/3 Verify** · **active**")
    assert not [a for a in actions(last).values() if a["name"] == "Next stage"], "no next stage after the last"
    assert replies(world, world.alice.id, incident)[-1] == "Moved to stage 3/3 Verify."


async def test_post_update_opens_the_dialog_and_an_update_takes_the_reminder_buttons_off(world: World) -> None:
    incident = await outage(world, reminder_timer_default_seconds=1)
    alice = f"@{world.alice.username}"
    reminder = await reminder_post(world, incident)
    await command(world, world.alice, "reminder off", incident)
    post = checklist_post(world, incident)
    await click(world, world.alice, post["id"], control(post, "Post update"))
    [opened] = dialogs(world, world.alice, "status_update")
    assert await submit_dialog(world, world.alice, opened, {"status": "identified", "message": "Replica lag"}) == {}
    shown = await shows(world, incident, "Replica lag")
    assert f"**Last update (identified)** from {alice} at " in shown["message"]
    # The reminder that asked for it has no buttons any more, and says why.
    await world.standin.wait_for(
        lambda: (
            not next(p for p in world.standin.posts(incident.channel_id) if p["id"] == reminder["id"])["props"].get(
                "attachments"
            )
        )
    )
    answered = next(p for p in world.standin.posts(incident.channel_id) if p["id"] == reminder["id"])
    assert answered["message"].endswith(f"*Answered by {alice}'s status update.*")
    assert answered["props"]["incident_effect"] == reminder["props"]["incident_effect"], "other props are kept"

    # `/incident update` with no arguments opens the same dialog.
    assert await command(world, world.alice, "update", incident) == ""
    second = dialogs(world, world.alice, "status_update")[-1]
    assert second["dialog"] == {**opened["dialog"], "state": second["dialog"]["state"]}
    await submit_dialog(world, world.alice, second, {"message": "Failing over"})
    await shows(world, incident, "Failing over")
    assert [u.message for u in (await state(world, incident.id)).status_updates] == ["Replica lag", "Failing over"]


async def test_a_click_by_someone_outside_the_channel_changes_nothing_and_says_why(world: World) -> None:
    incident = await outage(world, create_public_incident=True)
    post = checklist_post(world, incident)
    # Carol is in the team and sees the public incident, but is not in its channel: Mattermost
    # itself refuses her click...
    with pytest.raises(NotEnoughPermissions):
        await click(world, world.carol, post["id"], control(post, "Page the DBA"))
    # ...and the API does not rely on that: the same click, as Mattermost would forward it.
    refusal = "Only members of the incident channel can change this incident. Ask someone in the channel to add you."
    for label in ("Page the DBA", "Next stage"):
        body = {
            "user_id": world.carol.id,
            "channel_id": incident.channel_id,
            "post_id": post["id"],
            "trigger_id": f"carol-{label}",
            "context": actions(post)[control(post, label)]["integration"]["context"],
        }
        answer = await post_json(world, "/mattermost/action", body)
        assert answer.status_code == 200
        assert answer.json() == {"ephemeral_text": refusal}
    current = await settled(world, incident.id)
    assert current.checklists[0].items[0].state == ItemState.OPEN
    assert current.active_stage == 0
    assert not dialogs(world, world.carol, "stage")
    assert checklist_post(world, incident)["message"] == post["message"]
    # Once she is in the channel, her click is the command.
    await command(world, world.alice, f"add @{world.carol.username}", incident)
    await eventually(lambda: state(world, incident.id), lambda s: world.carol.id in s.member_ids, what="carol in")
    await click(world, world.carol, post["id"], control(post, "Page the DBA"))
    await shows(world, incident, "1. [x] Page the DBA")


async def test_a_burst_of_changes_ends_with_the_final_state_in_far_fewer_edits(world: World) -> None:
    incident = await outage(world)
    post = checklist_post(world, incident)
    before = patches(world, post["id"])
    limit = asyncio.Semaphore(10)

    async def add(number: int) -> str:
        async with limit:
            reply = await world.slash(world.alice, f"checkadd 3 Step {number:02}", channel_id=incident.channel_id)
            return str(reply["text"])

    answers = await asyncio.gather(*(add(n) for n in range(50)))
    assert all(a.startswith("Added 'Step ") for a in answers), answers
    current = await settled(world, incident.id)
    assert len(current.checklists[2].items) == 50
    final = checklist_post(world, incident)
    assert final["id"] == post["id"]
    assert "**Stage 3/3 Verify** · 0/50 done" in final["message"]
    assert all(f"Step {n:02}" in final["message"] for n in range(50))
    edits = patches(world, post["id"]) - before
    print(f"checklist edits for a burst of 50 changes: {edits}")
    assert 1 <= edits < 25, f"{edits} edits for 50 changes"


@pytest.mark.slow
async def test_a_burst_of_200_clicks_applies_each_once_and_the_post_ends_showing_the_final_state(
    world: World,
) -> None:
    """150 items: the menu lists the first 100 open ones. 100 people's clicks from that view check
    items 1-100; 100 more from the view that follows check items 101-150 and uncheck 1-50."""
    items = [{"title": f"Step {n:03}"} for n in range(150)]
    await create_playbook(world, world.alice, title="Long", checklists=[{"title": "All", "items": items}])
    incident = await start_incident(world, world.alice, "Long", "Click storm")
    post = checklist_post(world, incident)
    before = patches(world, post["id"])
    limit = asyncio.Semaphore(10)

    async def burst(view: dict[str, Any]) -> None:
        menu = control(view, "Check or uncheck an item")

        async def choose(option: dict[str, str]) -> None:
            async with limit:
                assert (await pick(world, world.alice, view["id"], menu, option["value"]))["status"] == "OK"

        options = actions(view)[menu]["options"]
        assert len(options) == MENU_OPTIONS_MAX
        await asyncio.gather(*(choose(option) for option in options))

    def states(incident_state: IncidentState) -> list[ItemState]:
        return [item.state for item in incident_state.checklists[0].items]

    async def applied(expected: list[ItemState]) -> IncidentState:
        """The incident once every click is applied: a click not answered in time under this load
        is told "received" and applied a moment later (its outcome comes as a direct message)."""
        return await eventually(
            lambda: state(world, incident.id),
            lambda s: states(s) == expected and not s.outbox,
            timeout=120,
            what="every click to be applied",
        )

    await burst(post)
    await applied([ItemState.DONE] * 100 + [ItemState.OPEN] * 50)
    await shows(world, incident, "100. [x] Step 099")
    await burst(checklist_post(world, incident))
    expected = [ItemState.OPEN] * 50 + [ItemState.DONE] * 100
    current = await applied(expected)

    assert [e.type for e in current.timeline].count(EventType.ITEM_STATE_CHANGED) == 200
    said = replies(world, world.alice.id, incident)
    marked = [r for r in said if r.startswith("Marked 'Step ")]
    received = [r for r in said if r == RECEIVED_BY_MESSAGE]
    assert len(marked) + len(received) == 200, [r for r in said if r not in marked + received]
    if received:  # each one's outcome, told as a direct message

        async def told_alice() -> list[str]:
            return direct_messages(world, world.alice.id)

        told = await eventually(
            told_alice,
            lambda found: len(found) == len(received),
            what="the outcomes of the clicks that were received",
        )
        assert all(m.startswith("Your click (`/incident check`): Marked 'Step ") for m in told), told
    final = await shows(world, incident, "150. [x] Step 149")
    assert final["id"] == post["id"]
    for n, state_now in enumerate(expected):
        box = "[x]" if state_now == ItemState.DONE else "[ ]"
        assert f"{n + 1}. {box} Step {n:03}" in final["message"], n
    edits = patches(world, post["id"]) - before
    print(f"checklist edits for 200 clicks: {edits}")
    assert 1 <= edits < 100, f"{edits} edits for 200 clicks"


async def test_a_deleted_checklist_post_is_posted_and_pinned_again_on_the_next_change(world: World) -> None:
    """Mattermost refuses an edit of a deleted post with 403, as an edit the bot may not make: the
    next change finds the post gone and posts it again, once, pinned, with its buttons."""
    incident = await outage(world)
    post = checklist_post(world, incident)
    driver = world.driver(world.admin)  # a system admin tidying the channel
    try:
        await driver.posts.delete_post(post["id"])
    finally:
        await driver.close()
    await command(world, world.alice, "check 1", incident)
    await world.standin.wait_for(
        lambda: any(
            p["props"].get("incident_post") and p["is_pinned"] for p in world.standin.posts(incident.channel_id)
        )
    )
    again = checklist_post(world, incident)  # exactly one
    assert again["id"] != post["id"]
    assert again["is_pinned"] is True
    assert "1. [x] Page the DBA" in again["message"]
    assert [a["name"] for a in actions(again).values()] == [
        "☑ Page the DBA",
        "☐ Read the logs",
        "Next stage",
        "Post update",
    ]
    current = await settled(world, incident.id)
    assert current.post_ids["opening"] == again["id"]
    assert EventType.EFFECT_FAILED not in [e.type for e in current.timeline]
    # Its buttons work like the first one's, and it is edited in place again.
    await click(world, world.alice, again["id"], control(again, "Read the logs"))
    assert (await shows(world, incident, "2. [x] Read the logs"))["id"] == again["id"]


async def test_a_stage_too_long_for_buttons_gets_a_menu_and_a_huge_playbook_still_fits(world: World) -> None:
    many = [{"title": f"Item {n:03} " + "x" * 240} for n in range(200)]
    await create_playbook(
        world,
        world.alice,
        title="Huge",
        checklists=[{"title": "Big", "items": many}, {"title": "Also big", "items": many}, {"title": "End"}],
    )
    incident = await start_incident(world, world.alice, "Huge", "Huge outage")
    post = checklist_post(world, incident)
    assert len(post["message"]) <= POST_MESSAGE_MAX
    assert (
        "do not fit in one Mattermost post: `/incident info` and the incident page show everything." in post["message"]
    )
    menu = actions(post)[control(post, "Check or uncheck an item")]
    assert menu["type"] == "select"
    assert len(menu["options"]) == MENU_OPTIONS_MAX
    assert f"(the first {MENU_OPTIONS_MAX} open items are listed; `/incident check <n>` reaches any)" in str(
        post["props"]["attachments"][0]["text"]
    )
    option = menu["options"][4]
    assert option["text"].startswith("☐ 5. Item 004")
    picked = await pick(world, world.alice, post["id"], control(post, "Check or uncheck an item"), option["value"])
    assert picked["status"] == "OK"
    await eventually(
        lambda: state(world, incident.id),
        lambda s: s.checklists[0].items[4].state == ItemState.DONE,
        what="item 5 checked from the menu",
    )
    await shows(world, incident, "5. [x] Item 004")
    # Open items are listed first: the checked one left the (full) menu.
    now = checklist_post(world, incident)
    assert not any(
        o["text"].startswith("☐ 5. Item 004") for o in actions(now)[control(now, "Check or uncheck")]["options"]
    )


async def test_the_end_is_told_where_it_was_announced_and_the_post_loses_its_controls(world: World) -> None:
    incident = await outage(world)
    off_topic = world.channels["off-topic"]
    await command(world, world.alice, "announce ~off-topic", incident)
    assert await command(world, world.alice, "end", incident) == ""
    [opened] = dialogs(world, world.alice, "end")
    assert opened["dialog"]["introduction_text"] == (
        "End **Primary DB down**? The incident channel and the channels it was announced in are told."
    )
    await submit_dialog(world, world.alice, opened)
    await bot_posted(world, off_topic["id"], f"ended by @{world.alice.username} after ")
    ended = await shows(world, incident, ":white_check_mark: **Ended**")
    assert "attachments" not in ended["props"] or not actions(ended)
    assert "`/incident restart` reopens it" in ended["message"]
    assert (await state(world, incident.id)).status == IncidentStatus.ENDED


async def test_expected_404s_are_not_logged_as_errors(world: World, caplog: pytest.LogCaptureFixture) -> None:
    incident = await outage(world)
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    reply = await command(world, world.alice, "add @nobody-here", incident)
    assert reply.startswith("There is no user @nobody-here.")
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING and not r.name.startswith("temporalio")]
    assert loud == [], [f"{r.name}: {r.getMessage()}" for r in loud]
    assert not [r for r in caplog.records if r.name == "mattermostautodriver.websocket"], (
        "never under the driver's name"
    )
    assert any(r.name == "mattermost_client.gateway" and "404" in r.getMessage() for r in caplog.records)


async def mm(world: World, *args: str, user: str = "alice") -> str:
    """`python -m devstack.mm --url <stand-in> --token <user's token> ...`, as a person types it."""
    token = getattr(world, user).token
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devstack.mm", "--url", world.standin.url, "--token", token, "--wait", "1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await cli.communicate()
    assert cli.returncode == 0, err.decode()
    return out.decode()


async def test_the_stand_in_is_usable_by_hand(world: World) -> None:
    incident = await outage(world)
    channel = incident.channel_name
    info = await mm(world, "slash", "--channel", channel, "/incident info")
    assert info.startswith("#### Incident: Primary DB down")
    # A command that opens a dialog shows it; `dialog` submits it.
    opened = await mm(world, "slash", "--channel", f"~{channel}", "/incident update")
    assert "[dialog] Post status update (callback status_update)" in opened
    assert "message=textarea" in opened
    submitted = await mm(world, "dialog", "status=monitoring", "message=Replica is primary now")
    assert submitted.startswith("Submitted.")
    await shows(world, incident, "Replica is primary now")
    # `posts` lists the buttons; `click` clicks one and shows the ephemeral reply.
    listed = await mm(world, "posts", "--channel", channel, "--last", "50")
    check = control(checklist_post(world, incident), "Page the DBA")
    assert f"[{check}] ☐ Page the DBA" in listed
    clicked = await mm(world, "click", "--channel", channel, check)
    assert f"Clicked [{check}] ☐ Page the DBA" in clicked
    assert "[reply] Marked 'Page the DBA' as done." in clicked
    await shows(world, incident, "1. [x] Page the DBA")


async def clicked_from(world: World, incident: Started, user: User, post: dict[str, Any], label: str) -> str | None:
    """`user` clicks the control labelled `label` as their client drew it in `post` (an older
    view, perhaps): the private reply, or None when Mattermost itself refused the click
    because the post no longer has that control."""
    before = len(replies(world, user.id, incident))
    try:
        await click(world, user, post["id"], control(post, label))
    except ResourceNotFound:
        return None
    await world.standin.wait_for(lambda: len(replies(world, user.id, incident)) > before)
    return replies(world, user.id, incident)[-1]


async def test_a_click_from_a_view_that_has_changed_is_refused_and_changes_nothing(world: World) -> None:
    """Defect: control ids were the same in every version of the post, and Mattermost resolves a
    click against the post as it is when the click arrives: bob clicked "Check Page the DBA",
    alice had just moved the stage, and bob's click checked the next stage's first item."""
    incident = await outage(world)
    await command(world, world.alice, f"add @{world.bob.username}", incident)
    await eventually(lambda: state(world, incident.id), lambda s: world.bob.id in s.member_ids, what="bob in")
    bobs_view = checklist_post(world, incident)
    assert await command(world, world.alice, "stage next --force", incident) == "Moved to stage 2/3 Mitigate."
    reply = await clicked_from(world, incident, world.bob, bobs_view, "Page the DBA")
    assert reply is None or "has moved on to stage 2/3 Mitigate" in reply, reply
    current = await settled(world, incident.id)
    assert [item.state for stage in current.checklists for item in stage.items] == [ItemState.OPEN] * 3
    assert EventType.ITEM_STATE_CHANGED not in [e.type for e in current.timeline]


async def test_two_next_stage_clicks_from_one_view_move_one_stage(world: World) -> None:
    """Defect: two *Next stage* clicks 0.8 s apart moved the incident from A to C."""
    incident = await outage(world)
    for text in ("check 1 1", "check 1 2", "check 2 1"):
        await command(world, world.alice, text, incident)
    view = await shows(world, incident, "1. [x] Fail over")
    first = await clicked_from(world, incident, world.alice, view, "Next stage")
    assert first == "Moved to stage 2/3 Mitigate."
    second = await clicked_from(world, incident, world.alice, view, "Next stage")
    assert second is None or "is no longer at stage 'Triage'" in second, second
    current = await settled(world, incident.id)
    assert current.active_stage == 1
    assert [e.type for e in current.timeline].count(EventType.STAGE_CHANGED) == 1
