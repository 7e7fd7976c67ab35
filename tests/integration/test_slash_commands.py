"""Every `/incident` command typed by a person through Mattermost's `commands/execute`.

Over 400 lines on purpose: one test per subcommand of the help table, in its order.

Each test checks the reply (ephemeral, to the caller only), the bot's post in the
incident channel, and the change in the incident's workflow state.
"""

from __future__ import annotations

from datetime import UTC, datetime

from models.incident import IncidentStatus, ItemState, UpdateStatus, incident_workflow_id
from tests.harness import World, eventually
from tests.integration.slash_helpers import (
    SUBCOMMANDS,
    answered,
    bot_posted,
    bot_posts,
    command,
    create_playbook,
    dialogs,
    late_reply,
    on_timeline_only,
    outage,
    settled,
    start_incident,
    state,
    submit_dialog,
    user_posts,
)
from workflows.incident_workflow import IncidentWorkflow

USAGE_START = "Usage: `/incident start [<playbook> <name...>]`"
USAGE_CHECK = "Usage: `/incident check [<stage>] <item>`"
USAGE_CHECKADD = "Usage: `/incident checkadd <stage> <title...>`"
USAGE_CHECKREMOVE = "Usage: `/incident checkremove <stage> <item>`"
USAGE_ASSIGN = "Usage: `/incident assign <stage> <item> @user|@none`"
USAGE_STAGE = "Usage: `/incident stage next|prev [--force]`"
USAGE_COMMANDER = "Usage: `/incident commander [@user]`"
USAGE_ADD = "Usage: `/incident add @user...`"
USAGE_ANNOUNCE = "Usage: `/incident announce ~channel...`"
USAGE_UPDATE = "Usage: `/incident update [[investigating|identified|monitoring|resolved] <message...>]`"
USAGE_REMINDER = "Usage: `/incident reminder <15m|1h|4h|off>`"


# ---------------------------------------------------------------------------- start


async def test_start_replies_at_once_and_links_the_channel_via_response_url(world: World) -> None:
    playbook = await create_playbook(world, world.alice)
    reply = await world.slash(world.alice, 'start "database OUTAGE" Bob\'s "primary"   DB is down')
    name = 'Bob\'s "primary" DB is down'
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == (
        f"Starting incident **{name}** from playbook **Database outage**… the channel will appear shortly."
    )
    link = await late_reply(world, world.alice, f"Incident **{name}** started: ~")
    channel_name = link.rsplit("~", 1)[1]
    channel = world.standin.find_channel(world.team_id, channel_name)
    assert channel is not None
    assert (channel["type"], channel["display_name"]) == ("P", name)
    incident_id = channel_name.rsplit("-", 1)[1]
    current = await settled(world, incident_id)
    assert (current.name, current.playbook_id, current.status) == (name, playbook["id"], IncidentStatus.ONGOING)
    assert (current.commander_id, current.reporter_id) == (world.alice.id, world.alice.id)
    assert [s.title for s in current.checklists] == ["Triage", "Mitigate", "Verify"]
    assert world.alice.id in world.standin.channel_members(channel["id"])
    opening = bot_posts(world, channel["id"])[0]
    assert opening.startswith(f"#### :rotating_light: Incident: {name}")
    # Every reply went to alice alone; nothing was posted in town-square in her name.
    assert not user_posts(world, world.town_square["id"], world.alice)
    replies = [e["post"]["message"] for e in world.standin.ephemeral_posts(user_id=world.alice.id)]
    assert replies == [reply["text"], link]


async def test_start_by_playbook_id(world: World) -> None:
    playbook = await create_playbook(world, world.alice, title="Payments down")
    reply = await world.slash(world.alice, f'start {playbook["id"]} "Card payments fail"')
    assert reply["text"].startswith("Starting incident **Card payments fail** from playbook **Payments down**")
    await late_reply(world, world.alice, "Incident **Card payments fail** started: ~")


