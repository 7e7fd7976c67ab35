"""Retrospectives (the model and the rules, without Temporal): the template and its placeholders,
opening at the end, versions and stale saves, who publishes and declines, and the reminders' schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from api.slash import slash_replies as render
from models.effects import DirectMessageEffect, PostEffect, WebhookEffect
from models.incident import EventType
from models.incident_commands import (
    DeclineRetrospective,
    EndIncident,
    PostStatusUpdate,
    PublishRetrospective,
    RestartIncident,
    SaveRetrospective,
    StarEvent,
)
from models.incident_report import build_report, retrospective_status, to_markdown
from models.playbook import PlaybookFacts, PlaybookSpec, StageSpec, describe_changes
from models.retrospective import (
    DEFAULT_TEMPLATE,
    HISTORY_KEPT,
    HISTORY_TEXTS_KEPT,
    PLACEHOLDERS,
    RetrospectiveSpec,
    RetrospectiveStatus,
    fill,
    placeholders_in,
    summary_of,
)
from tests.unit.test_incident_rules import ALICE, BOB, CAROL, T0, actor, incident, refusal
from workflows import incident_retrospective as retrospectives
from workflows.incident_messages import current_details, web_ui_status
from workflows.incident_rules import WEBHOOK_EVENTS, Incident
from workflows.playbook_rules import check_spec

END = T0 + timedelta(hours=2)


def with_retrospective(template: str = "", due: str = "2d", every: str = "1d") -> Incident:
    made = incident()
    assert made.state.playbook is not None
    made.state.playbook.retrospective = RetrospectiveSpec(template=template, due_after=due, reminder_every=every)
    return made


def ended(made: Incident, at: object = END) -> Incident:
    made.end(EndIncident(actor=actor(), confirmed=True), at)  # type: ignore[arg-type]
    return made


# ---------------------------------------------------------------------------- the template


def test_placeholders_are_read_with_or_without_spaces_and_filled() -> None:
    template = "# {{name}}\nTTR {{ time_to_resolution }}; again {{name}}; {{unknown}} stays"
    assert placeholders_in(template) == ["name", "time_to_resolution", "unknown"]
    assert fill(template, {"name": "DB", "time_to_resolution": "1:00:00"}) == (
        "# DB\nTTR 1:00:00; again DB; {{unknown}} stays"
    )


def test_a_playbook_with_unknown_placeholders_is_refused_naming_them() -> None:
    with pytest.raises(ValidationError) as caught:
        RetrospectiveSpec(template="{{name}} {{root_cause}} {{ who }}")
    message = str(caught.value)
    assert "unknown placeholder(s) {{root_cause}}, {{who}}" in message
    assert "{{time_to_acknowledge}}" in message  # what may be used instead


def test_the_default_template_uses_only_known_placeholders_and_every_figure() -> None:
    assert set(placeholders_in(DEFAULT_TEMPLATE)) == set(PLACEHOLDERS) - {"duration"}
    assert RetrospectiveSpec().effective_template == DEFAULT_TEMPLATE
    assert RetrospectiveSpec(template="  \n").effective_template == DEFAULT_TEMPLATE


@pytest.mark.parametrize("due", ["0s", "31d", "soon", ""])
def test_due_after_and_reminder_every_are_durations(due: str) -> None:
    with pytest.raises(ValidationError):
        RetrospectiveSpec(due_after=due)
    with pytest.raises(ValidationError):
        RetrospectiveSpec(reminder_every=due)


@pytest.mark.parametrize(
    ("every", "refused"), [("30s", True), ("1m", False), ("1d", False), ("7d", False), ("8d", True)]
)
def test_the_reminder_interval_is_held_to_the_deployment_limits_like_every_reminder(every: str, refused: bool) -> None:
    """A retrospective reminded every second would message the commander every second and push
    the incident's record out of its timeline: the same bounds as every other reminder."""
    spec = PlaybookSpec(
        title="P", checklists=[StageSpec(title="Triage")], retrospective=RetrospectiveSpec(reminder_every=every)
    )
    if not refused:
        check_spec(spec, PlaybookFacts())
        return
    with pytest.raises(ApplicationError) as caught:
        check_spec(spec, PlaybookFacts())
    assert caught.value.details[0]["fields"] == {
        "retrospective.reminder_every": "A reminder interval must be off (0) or between 1m and 7d "
        "(60 to 604800 seconds)."
    }


