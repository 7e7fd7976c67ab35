"""The incident's rules, without Temporal: what each command refuses and what it changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from models import incident_commands as cmd
from models.common import Actor, ChannelFact, UserFact
from models.effects import (
    INCIDENT_CHANNEL_LANE,
    ChecklistEffect,
    ClearButtonsEffect,
    PostEffect,
    RespondEffect,
    lane_of,
)
from models.incident import EventType, IncidentStart, IncidentState, IncidentStatus, ItemState
from models.playbook import ChecklistItemSpec, Playbook, StageSpec
from tests.mattermost_mentions import mentions
from workflows import incident_messages as text
from workflows.incident_rules import Incident, new_incident

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALICE = "a" * 26
BOB = "b" * 26
CAROL = "c" * 26
TEAM = "t" * 26


def actor(user_id: str = ALICE, name: str = "alice", *, member: bool = True, admin: bool = False) -> Actor:
    return Actor(user_id=user_id, username=name, is_channel_member=member, is_system_admin=admin, is_team_member=True)


def fact(user_id: str = BOB, name: str = "bob", *, member: bool = True, team: bool = True) -> UserFact:
    return UserFact(user_id=user_id, username=name, is_channel_member=member, is_team_member=team)


def playbook(reminder: int = 0) -> Playbook:
    return Playbook(
        id="pb1",
        team_id=TEAM,
        title="Database outage",
        checklists=[
            StageSpec(title="Triage", items=[ChecklistItemSpec(title="Page DBA"), ChecklistItemSpec(title="Logs")]),
            StageSpec(title="Fix", items=[ChecklistItemSpec(title="Failover", command="/db failover")]),
            StageSpec(title="Review", items=[]),
        ],
        member_ids=[ALICE],
        reminder_timer_default_seconds=reminder,
        broadcast_channel_ids=["x" * 26],
        version=3,
        created_at=T0,
        updated_at=T0,
        created_by=ALICE,
    )


def incident(reminder: int = 0, **start: object) -> Incident:
    ids = (f"id{n}" for n in itertools.count())
    fields: dict[str, object] = {
        "id": "inc1",
        "team_id": TEAM,
        "name": "DB down",
        "reporter": actor(),
        "playbook": playbook(reminder),
    }
    fields.update(start)
    state = new_incident(IncidentStart.model_validate(fields), T0, lambda: next(ids))
    made = Incident(state, lambda: next(ids))
    made.channel_ready(T0, "chan" + "0" * 22, "inc-db-down-inc1", [], None)
    state.outbox.clear()
    return made


def refusal(call: object) -> ApplicationError:
    assert callable(call)
    with pytest.raises(ApplicationError) as caught:
        call()
    return caught.value


def test_new_incident_snapshots_the_playbook() -> None:
    made = incident(reminder=900)
    state = made.state
    assert [s.title for s in state.checklists] == ["Triage", "Fix", "Review"]
    assert state.playbook is not None
    assert state.playbook.version == 3
    assert state.commander_id == ALICE  # no default commander: the reporter
    assert state.reminder_due_at == T0 + timedelta(seconds=900)
    assert state.timeline[0].type == EventType.CREATED
    assert state.is_public is False


def test_blank_incident_has_one_empty_stage() -> None:
    made = incident(playbook=None)
    assert [(s.title, s.items) for s in made.state.checklists] == [("Checklist", [])]


def test_explicit_commander_wins() -> None:
    made = incident(commander=fact(CAROL, "carol"))
    assert made.state.commander_id == CAROL


def test_stage_next_with_open_items_needs_force() -> None:
    made = incident()
    error = refusal(lambda: made.check_change_stage(cmd.ChangeStage(actor=actor(), direction="next")))
    assert error.type == "ConfirmationRequired"
    assert error.message == "Stage 'Triage' still has 2 open item(s). Move on anyway?"
    assert error.details[0] == {"stage": 0, "title": "Triage", "open_items": 2}
    made.check_change_stage(cmd.ChangeStage(actor=actor(), direction="next", force=True))
    made.change_stage(cmd.ChangeStage(actor=actor(), direction="next", force=True), T0)
    assert made.state.active_stage == 1
    assert made.state.timeline[-1].details["forced"] is True


def test_stage_bounds() -> None:
    made = incident()
    error = refusal(lambda: made.check_change_stage(cmd.ChangeStage(actor=actor(), direction="prev")))
    assert error.message == "Stage 'Triage' is already the first stage."
    made.change_stage(cmd.ChangeStage(actor=actor(), stage=2), T0)
    error = refusal(lambda: made.check_change_stage(cmd.ChangeStage(actor=actor(), direction="next")))
    assert error.message == "Stage 'Review' is already the last stage."


def test_non_members_cannot_change_anything() -> None:
    made = incident()
    outsider = actor(CAROL, "carol", member=False)
    error = refusal(lambda: made.check_set_item_state(cmd.SetItemState(actor=outsider, stage=0, item=0, state="done")))
    # A private incident does not exist for those outside it; a public one is seen, not changed.
    assert error.type == "NotFound"
    made.state.is_public = True
    error = refusal(lambda: made.check_set_item_state(cmd.SetItemState(actor=outsider, stage=0, item=0, state="done")))
    assert error.type == "Forbidden"
    made.check_set_item_state(
        cmd.SetItemState(actor=actor(CAROL, admin=True, member=False), stage=0, item=0, state="done")
    )


def test_item_state_toggle_and_no_op() -> None:
    made = incident()
    made.set_item_state(cmd.SetItemState(actor=actor(), stage=0, item=0, state="toggle"), T0)
    item = made.state.checklists[0].items[0]
    assert item.state == ItemState.DONE
    assert item.state_changed_at == T0
    error = refusal(lambda: made.check_set_item_state(cmd.SetItemState(actor=actor(), stage=0, item=0, state="done")))
    assert error.message == "Item 'Page DBA' is already done."
    # The live checklist post shows it (edited after every change); no post of its own.
    checklist = made.state.outbox[-1].effect
    assert isinstance(checklist, ChecklistEffect), "the live checklist post is edited after every change"
    assert not [p for p in made.state.outbox if isinstance(p.effect, PostEffect) and "marked" in p.effect.message]
    assert made.state.timeline[-1].summary == "@alice marked **Page DBA** as done (stage 1/3 Triage)"
    assert item.state_changed_by == ALICE


def test_a_click_on_a_stale_checklist_is_refused() -> None:
    made = incident()
    first = made.state.checklists[0].items[0]
    made.check_set_item_state(cmd.SetItemState(actor=actor(), stage=0, item=0, item_id=first.id, state="done"))
    error = refusal(
        lambda: made.check_set_item_state(
            cmd.SetItemState(actor=actor(), stage=0, item=1, item_id=first.id, state="done")
        )
    )
    assert error.message.startswith("The checklist changed since this was shown; nothing was changed.")
    error = refusal(
        lambda: made.check_set_item_state(
            cmd.SetItemState(actor=actor(), stage=0, item=9, item_id=first.id, state="done")
        )
    )
    assert error.message.startswith("The checklist changed since this was shown")


def test_an_update_answers_the_reminder_and_announced_channels_are_kept_informed() -> None:
    made = incident(reminder=60)
    made.send_reminder(T0 + timedelta(seconds=60))
    reminder = made.state.outbox[-1].effect
    assert isinstance(reminder, PostEffect)
    assert reminder.remember_as
    assert reminder.remember_as.startswith("reminder:")
    channel = ChannelFact(channel_id="d" * 26, name="town-square", team_id=TEAM, actor_can_post=True)
    made.state.channel_id, made.state.channel_name = "c" * 26, "inc-x"
    made.announce(cmd.Announce(actor=actor(), channels=[channel]), T0)
    assert made.state.announced_channel_ids == [channel.channel_id]
    made.post_status_update(cmd.PostStatusUpdate(actor=actor(), message="All good"), T0 + timedelta(seconds=61))
    effects = [pending.effect for pending in made.state.outbox]
    assert any(isinstance(e, ClearButtonsEffect) and e.post_name == "reminder:" for e in effects)
    told = [e for e in effects if isinstance(e, PostEffect) and e.channel_id == channel.channel_id]
    assert told[-1].message.endswith("status update from @alice:\n> All good")


def test_item_references_are_checked() -> None:
    made = incident()
    error = refusal(lambda: made.check_set_item_state(cmd.SetItemState(actor=actor(), stage=5, item=0, state="done")))
    assert error.message == "There is no such stage: this incident has 3 stage(s)."
    error = refusal(lambda: made.check_remove_item(cmd.RemoveItem(actor=actor(), stage=0, item=9)))
    assert error.message == "There is no such item: stage 'Triage' has 2 item(s)."


def test_assignment_rules() -> None:
    made = incident()
    outsider = fact(CAROL, "carol", member=False)
    error = refusal(lambda: made.check_assign_item(cmd.AssignItem(actor=actor(), stage=0, item=0, assignee=outsider)))
    assert error.message.startswith("@carol must be part of this channel")
    made.assign_item(cmd.AssignItem(actor=actor(), stage=0, item=0, assignee=fact()), T0)
    assert made.state.checklists[0].items[0].assignee_id == BOB
    error = refusal(lambda: made.check_assign_item(cmd.AssignItem(actor=actor(), stage=0, item=0, assignee=fact())))
    assert error.message == "@bob is already assigned to 'Page DBA'."
    made.assign_item(cmd.AssignItem(actor=actor(), stage=0, item=0, assignee=None), T0)
    error = refusal(lambda: made.check_assign_item(cmd.AssignItem(actor=actor(), stage=0, item=0, assignee=None)))
    assert error.message == "Item 'Page DBA' has no assignee."


def test_checklist_editing() -> None:
    made = incident()
    made.add_item(cmd.AddItem(actor=actor(), stage=0, title="Call vendor", position=0), T0)
    assert [i.title for i in made.state.checklists[0].items] == ["Call vendor", "Page DBA", "Logs"]
    made.move_item(cmd.MoveItem(actor=actor(), stage=0, item=0, to_position=2), T0)
    assert [i.title for i in made.state.checklists[0].items] == ["Page DBA", "Logs", "Call vendor"]
    made.edit_item(cmd.EditItem(actor=actor(), stage=0, item=2, title="Call the vendor"), T0)
    made.remove_item(cmd.RemoveItem(actor=actor(), stage=0, item=0), T0)
    assert [i.title for i in made.state.checklists[0].items] == ["Logs", "Call the vendor"]
    kinds = [e.type for e in made.state.timeline[1:]]
    assert kinds == [
        EventType.ITEM_ADDED,
        EventType.ITEM_MOVED,
        EventType.ITEM_RENAMED,
        EventType.ITEM_REMOVED,
    ]
    error = refusal(lambda: made.check_move_item(cmd.MoveItem(actor=actor(), stage=0, item=0, to_position=0)))
    assert error.type == "Conflict"


def test_running_an_item_command() -> None:
    made = incident()
    error = refusal(lambda: made.check_run_item_command(cmd.RunItemCommand(actor=actor(), stage=0, item=0)))
    assert error.message == "Item 'Page DBA' has no slash command to run."
    made.run_item_command(cmd.RunItemCommand(actor=actor(), stage=1, item=0), T0)
    assert made.state.checklists[1].items[0].command_last_run == T0


def test_commander_rules() -> None:
    made = incident()
    error = refusal(
        lambda: made.check_change_commander(cmd.ChangeCommander(actor=actor(), commander=fact(member=False)))
    )
    assert error.message == "@bob must be part of this channel to make them commander."
    error = refusal(
        lambda: made.check_change_commander(cmd.ChangeCommander(actor=actor(), commander=fact(ALICE, "alice")))
    )
    assert error.message == "@alice is already the commander."
    made.change_commander(cmd.ChangeCommander(actor=actor(), commander=fact()), T0)
    assert made.state.commander_id == BOB


def test_invites_need_team_members_and_skip_channel_members() -> None:
    made = incident()
    error = refusal(lambda: made.check_invite_members(cmd.InviteMembers(actor=actor(), users=[fact(team=False)])))
    assert "only team members can join" in error.message
    error = refusal(lambda: made.check_invite_members(cmd.InviteMembers(actor=actor(), users=[fact(member=True)])))
    assert error.message == "@bob already in the incident channel."
    result = made.invite_members(
        cmd.InviteMembers(actor=actor(), users=[fact(member=False), fact(CAROL, "carol", member=True)]), T0
    )
    assert result == "Adding @bob (@carol already in the channel)."


def test_status_update_resets_the_reminder() -> None:
    made = incident(reminder=600)
    later = T0 + timedelta(seconds=300)
    made.post_status_update(cmd.PostStatusUpdate(actor=actor(), message="Failing over", status="identified"), later)
    assert made.state.reminder_due_at == later + timedelta(seconds=600)
    assert made.state.first_status_update_at == later
    broadcast = [p.effect for p in made.state.outbox if isinstance(p.effect, PostEffect) and p.effect.channel_id]
    assert broadcast
    assert "status update (identified)" in broadcast[0].message


def test_reminder_settings() -> None:
    made = incident(reminder=600)
    made.state.config.reminder_min_seconds = 60
    error = refusal(lambda: made.check_set_reminder(cmd.SetReminder(actor=actor(), seconds=10)))
    assert error.message == "A reminder interval must be off (0) or between 1m and 7d (60 to 604800 seconds)."
    error = refusal(lambda: made.check_set_reminder(cmd.SetReminder(actor=actor(), seconds=600)))
    assert error.message == "The status update reminder is already 10m."
    made.set_reminder(cmd.SetReminder(actor=actor(), seconds=0), T0)
    assert made.state.reminder_due_at is None
    error = refusal(lambda: made.check_snooze_reminder(cmd.SnoozeReminder(actor=actor(), seconds=60)))
    assert error.message == "The status update reminder is off for this incident."


def test_reminder_fires_once_per_interval() -> None:
    made = incident(reminder=60)
    assert not made.reminder_is_due(T0 + timedelta(seconds=59))
    assert made.reminder_is_due(T0 + timedelta(seconds=60))
    made.send_reminder(T0 + timedelta(seconds=60))
    assert made.state.reminder_due_at == T0 + timedelta(seconds=120)
    assert not made.reminder_is_due(T0 + timedelta(seconds=61))
    post = made.state.outbox[-1].effect
    assert isinstance(post, PostEffect)
    assert [b.action for b in post.buttons] == ["post_update", "snooze"]


def test_announce_needs_post_permission() -> None:
    made = incident()
    closed = ChannelFact(channel_id="d" * 26, name="secret", team_id=TEAM, actor_can_post=False)
    error = refusal(lambda: made.check_announce(cmd.Announce(actor=actor(), channels=[closed])))
    assert error.type == "Forbidden"


def test_end_and_restart_count_only_ongoing_time() -> None:
    from models.incident_views import time_to_resolution, to_record

    made = incident(reminder=60)
    made.end(cmd.EndIncident(actor=actor()), T0 + timedelta(minutes=30))
    state = made.state
    assert state.status == IncidentStatus.ENDED
    assert state.reminder_due_at is None
    assert time_to_resolution(state) == 1800
    error = refusal(lambda: made.check_end(cmd.EndIncident(actor=actor())))
    assert error.message == "This incident has already ended."
    error = refusal(lambda: made.check_set_item_state(cmd.SetItemState(actor=actor(), stage=0, item=0, state="done")))
    assert error.message == "This incident has ended. Restart it first to make changes."
    made.check_restart(cmd.RestartIncident(actor=actor()))
    made.restart(cmd.RestartIncident(actor=actor()), T0 + timedelta(hours=2))
    assert time_to_resolution(state) is None
    made.end(cmd.EndIncident(actor=actor()), T0 + timedelta(hours=2, minutes=10))
    # 30 minutes, then 10 more after the restart; the 90 minutes in between do not count.
    assert time_to_resolution(state) == 2400
    record = to_record(state, T0 + timedelta(hours=5))
    assert record.duration_seconds == 130 * 60
    assert record.ended_at == T0 + timedelta(hours=2, minutes=10)


def test_an_operators_cancellation_ends_the_incident_like_an_end_and_is_on_record() -> None:
    made = incident(reminder=60)
    made.end_by_operator(T0 + timedelta(minutes=12), "stuck")
    state = made.state
    assert (state.status, state.ended_at, state.reminder_due_at) == (
        IncidentStatus.ENDED,
        T0 + timedelta(minutes=12),
        None,
    )
    event = state.timeline[-1]
    assert (event.type, event.actor_id) == (EventType.CANCELLED, "system")
    assert event.summary == (
        "A Temporal operator cancelled the incident's workflow (stuck): the incident ended after 12m. "
        "`/incident restart` reopens it"
    )
    assert event.details == {"reason": "stuck", "ended_it": True, "duration_seconds": 720}
    kinds = [p.effect.kind for p in state.outbox]
    assert kinds == ["post", "checklist", "post", "channel_header", "stats"]
    assert [p.effect.message for p in state.outbox if isinstance(p.effect, PostEffect)] == [
        event.summary,
        "**Incident DB down** (~inc-db-down-inc1): ended after 12m: a Temporal operator cancelled its workflow.",
    ]
    made.check_restart(cmd.RestartIncident(actor=actor()))


def test_an_operators_cancellation_of_an_ended_incident_only_records_it() -> None:
    made = incident()
    made.end(cmd.EndIncident(actor=actor()), T0 + timedelta(minutes=5))
    made.state.outbox.clear()
    made.end_by_operator(T0 + timedelta(minutes=6), "")
    state = made.state
    assert (state.status, state.ended_at) == (IncidentStatus.ENDED, T0 + timedelta(minutes=5))
    assert state.timeline[-1].summary == (
        "A Temporal operator cancelled the incident's workflow; it had already ended, so nothing changed"
    )
    assert state.outbox == []


def test_a_confirmation_names_its_stage_and_goes_stale() -> None:
    """Two people confirm "move on from Triage": the first moves on, the second is refused."""
    made = incident()
    confirmed = cmd.ChangeStage(actor=actor(), direction="next", force=True, from_stage=0)
    made.check_change_stage(confirmed)
    made.change_stage(confirmed, T0)
    assert made.state.active_stage == 1
    error = refusal(lambda: made.check_change_stage(confirmed.model_copy(update={"actor": actor(BOB, "bob")})))
    assert error.type == "Conflict"
    assert error.message.startswith("The incident is no longer at stage 'Triage': it is now at stage 2/3 Fix.")


def test_check_resolves_the_active_stage_when_it_arrives() -> None:
    made = incident()
    made.change_stage(cmd.ChangeStage(actor=actor(), direction="next", force=True), T0)
    made.set_item_state(cmd.SetItemState(actor=actor(), item=0, state="toggle"), T0)
    assert made.state.checklists[1].items[0].state == ItemState.DONE
    assert made.state.checklists[0].items[0].state == ItemState.OPEN
    assert made.state.timeline[-1].details["stage"] == 1


def test_ending_asks_for_confirmation_after_every_other_rule() -> None:
    made = incident()
    error = refusal(lambda: made.check_end(cmd.EndIncident(actor=actor(), confirmed=False)))
    assert error.type == "ConfirmationRequired"
    outsider = actor(CAROL, "carol", member=False)
    error = refusal(lambda: made.check_end(cmd.EndIncident(actor=outsider, confirmed=False)))
    assert error.type == "NotFound"


def test_reminder_interval_bounds() -> None:
    made = incident()
    for seconds in (1, 10**12, 7 * 86400 + 1):
        error = refusal(
            lambda s=seconds: made.check_set_reminder(cmd.SetReminder.model_construct(actor=actor(), seconds=s))
        )
        assert error.type == "Invalid"
        assert "between 1m and 7d" in error.message
    made.check_set_reminder(cmd.SetReminder(actor=actor(), seconds=7 * 86400))


def test_start_rules() -> None:
    from models.refusals import Refusal
    from workflows.incident_rules import check_start

    base = IncidentStart(
        id="inc1",
        team_id=TEAM,
        name="DB down",
        reporter=actor(),
        reporter_permissions=["create_private_channel"],
        playbook=playbook(),
    )
    check_start(base)
    cases = [
        ({"reporter": actor().model_copy(update={"is_team_member": False})}, Refusal.NOT_FOUND, "Team not found."),
        ({"playbook": playbook().model_copy(update={"team_id": "x" * 26})}, Refusal.NOT_FOUND, "Playbook not found"),
        ({"playbook": playbook().model_copy(update={"member_ids": [BOB]})}, Refusal.NOT_FOUND, "Playbook not found"),
        ({"reporter_permissions": []}, Refusal.FORBIDDEN, "You cannot create private channels"),
        ({"commander": fact(team=False)}, Refusal.INVALID, "@bob is not in this team"),
        ({"commander": fact().model_copy(update={"is_bot": True})}, Refusal.INVALID, "@bob is a bot"),
    ]
    for change, kind, words in cases:
        error = refusal(lambda c=change: check_start(base.model_copy(update=c)))
        assert error.type == kind.value, change
        assert words in error.message


def test_a_request_is_remembered_across_runs() -> None:
    made = incident()
    command = cmd.PostStatusUpdate(actor=actor(), message="x", request=cmd.RequestKey(id="k1", fingerprint="f1"))
    assert made.applied(command) is None
    made.remember(command, "Status update posted.")
    carried = Incident(IncidentState.model_validate(made.state.model_dump()), made._new_id)
    earlier = carried.applied(command)
    assert earlier is not None
    assert (earlier.message, earlier.fingerprint) == ("Status update posted.", "f1")


NEWS = "n" * 26


def entries(made: Incident, kind: EventType) -> list[str]:
    return [e.summary for e in made.state.timeline if e.type == kind]


def notices(made: Incident) -> list[str]:
    """Posts queued for the incident channel itself."""
    return [p.effect.message for p in made.state.outbox if isinstance(p.effect, PostEffect) and not p.effect.channel_id]


def test_a_failing_channel_is_one_entry_and_one_notice_then_one_entry_when_it_works_again() -> None:
    made = incident()
    made.state.channel_names[NEWS] = "incident-news"
    news = lane_of(PostEffect(channel_id=NEWS, message="m"), made.state.channel_id)
    for n in range(4):
        made.effect_failed(T0 + timedelta(seconds=n), news, "post to ~incident-news", "refused", tell_channel=True)
    assert entries(made, EventType.EFFECT_FAILED) == ["Could not post to ~incident-news: refused"]
    assert notices(made) == ["Could not post to ~incident-news: refused"]
    assert made.state.failing_lanes[news].failed == 4
    # The count travels with the state (continue-as-new, restart).
    carried = Incident(IncidentState.model_validate(made.state.model_dump()), made._new_id)
    carried.effect_failed(T0 + timedelta(seconds=30), news, "post to ~incident-news", "refused", tell_channel=True)
    queued = len(carried.state.outbox)
    carried.effect_carried_out(T0 + timedelta(seconds=60), news)
    [recovered] = [e for e in carried.state.timeline if e.type == EventType.EFFECT_RECOVERED]
    assert recovered.summary == (
        "Posting to ~incident-news works again; 5 actions there could not be carried out meanwhile"
    )
    assert recovered.details == {"lane": news, "failed": 5, "failing_seconds": 60}
    assert len(carried.state.outbox) == queued, "the recovery is on the timeline only"
    assert carried.state.failing_lanes == {}
    carried.effect_carried_out(T0 + timedelta(seconds=61), news)
    assert len(entries(carried, EventType.EFFECT_RECOVERED)) == 1
    # Failing again is a new stretch: on record again, and told again.
    carried.effect_failed(T0 + timedelta(seconds=90), news, "post to ~incident-news", "gone", tell_channel=True)
    assert entries(carried, EventType.EFFECT_FAILED)[-1] == "Could not post to ~incident-news: gone"
    assert len(notices(carried)) == 2


def test_each_channel_fails_and_recovers_on_its_own() -> None:
    made = incident()
    news = lane_of(PostEffect(channel_id=NEWS, message="m"), made.state.channel_id)
    made.effect_failed(T0, INCIDENT_CHANNEL_LANE, "post to the incident channel", "down", tell_channel=False)
    made.effect_failed(T0, INCIDENT_CHANNEL_LANE, "update the checklist post", "down", tell_channel=False)
    made.effect_failed(T0, news, f"post to ~{NEWS}", "down", tell_channel=True)
    assert len(entries(made, EventType.EFFECT_FAILED)) == 2
    assert notices(made) == [f"Could not post to ~{NEWS}: down"], "the incident channel is not told of itself"
    made.effect_carried_out(T0 + timedelta(seconds=5), news)
    assert entries(made, EventType.EFFECT_RECOVERED) == [
        f"Posting to ~{NEWS} works again; 1 action there could not be carried out meanwhile"
    ]
    assert list(made.state.failing_lanes) == [INCIDENT_CHANNEL_LANE]
    made.effect_carried_out(T0 + timedelta(seconds=9), INCIDENT_CHANNEL_LANE)
    assert entries(made, EventType.EFFECT_RECOVERED)[-1] == (
        "Posting to the incident channel works again; 2 actions there could not be carried out meanwhile"
    )


def test_the_bot_back_in_the_incident_channel_is_one_entry() -> None:
    made = incident()
    made.channel_access_lost(T0, bot_username="incident-bot", waiting_after_seq=3)
    made.effect_carried_out(T0 + timedelta(seconds=20), "stats")
    assert entries(made, EventType.CHANNEL_ACCESS_BACK) == [], "another lane says nothing of the channel"
    made.effect_carried_out(T0 + timedelta(seconds=30), INCIDENT_CHANNEL_LANE)
    made.effect_carried_out(T0 + timedelta(seconds=31), INCIDENT_CHANNEL_LANE)
    assert made.state.channel_access_lost is None
    assert entries(made, EventType.CHANNEL_ACCESS_BACK) == ["@incident-bot can post in the incident channel again"]
    assert entries(made, EventType.EFFECT_RECOVERED) == []


def test_other_lanes_record_each_failure_and_a_refused_pin_fails_no_channel() -> None:
    made = incident()
    made.effect_failed(T0, "channel_header", "update the channel header", "500", tell_channel=False)
    made.effect_failed(T0, "channel_header", "update the channel header", "500", tell_channel=False)
    made.pin_refused(T0, "403")
    assert entries(made, EventType.EFFECT_FAILED) == [
        "Could not update the channel header: 500",
        "Could not update the channel header: 500",
        "Could not pin the post: 403",
    ]
    assert made.state.failing_lanes == {}
    made.effect_carried_out(T0, INCIDENT_CHANNEL_LANE)
    made.effect_carried_out(T0, "channel_header")
    assert entries(made, EventType.EFFECT_RECOVERED) == []
    assert notices(made) == []


# ---------------------------------------------------------------------------- mentions

HOSTILE = "@channel @here @all @devs"
BROADCAST = "x" * 26
TOWN = ChannelFact(channel_id="d" * 26, name="town-square", team_id=TEAM, actor_can_post=True)


def test_a_status_update_keeps_channel_mentions_only_where_its_author_may_make_them() -> None:
    made = incident()
    made.learn_user(fact())
    made.members_added([BOB], T0)
    allowed = actor().model_copy(update={"can_mention_channel": True})
    made.post_status_update(cmd.PostStatusUpdate(actor=allowed, message=f"{HOSTILE} look, @bob"), T0)
    made.post_status_update(cmd.PostStatusUpdate(actor=actor(), message=f"{HOSTILE} again, @bob"), T0)
    posts = [p.effect for p in made.state.outbox if isinstance(p.effect, PostEffect)]
    here = [mentions(p.message) for p in posts if p.channel_id is None]
    assert [(m.channel_wide, m.names) for m in here] == [
        ({"channel", "here", "all"}, {"alice", "bob"}),  # "from @alice", and her own mentions
        (set(), {"alice", "bob"}),
    ]
    elsewhere = [mentions(p.message) for p in posts if p.channel_id == BROADCAST]
    assert [(m.channel_wide, m.names) for m in elsewhere] == [(set(), {"alice", "bob"})] * 2
    assert made.state.status_updates[0].message == f"{HOSTILE} look, @bob"  # kept as typed


def test_what_people_typed_notifies_no_one_wherever_the_bot_posts_it() -> None:
    hostile_book = playbook().model_copy(
        update={
            "checklists": [
                StageSpec(title=f"{HOSTILE} Triage", items=[ChecklistItemSpec(title=f"Page {HOSTILE}")]),
                StageSpec(title="Fix", items=[ChecklistItemSpec(title="Fail over", command=f"/page {HOSTILE}")]),
            ]
        }
    )
    ids = (f"id{n}" for n in itertools.count())
    start = IncidentStart(
        id="inc1", team_id=TEAM, name=f"{HOSTILE} db down", description=HOSTILE, reporter=actor(), playbook=hostile_book
    )
    made = Incident(new_incident(start, T0, lambda: next(ids)), lambda: next(ids))
    made.channel_ready(T0, "chan" + "0" * 22, "inc-db-down-inc1", [], "http://mm/hooks/commands/" + "r" * 26)
    made.post_status_update(cmd.PostStatusUpdate(actor=actor(), message=HOSTILE), T0)
    made.announce(cmd.Announce(actor=actor(), channels=[TOWN]), T0)
    made.assign_item(cmd.AssignItem(actor=actor(), stage=0, item=0, assignee=fact()), T0)
    made.change_stage(cmd.ChangeStage(actor=actor(), direction="next", force=True), T0)
    made.add_item(cmd.AddItem(actor=actor(), stage=1, title=f"Ask {HOSTILE}", command=f"/ask {HOSTILE}"), T0)
    made.run_item_command(cmd.RunItemCommand(actor=actor(), stage=1, item=1), T0)
    made.end(cmd.EndIncident(actor=actor(), confirmed=True), T0)
    made.restart(cmd.RestartIncident(actor=actor()), T0)
    effects = [p.effect for p in made.state.outbox]
    texts = [e.message for e in effects if isinstance(e, PostEffect)]
    texts += [e.text for e in effects if isinstance(e, RespondEffect)]
    texts += [text.checklist_message(made.state), text.channel_header(made.state, "")]
    texts += [a.text for a in text.checklist_controls(made.state)]
    assert len(texts) > 10
    for posted in texts:
        found = mentions(posted)
        assert found.channel_wide == set(), posted
        # The bot's own sentences may end with a mention ("commander @alice."), also looked up as "alice.".
        assert {name.rstrip(".") for name in found.names} <= {"alice", "bob"}, posted
    assert made.state.name == f"{HOSTILE} db down"  # kept as typed: neutralised when written