async def test_start_arguments_and_playbook_access_are_checked(world: World) -> None:
    await create_playbook(world, world.alice)
    await create_playbook(world, world.bob, title="Bob's playbook")
    twin = await create_playbook(world, world.alice, title="Twin")
    other = await create_playbook(world, world.alice, title="twin")
    cases = {
        'start "Database outage"': "Give the playbook and the incident's name.\n" + USAGE_START,
        "start Nope Something broke": "You have no playbook called 'Nope' in this team. See `/incident playbooks`; "
        'quote titles with spaces: "Database outage".\n' + USAGE_START,
        'start "Bob\'s playbook" Mine now': 'You have no playbook called "Bob\'s playbook" in this team.',
        "start Database outage": "You have no playbook called 'Database' in this team.",
        'start "Database outage" ' + "x" * 65: "Invalid request: name: String should have at most 64 characters.\n"
        + USAGE_START,
        'start "Database outage x': 'Unbalanced quotes: close every " you open, e.g. "Database outage".',
        "start twin Which one": "Several playbooks are called 'twin'; name one by id: ",
    }
    for text, expected in cases.items():
        reply = await world.slash(world.alice, text)
        assert reply["text"].startswith(expected), (text, reply["text"])
    ambiguous = await world.slash(world.alice, "start twin Which one")
    assert f"`{twin['id']}`" in ambiguous["text"]
    assert f"`{other['id']}`" in ambiguous["text"]
    # Nothing was started: no channel besides the team's own two.
    assert sorted(c["name"] for c in world.standin.channels(world.team_id)) == ["off-topic", "town-square"]


async def test_start_failure_follows_via_response_url(world: World) -> None:
    await create_playbook(world, world.alice)
    taken = len(world.standin.faults_taken)
    world.standin.add_fault("POST", "/api/v4/channels", status=400, times=1, team_id=world.team_id)
    try:
        reply = await world.slash(world.alice, 'start "Database outage" Doomed')
        assert "the channel will appear shortly" in reply["text"]
        await world.standin.wait_for(lambda: len(world.standin.faults_taken) > taken)
    finally:
        world.standin.clear_faults()
    [incident_id] = await eventually(
        lambda: team_incident_ids(world), lambda ids: len(ids) == 1, what="the incident to be listed"
    )
    handle = world.stack.temporal.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id(incident_id))
    final = await handle.result()
    assert final.status == IncidentStatus.FAILED
    assert "Injected fault: 400 for POST /api/v4/channels" in (final.failure or "")
    assert sorted(c["name"] for c in world.standin.channels(world.team_id)) == ["off-topic", "town-square"]
    # Every effect is carried out before the workflow completes, so the reply is there by now.
    replies = [e["post"]["message"] for e in world.standin.ephemeral_posts(user_id=world.alice.id)]
    assert replies[-1] == f"Could not start incident **Doomed**: {final.failure}"


async def team_incident_ids(world: World) -> list[str]:
    query = f"WorkflowType = 'IncidentWorkflow' AND IncidentTeamId = '{world.team_id}'"
    return [e.id.removeprefix("incident-") async for e in world.stack.temporal.list_workflows(query)]


async def test_playbooks_lists_the_ones_i_may_use_with_their_ids(world: World) -> None:
    mine = await create_playbook(world, world.alice)
    await create_playbook(world, world.bob, title="Bob's playbook")
    reply = await world.slash(world.alice, "playbooks")
    assert reply["response_type"] == "ephemeral"
    assert f"| Database outage | 3 | 3 | `{mine['id']}` |" in reply["text"]
    assert "Bob's playbook" not in reply["text"]


# ---------------------------------------------------------------------------- reading