def test_the_playbook_carries_it_and_its_change_summary_says_so() -> None:
    stages = [StageSpec(title="Triage")]
    before = PlaybookSpec(title="P", checklists=stages)
    after = PlaybookSpec.model_validate({"title": "P", "checklists": [{"title": "Triage"}], "retrospective": {}})
    assert after.retrospective == RetrospectiveSpec()
    assert describe_changes(before, after) == ["retrospective added (due 5d after the end)"]
    assert describe_changes(after, before) == ["retrospective removed"]
    changed = after.model_copy(update={"retrospective": RetrospectiveSpec(due_after="1d")})
    assert describe_changes(after, changed) == ["retrospective changed"]


@given(st.text(max_size=300))
def test_any_template_is_taken_or_refused_with_a_sentence(template: str) -> None:
    try:
        spec = RetrospectiveSpec(template=template)
    except ValidationError as error:
        problem = str(error)
    else:
        problem = ""
        assert fill(spec.effective_template, dict.fromkeys(PLACEHOLDERS, "x"))
    assert not problem or "unknown placeholder" in problem


def test_the_summary_is_the_first_section_with_text() -> None:
    text = "# Retro: DB\n\n## Summary\n\nThe primary failed.\nFailover took 4m.\n\n## Figures\n| a |"
    assert summary_of(text) == "The primary failed.\nFailover took 4m."
    assert summary_of("# Only a title\n\n## Empty\n") == ""
    assert len(summary_of("x" * 5000)) == 1500


# ---------------------------------------------------------------------------- opening at the end


def test_no_retrospective_without_one_in_the_playbook() -> None:
    made = ended(incident())
    assert made.state.retrospective is None
    assert retrospectives.reminder_due(made.state) is None
    assert not retrospectives.keeps_run_open(made.state)


def test_the_end_opens_it_from_the_template_with_the_figures() -> None:
    made = with_retrospective(
        "# {{name}}\nSeverity {{severity}}, commander {{commander}}\nack {{time_to_acknowledge}} / first update "
        "{{time_to_first_update}} / resolved {{time_to_resolution}}\n{{key_moments}}\n{{participants}}"
    )
    made.post_status_update(PostStatusUpdate(actor=actor(), message="Looking"), T0 + timedelta(minutes=5))
    starred = made.state.timeline[-1].id
    made.star_event(StarEvent(actor=actor(), event_id=starred), T0 + timedelta(minutes=6))
    ended(made)
    retrospective = made.state.retrospective
    assert retrospective is not None
    assert retrospective.status == RetrospectiveStatus.DRAFT
    assert retrospective.version == 1
    assert (retrospective.opened_at, retrospective.due_at) == (END, END + timedelta(days=2))
    assert retrospective.next_reminder_at == END + timedelta(days=2)
    lines = retrospective.text.split("\n")
    assert lines[0] == "# DB down"
    assert lines[1] == "Severity none given, commander alice"
    # Nobody was paged: no time to acknowledge.
    assert lines[2] == "ack — / first update 05:00 / resolved 2:00:00"
    assert lines[3].startswith("- 2026-01-05 09:05:00 UTC (+05:00): @\u2060alice posted a status update")
    assert "- alice: commander, reporter, member, acted" in lines
    assert retrospective.history[0].version == 1
    assert retrospective.history[0].author_id == "system"
    opened = [e for e in made.state.timeline if e.type == EventType.RETROSPECTIVE_OPENED]
    assert len(opened) == 1
    assert "due" in opened[0].summary
    assert retrospectives.keeps_run_open(made.state)


