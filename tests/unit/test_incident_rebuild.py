"""The rebuild engine (`workflows.incident_rebuild`) on steps made by hand: commands at their
times, activity results, continued and restarted runs, refusals, and another start (the dry run's)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import activities.incident_activities as activities
from models import incident_commands as cmd
from models.activity_io import AddMembers, AddMembersResult, ChannelRef, InviteFailure, PostMessage, PostRef
from models.incident import IncidentStart, IncidentStatus, ItemState
from models.playbook import ChecklistItemSpec, StageSpec
from tests.unit.test_incident_rules import ALICE, T0, TEAM, actor, fact, playbook
from workflows import incident_outcomes as outcomes
from workflows.incident_rebuild import (
    ActivityFinished,
    CancelRequested,
    Replay,
    RunStarted,
    Step,
    TaskEnded,
    UpdateAccepted,
    replay,
    run_seed,
    state_at,
)

SEED = run_seed("0193b2a4-0000-7000-8000-000000000001")


def start() -> IncidentStart:
    return IncidentStart(
        id="inc1", team_id=TEAM, name="DB down", reporter=actor(), reporter_permissions=["create_private_channel"],
        playbook=playbook(),
    )  # fmt: skip


def opened(first: IncidentStart | None = None) -> list[Step]:
    """The first run: started, its channel made, its people added (one of them could not be)."""
    return [
        RunStarted(at=T0, start=first or start(), seed=SEED),
        TaskEnded(at=T0),
        ActivityFinished(
            at=T0 + timedelta(seconds=1),
            activity="create_incident_channel",
            input=None,
            result=ChannelRef(channel_id="c" * 26, name="inc-db-down-inc1"),
        ),
        TaskEnded(at=T0 + timedelta(seconds=1)),
        ActivityFinished(
            at=T0 + timedelta(seconds=2),
            activity="add_channel_members",
            input=AddMembers(channel_id="c" * 26, users=[]),
            result=AddMembersResult(added=[ALICE], failed=[InviteFailure(user=fact(), reason="not in the team")]),
        ),
        TaskEnded(at=T0 + timedelta(seconds=2)),
    ]


def command(seconds: float, name: str, change: cmd.IncidentCommand) -> list[Step]:
    moment = T0 + timedelta(seconds=seconds)
    return [UpdateAccepted(at=moment, name=name, command=change), TaskEnded(at=moment)]


def test_the_seed_is_temporals_and_ids_come_out_as_the_workflow_made_them() -> None:
    assert run_seed("abc") == run_seed("abc") != run_seed("abd")
    steps = opened()
    made = state_at(steps, T0)
    assert made is not None
    generator = random.Random(SEED)
    expected = uuid.UUID(bytes=generator.getrandbits(128).to_bytes(16, "big"), version=4).hex[:12]
    assert made.checklists[0].items[0].id == expected


def test_the_incident_at_each_moment() -> None:
    steps = [
        *opened(),
        *command(10, "set_item_state", cmd.SetItemState(actor=actor(), stage=0, item=0, state="done")),
        *command(20, "post_status_update", cmd.PostStatusUpdate(actor=actor(), message="Failing over")),
        *command(30, "end_incident", cmd.EndIncident(actor=actor(), confirmed=True)),
    ]
    before = state_at(steps, T0 - timedelta(seconds=1))
    assert before is None
    at_start = state_at(steps, T0)
    assert at_start is not None
    assert at_start.channel_id is None
    with_channel = state_at(steps, T0 + timedelta(seconds=5))
    assert with_channel is not None
    assert with_channel.channel_id == "c" * 26
    assert ALICE in with_channel.member_ids
    assert any("Could not add @bob" in e.summary for e in with_channel.timeline)
    checked = state_at(steps, T0 + timedelta(seconds=15))
    assert checked is not None
    assert checked.checklists[0].items[0].state == ItemState.DONE
    assert checked.status_updates == []
    updated = state_at(steps, T0 + timedelta(seconds=25))
    assert updated is not None
    assert updated.status_updates[-1].message == "Failing over"
    assert updated.status_updates[-1].at == T0 + timedelta(seconds=20)
    ended = state_at(steps, T0 + timedelta(seconds=99))
    assert ended is not None
    assert ended.status == IncidentStatus.ENDED
    assert ended.ended_at == T0 + timedelta(seconds=30)


def test_a_command_the_rules_refuse_is_reported_and_changes_nothing() -> None:
    steps = [
        *opened(),
        *command(10, "set_item_state", cmd.SetItemState(actor=actor(), stage=0, item=9, state="done")),
        *command(20, "post_status_update", cmd.PostStatusUpdate(actor=actor(), message="ok")),
    ]
    replayed = list(replay(steps))
    refusals = [r.refusal for r in replayed if r.refusal is not None]
    assert len(refusals) == 1
    assert "There is no such item" in refusals[0]
    assert replayed[-1].state.status_updates[-1].message == "ok"


def test_a_continued_run_starts_from_what_it_carried_and_a_dry_run_from_its_own() -> None:
    first = [*opened(), *command(10, "set_item_state", cmd.SetItemState(actor=actor(), stage=0, item=0, state="done"))]
    carried = state_at(first, T0 + timedelta(seconds=10))
    assert carried is not None
    carried = carried.model_copy(deep=True)
    carried.name = "As carried"
    resumed = IncidentStart.resuming(carried, actor())
    second: list[Step] = [
        RunStarted(at=T0 + timedelta(seconds=20), start=resumed, seed=run_seed("second")),
        TaskEnded(at=T0 + timedelta(seconds=20)),
        *command(30, "post_status_update", cmd.PostStatusUpdate(actor=actor(), message="later")),
    ]
    steps = [*first, *second]
    followed = state_at(steps, T0 + timedelta(seconds=40))
    assert followed is not None
    assert followed.name == "As carried"
    assert followed.status_updates[-1].message == "later"
    engine = Replay(follow_resumes=False)
    for step in steps:
        engine.apply(step)
    assert engine.state is not None
    assert engine.state.name == "DB down"
    assert engine.state.status_updates[-1].message == "later"
    # The recorded state is not changed by rebuilding from it.
    assert carried.status_updates == []


def test_a_restart_after_the_end_and_an_operators_cancellation() -> None:
    steps = [*opened(), *command(10, "end_incident", cmd.EndIncident(actor=actor(), confirmed=True))]
    ended = state_at(steps, T0 + timedelta(seconds=10))
    assert ended is not None
    restarted: list[Step] = [
        RunStarted(
            at=T0 + timedelta(seconds=20), start=IncidentStart.resuming(ended.model_copy(deep=True), actor()), seed=1
        ),
        *command(20, "restart_incident", cmd.RestartIncident(actor=actor())),
        CancelRequested(at=T0 + timedelta(seconds=30), reason="cleanup"),
        TaskEnded(at=T0 + timedelta(seconds=30)),
    ]
    again = state_at([*steps, *restarted], T0 + timedelta(seconds=25))
    assert again is not None
    assert again.status == IncidentStatus.ONGOING
    assert len(again.periods) == 2
    cancelled = state_at([*steps, *restarted], T0 + timedelta(seconds=30))
    assert cancelled is not None
    assert cancelled.status == IncidentStatus.ENDED
    assert "cleanup" in cancelled.timeline[-1].summary


def test_another_start_runs_the_same_commands_through_the_rules() -> None:
    """The dry run's core: the recorded commands against an incident of another playbook."""
    steps = [
        *opened(),
        *command(10, "set_item_state", cmd.SetItemState(actor=actor(), stage=0, item=1, state="done")),
    ]
    one_step = playbook().model_copy(
        update={"checklists": [StageSpec(title="Triage", items=[ChecklistItemSpec(title="Only")])]}
    )
    proposed = list(replay(steps, start_with=lambda s: s.model_copy(update={"playbook": one_step})))
    assert [r.refusal for r in proposed if r.refusal] == ["There is no such item: stage 'Triage' has 1 item(s)."]
    recorded = list(replay(steps))
    assert not [r.refusal for r in recorded if r.refusal]