async def test_info_shows_every_stage_and_no_reminder_once_ended(world: World) -> None:
    incident = await outage(world, reminder_timer_default_seconds=3600)
    await command(world, world.alice, "check 2", incident)
    await command(world, world.alice, "stage next --force", incident)
    text = await command(world, world.alice, "info", incident)
    lines = text.splitlines()
    assert lines[0] == "#### Incident: Primary DB down"
    assert lines[1].startswith(f"**Status:** ongoing · **Commander:** @{world.alice.username} · **Duration:** ")
    assert any(line.startswith("**Status update reminder:** every 1h, next in ") for line in lines)
    # Every stage, the active one marked: the open item left behind in Triage is still in view.
    assert lines[-10:] == [
        "",
        "**Stage 1/3 Triage** · 1/2 done",
        "1. [ ] Page the DBA",
        "2. [x] Read the logs",
        "",
        "**Stage 2/3 Mitigate** · **active** · 0/1 done",
        "1. [ ] Fail over",
        "",
        "**Stage 3/3 Verify** · 0/0 done",
        "*(no items)*",
    ]
    end = await world.slash(world.alice, "end", channel_id=incident.channel_id)
    assert end["text"] == ""
    [opened] = dialogs(world, world.alice, "end")
    assert opened["dialog"]["introduction_text"] == (
        "End **Primary DB down**? Everyone in the incident channel is told."
    )
    await submit_dialog(world, world.alice, opened)
    await eventually(lambda: state(world, incident.id), lambda s: s.status == IncidentStatus.ENDED, what="ended")
    ended = await command(world, world.alice, "info", incident)
    assert "**Status:** ended" in ended
    assert "reminder" not in ended.lower(), "an ended incident has no reminder"


async def test_list_shows_ongoing_incidents_i_can_see_newest_first(world: World) -> None:
    await create_playbook(world, world.alice)
    first = await start_incident(world, world.alice, "Database outage", "Older outage")
    second = await start_incident(world, world.alice, "Database outage", "Newer outage")

    async def listing(user_name: str) -> str:
        reply = await world.slash(world.users[user_name], "list")
        text: str = reply["text"]
        return text

    header = "#### Ongoing incidents\n\n| Incident | Commander | Duration | Stage |\n|---|---|---|---|\n"
    rows = [
        f"| Newer outage (~{second.channel_name}) | @{world.alice.username} | ",
        f"| Older outage (~{first.channel_name}) | @{world.alice.username} | ",
    ]
    text = await eventually(lambda: listing("alice"), lambda t: all(r in t for r in rows), what="both listed")
    assert text.startswith(header)
    assert text.index(rows[0]) < text.index(rows[1]), "newest first"
    assert text.rstrip().endswith("| 1. Triage |")
    # Private incidents are listed for their channel's members (and admins) only.
    nothing = await listing("carol")
    assert nothing == "There are no ongoing incidents in this team that you can see."
    admin = await listing("admin")
    assert all(r in admin for r in rows)

    await command(world, world.alice, "end", first)
    await submit_dialog(world, world.alice, dialogs(world, world.alice, "end")[-1])
    after = await eventually(lambda: listing("alice"), lambda t: "Older outage" not in t, what="ended one to go")
    assert rows[0] in after


async def test_timeline_is_a_table_of_time_since_start_and_what(world: World) -> None:
    incident = await outage(world)
    await command(world, world.alice, "check 1", incident)
    await command(world, world.alice, "update investigating Looking into it | carefully", incident)
    text = await command(world, world.alice, "timeline", incident)
    lines = text.splitlines()
    assert lines[:4] == [
        "#### Timeline: Primary DB down",
        "",
        "| Time (UTC) | Since start | Id | What |",
        "|---|---|---|---|",
    ]
    rows = lines[4:]
    current = await state(world, incident.id)
    assert len(rows) == len(current.timeline) == 3
    alice = f"@{world.alice.username}"
    started = current.timeline[0].at
    assert rows[0] == (
        f"| {started:%Y-%m-%d %H:%M:%S} | 00:00 | {current.timeline[0].id} "
        f"| {alice} started the incident from playbook **Database outage** (v1) |"
    )
    checked = current.timeline[1]
    since = int((checked.at - started).total_seconds())
    assert rows[1] == (
        f"| {checked.at:%Y-%m-%d %H:%M:%S} | {since // 60:02}:{since % 60:02} | {checked.id} "
        f"| {alice} marked **Page the DBA** as done (stage 1/3 Triage) |"
    )
    # What the update said, not just that there was one.
    assert rows[2].endswith(f"| {alice} posted a status update (investigating): Looking into it \\| carefully |")


# ---------------------------------------------------------------------------- checklist