def test_a_restart_then_another_end_keeps_the_retrospective_it_has() -> None:
    made = ended(with_retrospective())
    save = SaveRetrospective(actor=actor(), text="Our own words", version=1)
    made.check_save_retrospective(save)
    made.save_retrospective(save, END)
    made.restart(RestartIncident(actor=actor()), END + timedelta(hours=1))
    # While it runs again, no reminders (and the run is open anyway).
    assert retrospectives.reminder_due(made.state) is None
    ended(made, END + timedelta(hours=2))
    assert made.state.retrospective is not None
    assert (made.state.retrospective.text, made.state.retrospective.version) == ("Our own words", 2)
    assert sum(e.type == EventType.RETROSPECTIVE_OPENED for e in made.state.timeline) == 1


# ---------------------------------------------------------------------------- saving


def test_saves_are_versioned_with_a_bounded_history() -> None:
    made = ended(with_retrospective())
    for version in range(1, HISTORY_KEPT + 5):
        save = SaveRetrospective(actor=actor(), text=f"version {version + 1}", version=version)
        made.check_save_retrospective(save)
        assert made.save_retrospective(save, END) == f"Retrospective saved (version {version + 1})."
    retrospective = made.state.retrospective
    assert retrospective is not None
    assert len(retrospective.history) == HISTORY_KEPT
    assert retrospective.history[-1].version == retrospective.version == HISTORY_KEPT + 5
    assert [h.text is not None for h in retrospective.history].count(True) == HISTORY_TEXTS_KEPT
    assert retrospective.history[-1].text == retrospective.text


def test_a_save_based_on_a_stale_version_is_refused_and_changes_nothing() -> None:
    made = ended(with_retrospective())
    bob = actor(BOB, "bob")
    first = SaveRetrospective(actor=bob, text="Bob's words", version=1)
    made.check_save_retrospective(first)
    made.save_retrospective(first, END)
    before = made.state.model_copy(deep=True)
    stale = SaveRetrospective(actor=actor(), text="Alice's words", version=1)
    error = refusal(lambda: made.check_save_retrospective(stale))
    assert error.type == "Conflict"
    assert error.message == (
        "The retrospective changed since you opened it (you edited version 1; version 2 by @bob is the latest): "
        "reload it, then make your change again."
    )
    assert made.state == before
    same = SaveRetrospective(actor=actor(), text="Bob's words", version=2)
    assert refusal(lambda: made.check_save_retrospective(same)).message == (
        "Version 2 of the retrospective already says that."
    )


def test_only_members_edit_it_and_only_once_it_is_open() -> None:
    made = incident()
    assert made.state.playbook is not None
    made.state.playbook.retrospective = RetrospectiveSpec()
    save = SaveRetrospective(actor=actor(), text="x", version=1)
    assert refusal(lambda: made.check_save_retrospective(save)).type == "Conflict"  # not ended yet
    ended(made)
    outsider = SaveRetrospective(actor=actor(CAROL, "carol", member=False), text="x", version=1)
    assert refusal(lambda: made.check_save_retrospective(outsider)).type == "NotFound"  # a private incident
    made.state.is_public = True
    assert refusal(lambda: made.check_save_retrospective(outsider)).type == "Forbidden"


def test_the_text_has_a_limit() -> None:
    with pytest.raises(ValidationError):
        SaveRetrospective(actor=actor(), text="x" * 20_001, version=1)
    with pytest.raises(ValidationError):
        SaveRetrospective(actor=actor(), text="x", version=0)


# ---------------------------------------------------------------------------- publishing and declining