def test_a_post_result_is_applied_to_the_effect_it_carried_out() -> None:
    steps = opened()
    engine = Replay()
    for step in steps:
        engine.apply(step)
    assert engine.state is not None
    queued = [p for p in engine.state.outbox if p.effect.kind == "post"]
    assert queued
    post = queued[0]
    engine.apply(
        ActivityFinished(
            at=T0 + timedelta(seconds=3),
            activity="post_message",
            input=PostMessage(channel_id="c" * 26, message="m", dedupe_key=f"inc1:{post.seq}", incident_id="inc1"),
            result=PostRef(post_id="p" * 26, channel_name="inc-db-down", pin_refused="no pinning here"),
        )
    )
    assert post.seq not in {p.seq for p in engine.state.outbox}
    assert engine.state.channel_names["c" * 26] == "inc-db-down"
    assert "Could not pin the post: no pinning here" in engine.state.timeline[-1].summary
    assert not engine.unexplained
    engine.apply(ActivityFinished(at=T0 + timedelta(seconds=4), activity="edit_pages", input=None))
    assert engine.unexplained == [f"activity edit_pages at {(T0 + timedelta(seconds=4)).isoformat()}"]


def test_the_outcomes_know_the_activities_error_types() -> None:
    assert outcomes.UNAVAILABLE == activities.UNAVAILABLE
    assert outcomes.NO_ACCESS == activities.NO_ACCESS


def test_due_work_waits_for_a_task_in_which_the_main_loop_ran() -> None:
    """A reminder due at 60 s is sent at the first task after it in which the loop ran: not at a
    task that only carried an activity's result to a lane (`TaskEnded.woke` false)."""
    reminding = start().model_copy(update={"playbook": playbook(reminder=60)})
    steps = [
        *opened(reminding),
        TaskEnded(at=T0 + timedelta(seconds=61), woke=False),
        TaskEnded(at=T0 + timedelta(seconds=62)),
    ]
    quiet = state_at(steps, T0 + timedelta(seconds=61))
    assert quiet is not None
    assert not [e for e in quiet.timeline if e.type == "reminder_sent"]
    reminded = state_at(steps, T0 + timedelta(seconds=62))
    assert reminded is not None
    assert [e.at for e in reminded.timeline if e.type == "reminder_sent"] == [T0 + timedelta(seconds=62)]