async def test_check_toggles_an_item_of_the_active_or_the_named_stage(world: World) -> None:
    incident = await outage(world)
    alice = f"@{world.alice.username}"
    assert await command(world, world.alice, "check 1", incident) == "Marked 'Page the DBA' as done."
    await on_timeline_only(world, incident, f"{alice} marked **Page the DBA** as done (stage 1/3 Triage)")
    assert (await state(world, incident.id)).checklists[0].items[0].state == ItemState.DONE

    assert await command(world, world.alice, "check 1", incident) == "Marked 'Page the DBA' as not done."
    await on_timeline_only(world, incident, f"{alice} marked **Page the DBA** as not done (stage 1/3 Triage)")
    assert await command(world, world.alice, "check 2 1", incident) == "Marked 'Fail over' as done."
    current = await state(world, incident.id)
    assert [i.state for i in current.checklists[0].items] == [ItemState.OPEN, ItemState.OPEN]
    assert current.checklists[1].items[0].state == ItemState.DONE
    assert current.active_stage == 0

    refusals = {
        "check 3": "There is no such item: stage 'Triage' has 2 item(s).",
        "check 4 1": "There is no such stage: this incident has 3 stage(s).",
        "check 0": f"The item must be a number from 1, as shown by `/incident info` (got '0').\n{USAGE_CHECK}",
        "check one": f"The item must be a number from 1, as shown by `/incident info` (got 'one').\n{USAGE_CHECK}",
        "check x 1": f"The stage must be a number from 1, as shown by `/incident info` (got 'x').\n{USAGE_CHECK}",
        "check": f"Name the item (and optionally the stage first).\n{USAGE_CHECK}",
        "check 1 2 3": f"Name the item (and optionally the stage first).\n{USAGE_CHECK}",
    }
    await answered(world, world.alice, incident, refusals)
    assert (await state(world, incident.id)).checklists == current.checklists


async def test_checkadd_and_checkremove_edit_a_stage(world: World) -> None:
    incident = await outage(world)
    alice = f"@{world.alice.username}"
    added = await command(world, world.alice, "checkadd 3 Check the replica's   lag", incident)
    assert added == "Added \"Check the replica's lag\" as item 1 of stage 'Verify'."
    await on_timeline_only(world, incident, f"{alice} added **Check the replica's lag** to stage 'Verify'")
    assert [i.title for i in (await state(world, incident.id)).checklists[2].items] == ["Check the replica's lag"]

    quoted = await command(world, world.alice, 'checkadd 2 "Tell the vendor"', incident)
    assert quoted == "Added 'Tell the vendor' as item 2 of stage 'Mitigate'."

    removed = await command(world, world.alice, "checkremove 1 2", incident)
    assert removed == "Removed 'Read the logs'."
    await on_timeline_only(world, incident, f"{alice} removed **Read the logs** from stage 'Triage'")
    assert [i.title for i in (await state(world, incident.id)).checklists[0].items] == ["Page the DBA"]

    too_long = "checkadd 1 " + "x" * 257
    refusals = {
        "checkadd 1": f"Name the stage and the new item's title.\n{USAGE_CHECKADD}",
        "checkadd first Do it": "The stage must be a number from 1, as shown by `/incident info` (got 'first').",
        "checkadd 9 Do it": "There is no such stage: this incident has 3 stage(s).",
        too_long: f"Invalid request: title: String should have at most 256 characters.\n{USAGE_CHECKADD}",
        "checkremove 1": f"Name the stage and the item.\n{USAGE_CHECKREMOVE}",
        "checkremove 1 5": "There is no such item: stage 'Triage' has 1 item(s).",
        "checkremove 1 -1": "The item must be a number from 1, as shown by `/incident info` (got '-1').",
    }
    for text, expected in refusals.items():
        assert (await command(world, world.alice, text, incident)).startswith(expected), text
    current = await state(world, incident.id)
    assert [len(s.items) for s in current.checklists] == [1, 2, 1]