def test_publishing_posts_the_summary_everywhere_and_sends_the_webhook_event() -> None:
    made = ended(with_retrospective("# Retro\n\n## Summary\n\nThe disk filled up @channel.\n\n## More\ntext"))
    made.state.emits_webhooks = True
    made.state.outbox.clear()
    publish = PublishRetrospective(actor=actor())
    made.check_publish_retrospective(publish)
    said = made.publish_retrospective(publish, END + timedelta(hours=1))
    assert said.startswith("Retrospective published")
    retrospective = made.state.retrospective
    assert retrospective is not None
    assert (retrospective.status, retrospective.concluded_by) == (RetrospectiveStatus.PUBLISHED, ALICE)
    assert retrospective.next_reminder_at is None
    assert not retrospectives.keeps_run_open(made.state)
    posts = [p.effect for p in made.state.outbox if isinstance(p.effect, PostEffect)]
    here = [p for p in posts if p.channel_id is None]
    there = [p for p in posts if p.channel_id == "x" * 26]
    assert len(here) == 1
    assert "The disk filled up @\u2060channel." in here[0].message
    assert len(there) == 1
    assert "retrospective published by @alice" in there[0].message
    hooks = [p.effect.event for p in made.state.outbox if isinstance(p.effect, WebhookEffect)]
    assert [h.type for h in hooks] == ["incident.retrospective_published"]
    assert hooks[0].data["version"] == 1
    assert WEBHOOK_EVENTS[EventType.RETROSPECTIVE_PUBLISHED] == "incident.retrospective_published"
    # Final: no more edits, no second publication.
    assert refusal(
        lambda: made.check_save_retrospective(SaveRetrospective(actor=actor(), text="y", version=1))
    ).type == ("Conflict")
    assert refusal(lambda: made.check_publish_retrospective(publish)).message == (
        "The retrospective was published by @alice; it can no longer be published."
    )


def test_the_commander_or_a_playbook_member_publishes_or_declines() -> None:
    made = ended(with_retrospective())
    bob = actor(BOB, "bob")  # in the channel, neither commander nor in the playbook
    error = refusal(lambda: made.check_publish_retrospective(PublishRetrospective(actor=bob)))
    assert error.type == "Forbidden"
    assert error.message == (
        "Only the commander (@alice) or a member of the playbook, in the incident channel, can publish the "
        "retrospective."
    )
    assert refusal(lambda: made.check_decline_retrospective(DeclineRetrospective(actor=bob, reason="no"))).type == (
        "Forbidden"
    )
    assert made.state.playbook is not None
    made.state.playbook.member_ids.append(BOB)
    made.check_publish_retrospective(PublishRetrospective(actor=bob))
    admin = actor(CAROL, "carol", member=False, admin=True)
    made.check_decline_retrospective(DeclineRetrospective(actor=admin, reason="duplicate"))


def test_an_emptied_retrospective_is_not_published() -> None:
    made = ended(with_retrospective())
    save = SaveRetrospective(actor=actor(), text="# Title only\n", version=1)
    made.save_retrospective(save, END)
    error = refusal(lambda: made.check_publish_retrospective(PublishRetrospective(actor=actor())))
    assert error.type == "Invalid"
    assert "empty" in error.message


def test_declining_says_why_and_stops_the_reminders() -> None:
    made = ended(with_retrospective())
    decline = DeclineRetrospective(actor=actor(), reason="A duplicate of inc 41")
    made.check_decline_retrospective(decline)
    assert made.decline_retrospective(decline, END) == "Retrospective declined: no more reminders."
    retrospective = made.state.retrospective
    assert retrospective is not None
    assert (retrospective.status, retrospective.reason) == (RetrospectiveStatus.DECLINED, "A duplicate of inc 41")
    assert retrospectives.reminder_due(made.state) is None
    assert made.state.timeline[-1].type == EventType.RETROSPECTIVE_DECLINED
    with pytest.raises(ValidationError):
        DeclineRetrospective(actor=actor(), reason="  ")


# ---------------------------------------------------------------------------- reminders


def reminders(made: Incident) -> list[DirectMessageEffect]:
    return [p.effect for p in made.state.outbox if isinstance(p.effect, DirectMessageEffect)]