async def test_assign_and_unassign_an_item(world: World) -> None:
    incident = await outage(world)
    alice, bob = f"@{world.alice.username}", f"@{world.bob.username}"
    refused = await command(world, world.alice, f"assign 1 1 {bob}", incident)
    assert refused == f"{bob} must be part of this channel to be assigned an item. Add them first."
    await command(world, world.alice, f"add {bob}", incident)
    await eventually(lambda: state(world, incident.id), lambda s: world.bob.id in s.member_ids, what="bob added")

    await command(world, world.alice, f"assign 1 1 {bob.upper()}", incident)
    await bot_posted(world, incident.channel_id, f"{alice} assigned **Page the DBA** to {bob}")
    assert (await state(world, incident.id)).checklists[0].items[0].assignee_id == world.bob.id
    assert f"1. [ ] Page the DBA — {bob}\n2. [ ] Read the logs" in await command(world, world.alice, "info", incident)

    await command(world, world.alice, "assign 1 1 @none", incident)
    await bot_posted(world, incident.channel_id, f"{alice} unassigned **Page the DBA** (was {bob})")
    assert (await state(world, incident.id)).checklists[0].items[0].assignee_id is None

    refusals = {
        "assign 1 1 @none": "Item 'Page the DBA' has no assignee.",
        "assign 1 1 bob": f"Name people with @username (got 'bob').\n{USAGE_ASSIGN}",
        "assign 1 1 @nobody-here": f"There is no user @nobody-here.\n{USAGE_ASSIGN}",
        "assign 1 1": f"Name the stage, the item and the person.\n{USAGE_ASSIGN}",
        "assign 1 7 @none": "There is no such item: stage 'Triage' has 2 item(s).",
        f"assign 1 1 @{world.stack.bot['username']}": f"@{world.stack.bot['username']} is a bot and cannot be "
        "assigned an item.",
    }
    await answered(world, world.alice, incident, refusals)


async def test_assign_reply_keeps_the_item_title(world: World) -> None:
    incident = await outage(world)
    bob = f"@{world.bob.username}"
    await command(world, world.alice, f"add {bob}", incident)
    await eventually(lambda: state(world, incident.id), lambda s: world.bob.id in s.member_ids, what="bob added")
    assert await command(world, world.alice, f"assign 1 1 {bob}", incident) == f"Assigned **Page the DBA** to {bob}."


# ---------------------------------------------------------------------------- stages


async def test_stage_next_with_open_items_asks_for_confirmation(world: World) -> None:
    incident = await outage(world)
    alice = f"@{world.alice.username}"
    assert await command(world, world.alice, "stage next", incident) == ""
    [opened] = dialogs(world, world.alice, "stage")
    assert opened["dialog"]["title"] == "Items still open"
    assert opened["dialog"]["introduction_text"] == ("Stage 'Triage' still has 2 open item(s). Move on anyway?")
    assert (await state(world, incident.id)).active_stage == 0, "nothing moves before the confirmation"

    assert await submit_dialog(world, world.alice, opened) == {}
    posts = await bot_posted(world, incident.channel_id, "moved the incident to stage 2/3 Mitigate")
    assert posts[-1] == (
        f"{alice} moved the incident to stage 2/3 Mitigate (leaving 2 open item(s) in 'Triage')\n\n1. [ ] Fail over"
    )
    assert (await state(world, incident.id)).active_stage == 1

    forced = await command(world, world.alice, "stage next --force", incident)
    assert forced == "Moved to stage 3/3 Verify."
    await bot_posted(world, incident.channel_id, "moved the incident to stage 3/3 Verify (leaving 1 open item(s)")
    assert len(dialogs(world, world.alice, "stage")) == 1, "--force needs no confirmation"
    assert await command(world, world.alice, "stage next", incident) == "Stage 'Verify' is already the last stage."

    assert await command(world, world.alice, "stage prev", incident) == "Moved to stage 2/3 Mitigate."
    assert await command(world, world.alice, "stage PREV", incident) == "Moved to stage 1/3 Triage."
    assert await command(world, world.alice, "stage prev", incident) == "Stage 'Triage' is already the first stage."
    assert (await state(world, incident.id)).active_stage == 0
    assert await command(world, world.alice, "stage sideways", incident) == f"Say `next` or `prev`.\n{USAGE_STAGE}"
    assert await command(world, world.alice, "stage", incident) == f"Say `next` or `prev`.\n{USAGE_STAGE}"


async def test_stage_next_moves_at_once_when_every_item_is_done(world: World) -> None:
    incident = await outage(world)
    await command(world, world.alice, "check 1", incident)
    await command(world, world.alice, "check 2", incident)
    assert await command(world, world.alice, "stage next", incident) == "Moved to stage 2/3 Mitigate."
    assert not dialogs(world, world.alice, "stage")
    await bot_posted(world, incident.channel_id, "moved the incident to stage 2/3 Mitigate\n\n1. [ ] Fail over")


# ---------------------------------------------------------------------------- people and channels


async def test_commander_is_shown_and_changed(world: World) -> None:
    incident = await outage(world)
    alice, bob = f"@{world.alice.username}", f"@{world.bob.username}"
    assert await command(world, world.alice, "commander", incident) == f"The commander is {alice}."
    outsider = await command(world, world.alice, f"commander {bob}", incident)
    assert outsider == f"{bob} must be part of this channel to make them commander."
    await command(world, world.alice, f"add {bob}", incident)
    await eventually(lambda: state(world, incident.id), lambda s: world.bob.id in s.member_ids, what="bob added")

    assert await command(world, world.alice, f"commander {bob}", incident) == f"{bob} is now the commander."
    await bot_posted(world, incident.channel_id, f"{alice} changed the commander from {alice} to {bob}")
    assert (await state(world, incident.id)).commander_id == world.bob.id
    assert await command(world, world.bob, "commander", incident) == f"The commander is {bob}."

    bot = f"@{world.stack.bot['username']}"
    refusals = {
        f"commander {bob}": f"{bob} is already the commander.",
        f"commander {bot}": f"{bot} is a bot and cannot be the commander.",
        f"commander {alice} {bob}": f"Name one person.\n{USAGE_COMMANDER}",
        "commander alice": f"Name people with @username (got 'alice').\n{USAGE_COMMANDER}",
    }
    await answered(world, world.alice, incident, refusals)


async def test_add_invites_people_to_the_incident_channel(world: World) -> None:
    incident = await outage(world)
    alice, bob, carol = (f"@{u.username}" for u in (world.alice, world.bob, world.carol))
    assert await command(world, world.alice, f"add {bob} {carol}", incident) == f"Adding {bob}, {carol}."
    await bot_posted(world, incident.channel_id, f"{alice} added {bob}, {carol} to the incident")
    await world.standin.wait_for(
        lambda: {world.bob.id, world.carol.id} <= set(world.standin.channel_members(incident.channel_id))
    )
    current = await eventually(
        lambda: state(world, incident.id), lambda s: world.carol.id in s.member_ids, what="carol recorded"
    )
    assert {world.alice.id, world.bob.id, world.carol.id} <= set(current.member_ids)

    mallory = f"@{world.mallory.username}"
    refusals = {
        f"add {bob}": f"{bob} already in the incident channel.",
        f"add {mallory}": f"{mallory} not in this team; only team members can join the incident channel.",
        "add": f"Name at least one person.\n{USAGE_ADD}",
        "add bob": f"Name people with @username (got 'bob').\n{USAGE_ADD}",
        "add @ghost-user": f"There is no user @ghost-user.\n{USAGE_ADD}",
    }
    await answered(world, world.alice, incident, refusals)
    assert world.mallory.id not in world.standin.channel_members(incident.channel_id)