def test_the_commander_is_reminded_at_the_due_time_then_every_interval() -> None:
    made = ended(with_retrospective(due="2d", every="1d"))
    made.state.outbox.clear()
    due = END + timedelta(days=2)
    assert retrospectives.reminder_due(made.state) == due
    assert not made.remind_of_retrospective(due - timedelta(seconds=1))
    assert made.remind_of_retrospective(due)
    sent = reminders(made)
    assert len(sent) == 1
    assert sent[0].user_id == ALICE
    assert "is due" in sent[0].message
    assert sent[0].about == "the retrospective"
    assert retrospectives.reminder_due(made.state) == due + timedelta(days=1)
    assert not made.remind_of_retrospective(due + timedelta(hours=23))
    # A worker down for three days: one reminder, then the next after it.
    assert made.remind_of_retrospective(due + timedelta(days=4, hours=1))
    assert len(reminders(made)) == 2
    assert "is overdue" in reminders(made)[1].message
    assert retrospectives.reminder_due(made.state) == due + timedelta(days=5)
    assert [e.details["reminder"] for e in made.state.timeline if e.type == EventType.RETROSPECTIVE_REMINDED] == [1, 2]
    publish = PublishRetrospective(actor=actor())
    made.publish_retrospective(publish, due + timedelta(days=5))
    assert retrospectives.reminder_due(made.state) is None
    assert not made.remind_of_retrospective(due + timedelta(days=30))


# ---------------------------------------------------------------------------- the report


def test_the_report_ends_with_the_retrospective() -> None:
    made = ended(with_retrospective("# Retro\n\n## Summary\n\nThe disk <b>filled</b> up, @bob says."))
    report = build_report(made.state, END)
    assert report.retrospective is not None
    assert (report.retrospective.status, report.retrospective.version) == (RetrospectiveStatus.DRAFT, 1)
    markdown = to_markdown(report)
    section = markdown[markdown.index("## Retrospective") :]
    assert "*Draft (version 1), due 2026-01-07 11:00:00 UTC.*" in section
    # Its headings nest under the section's; people's HTML is text, mentions notify nobody.
    assert "\n### Retro\n" in section
    assert "\n#### Summary\n" in section
    assert "The disk &lt;b&gt;filled&lt;/b&gt; up, @\u2060bob says." in section
    assert markdown.index("## Timeline") < markdown.index("## Retrospective")
    decline = DeclineRetrospective(actor=actor(), reason="Duplicate")
    made.decline_retrospective(decline, END)
    declined = build_report(made.state, END).retrospective
    assert declined is not None
    assert retrospective_status(declined) == "Declined by alice 2026-01-05 11:00:00 UTC (version 1): Duplicate"
    assert build_report(ended(incident()).state, END).retrospective is None


def test_the_web_ui_says_why_an_ended_incident_s_run_is_still_running() -> None:
    made = ended(with_retrospective(due="2d"))
    said = web_ui_status(made.state)
    assert said == (
        "Ended; its retrospective is a draft, due 2026-01-07 11:00:00 UTC. The workflow stays Running, reminding "
        "its commander, until the retrospective is published or declined."
    )
    assert current_details(made.state, in_reopen_window=False).startswith(f"**{said}**")
    made.decline_retrospective(DeclineRetrospective(actor=actor(), reason="Duplicate"), END)
    assert web_ui_status(made.state) == "Ended."


def test_info_says_where_the_retrospective_stands() -> None:
    made = ended(with_retrospective(due="2d"))
    assert "**Retrospective:** draft, due Jan 07 11:00 UTC (`/incident retrospective`)" in render.info(made.state, END)
    assert render.retrospective(made.state, END).startswith(
        "The retrospective is a draft (version 1), due Jan 07 11:00 UTC. Open it in the backstage to edit it;"
    )
    made.publish_retrospective(PublishRetrospective(actor=actor()), END)
    assert "**Retrospective:** published, version 1" in render.info(made.state, END)
    assert render.retrospective(made.state, END).startswith("The retrospective was published by @alice")
    assert "Retrospective" not in render.info(ended(incident()).state, END)