async def test_announce_posts_in_channels_the_caller_can_post_to(world: World) -> None:
    incident = await outage(world)
    alice = f"@{world.alice.username}"
    off_topic = world.channels["off-topic"]
    assert await command(world, world.alice, "announce ~off-topic", incident) == "Announced in ~off-topic."
    announced = await bot_posted(world, off_topic["id"], "Incident: Primary DB down")
    # The incident channel is private: nobody outside it is invited to a channel they cannot see.
    assert announced[-1] == (
        f"#### :rotating_light: Incident: Primary DB down\nCommander {alice} · stage 1/3 Triage · "
        f"the incident channel is private: ask {alice} to add you\n"
        f"Announced by {alice}; this channel is told when its status changes and when it ends."
    )
    await bot_posted(world, incident.channel_id, f"{alice} announced the incident in ~off-topic")
    # The announced channel is kept informed, like a broadcast channel.
    await command(world, world.alice, "update monitoring Replica promoted", incident)
    told = await bot_posted(world, off_topic["id"], "status update (monitoring)")
    assert told[-1] == (
        f"**Incident Primary DB down** (~{incident.channel_name}): status update (monitoring) from {alice}:\n"
        "> Replica promoted"
    )

    private = world.standin.create_channel(world.team_id, "bobs-room", "Bob's room", type="P")
    world.standin.add_channel_member(private["id"], world.bob.id)
    world.standin.add_channel_member(private["id"], world.stack.bot["id"])
    hidden = world.standin.create_channel(world.team_id, "alices-room", "Alice's room", type="P")
    world.standin.add_channel_member(hidden["id"], world.alice.id)
    add_bot = f"For a private channel, add @{world.stack.bot['username']} to it first.\n{USAGE_ANNOUNCE}"
    refusals = {
        "announce ~bobs-room": f"There is no channel ~bobs-room that you can see in this team.\n{USAGE_ANNOUNCE}",
        "announce ~alices-room": f"There is no channel ~alices-room that you can see in this team. {add_bot}",
        "announce ~nowhere": f"There is no channel ~nowhere that you can see in this team. {add_bot}",
        "announce off-topic": f"Name channels with ~channel-name (got 'off-topic').\n{USAGE_ANNOUNCE}",
        "announce": f"Name at least one channel.\n{USAGE_ANNOUNCE}",
    }
    await answered(world, world.alice, incident, refusals)
    assert not world.standin.posts(private["id"])
    assert not world.standin.posts(hidden["id"])


# ---------------------------------------------------------------------------- status updates and reminders


async def test_update_posts_a_status_update_and_resets_the_reminder(world: World) -> None:
    incident = await outage(world, reminder_timer_default_seconds=3600)
    alice = f"@{world.alice.username}"
    text = 'update Identified The replica\'s "lag" is gone\nFailing over now'
    assert await command(world, world.alice, text, incident) == "Status update posted."
    posts = await bot_posted(world, incident.channel_id, "#### Status update")
    assert posts[-1] == (
        f'#### Status update — **Identified**\nfrom {alice}\n\n> The replica\'s "lag" is gone\n> Failing over now'
    )
    current = await state(world, incident.id)
    update = current.status_updates[-1]
    assert (update.status, update.message) == (
        UpdateStatus.IDENTIFIED,
        'The replica\'s "lag" is gone\nFailing over now',
    )
    assert current.reminder_due_at is not None
    assert (current.reminder_due_at - update.at).total_seconds() == 3600

    assert await command(world, world.alice, "update resolvedish is not a status", incident) == "Status update posted."
    assert (await state(world, incident.id)).status_updates[-1].status is None
    empty = await command(world, world.alice, "update resolved", incident)
    assert empty == f"Write the update's message.\n{USAGE_UPDATE}"
    long = await command(world, world.alice, "update " + "x" * 4001, incident)
    assert long == f"Invalid request: message: String should have at most 4000 characters.\n{USAGE_UPDATE}"
    assert len((await state(world, incident.id)).status_updates) == 2


async def test_reminder_changes_the_status_update_interval(world: World) -> None:
    incident = await outage(world)
    alice = f"@{world.alice.username}"
    for typed, seconds, setting in (("15m", 900, "every 15m"), ("1h", 3600, "every 1h"), ("4H", 14400, "every 4h")):
        reply = await command(world, world.alice, f"reminder {typed}", incident)
        assert reply == f"Status update reminder set {setting}."
        await bot_posted(world, incident.channel_id, f"{alice} set the status update reminder {setting}")
        current = await state(world, incident.id)
        assert current.reminder_seconds == seconds
        assert current.reminder_due_at is not None
        assert current.reminder_due_at > datetime.now(UTC)
    assert await command(world, world.alice, "reminder off", incident) == "Status update reminder set off."
    current = await state(world, incident.id)
    assert (current.reminder_seconds, current.reminder_due_at) == (0, None)

    refusals = {
        "reminder off": "The status update reminder is already off.",
        "reminder soon": f"'soon' is not a duration; use e.g. 15m, 1h, 4h or off.\n{USAGE_REMINDER}",
        "reminder": f"Give one interval, or off.\n{USAGE_REMINDER}",
        "reminder 1h 4h": f"Give one interval, or off.\n{USAGE_REMINDER}",
    }
    await answered(world, world.alice, incident, refusals)


# ---------------------------------------------------------------------------- end and restart


async def test_end_asks_for_confirmation_then_ends_and_restart_reopens(world: World) -> None:
    incident = await outage(world)
    alice = f"@{world.alice.username}"
    assert await command(world, world.alice, "end", incident) == ""
    [opened] = dialogs(world, world.alice, "end")
    assert opened["url"] == f"{world.stack.api_url}/mattermost/dialog"
    assert (opened["dialog"]["title"], opened["dialog"]["submit_label"]) == ("End incident?", "End incident")
    assert opened["dialog"]["introduction_text"].startswith("End **Primary DB down**?")
    assert (await state(world, incident.id)).status == IncidentStatus.ONGOING, "nothing ends before the confirmation"

    assert await submit_dialog(world, world.alice, opened) == {}
    await bot_posted(world, incident.channel_id, f"{alice} ended the incident after ")
    assert (await state(world, incident.id)).status == IncidentStatus.ENDED
    assert await command(world, world.alice, "end", incident) == "This incident has already ended."
    assert len(dialogs(world, world.alice, "end")) == 1, "no second confirmation for an ended incident"
    ended = "This incident has ended. Restart it first to make changes."
    assert await command(world, world.alice, "check 1", incident) == ended
    assert (await command(world, world.alice, "info", incident)).splitlines()[1].startswith("**Status:** ended")

    assert await command(world, world.alice, "restart", incident) == "Incident restarted."
    await bot_posted(world, incident.channel_id, f"{alice} restarted the incident")
    current = await settled(world, incident.id)
    assert (current.status, len(current.periods)) == (IncidentStatus.ONGOING, 2)
    again = await command(world, world.alice, "restart", incident)
    assert again == "This incident is ongoing; only an ended incident can be restarted."
    assert await command(world, world.alice, "check 1", incident) == "Marked 'Page the DBA' as done."


# ---------------------------------------------------------------------------- help


async def test_help_and_unknown_input_show_every_command_with_examples(world: World) -> None:
    names = SUBCOMMANDS
    for typed in ("help", "HELP", "", "frobnicate now"):
        reply = await world.slash(world.alice, typed)
        assert reply["response_type"] == "ephemeral"
        rows = [line for line in reply["text"].splitlines() if line.startswith("| `/incident ")]
        assert [row.split()[2].rstrip("`") for row in rows] == names, typed
        assert 'Examples: `/incident start "Database outage" Primary DB down`' in reply["text"]
        assert "Stages and items are numbered from 1" in reply["text"]
    unknown = await world.slash(world.alice, "frobnicate now")
    assert unknown["text"].startswith("Unknown command `frobnicate`.")


async def test_start_by_id_right_after_the_playbook_is_created(world: World) -> None:
    """Lists follow visibility a moment late; an id is read from the playbook itself."""
    created = await world.api(world.alice).post(
        "/api/v1/playbooks", json={"team_id": world.team_id, "title": "Fresh", "checklists": [{"title": "Only"}]}
    )
    assert created.status_code == 201
    reply = await world.slash(world.alice, f"start {created.json()['id']} Right away")
    assert reply["text"].startswith("Starting incident **Right away** from playbook **Fresh**")
    other = await world.slash(world.carol, f"start {created.json()['id']} Not mine")
    assert other["text"].startswith(f"You have no playbook '{created.json()['id']}' in this team.")
