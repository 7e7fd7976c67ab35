"""The incident's rules: what each command checks and what it changes.

Over 400 lines on purpose: every incident rule lives in this one pure module
(docs/architecture.md), so "where is the rule for X?" has one answer.

Pure and deterministic (no Temporal calls, no I/O), so the workflow's validators and
handlers are one-liners and the rules are unit-testable. Every `check_*` method is
read-only and raises a refusal (`models.errors`) whose message the user reads; the
matching method applies the change, records a timeline event, and queues the posts
and other side effects for the workflow to carry out in order.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import permissions
from models.alerts import AlertStatus
from models.common import REMINDER_MAX_SECONDS, Actor, UserFact, reminder_problem
from models.custom_fields import (
    FieldSpec,
    FieldType,
    FieldValueError,
    field_named,
    read_field,
    shown_value,
    takes,
    unknown_field,
)
from models.due_dates import DueText, due_time, read_due
from models.effects import (
    INCIDENT_CHANNEL_LANE,
    OTHER_CHANNEL_LANE,
    Button,
    ChannelHeaderEffect,
    ChecklistEffect,
    ClearButtonsEffect,
    DirectMessageEffect,
    Effect,
    InviteEffect,
    PendingEffect,
    PostEffect,
    RespondEffect,
    StatsEffect,
    WebhookEffect,
    is_channel_lane,
)
from models.incident import (
    BLANK_STAGE_TITLE,
    ITEM_EVENTS,
    RECENT_REQUESTS_MAX,
    ChannelAccessLost,
    ChecklistItem,
    EventType,
    FailingLane,
    IncidentStart,
    IncidentState,
    IncidentStatus,
    ItemState,
    Period,
    RecentRequest,
    Stage,
    StatusUpdate,
    TimelineEvent,
    UpdateStatus,
)
from models.incident_alerts import (
    ALERT_EVENTS_KEPT,
    ALERTS_KEPT,
    APPLIED_UPDATES_KEPT,
    OTHERS_KEPT,
    AlertRecord,
    ReceiveAlerts,
    compact,
    digest,
)
from models.incident_commands import (
    AddItem,
    AddNote,
    Announce,
    AssignItem,
    ChangeCommander,
    ChangeStage,
    DeclineRetrospective,
    DeleteNote,
    EditItem,
    EditNote,
    EndIncident,
    IncidentCommand,
    InviteMembers,
    MoveItem,
    PostStatusUpdate,
    PublishRetrospective,
    RemoveItem,
    RestartIncident,
    RunItemCommand,
    SaveRetrospective,
    SetField,
    SetItemDue,
    SetItemState,
    SetReminder,
    SetSeverity,
    SnoozeReminder,
    StarEvent,
    UnstarEvent,
)
from models.incident_views import summarize
from models.note_times import note_moment
from models.playbook import MAX_ITEMS_PER_STAGE
from models.playbook_automation import (
    AddItemsAction,
    AnnounceAction,
    InviteAction,
    PageAction,
    PostAction,
    RuleAction,
    SetReminderAction,
    duration_seconds,
)
from models.refusals import (
    ALREADY_ENDED,
    ENDED,
    STALE_VERSION,
    Refusal,
    confirm,
    conflict,
    forbidden,
    invalid,
    not_found,
    refuse,
)
from models.retrospective import NO_RETROSPECTIVE, RetrospectiveStatus, summary_of
from models.severity import Severity, SeverityLevel, SeverityUnknown, parse_severity, severity_of
from models.webhooks import EventActor, WebhookEvent, WebhookGaveUp
from workflows import incident_automation as automation
from workflows import incident_conditions as conditions
from workflows import incident_due_dates as due_dates
from workflows import incident_messages as text
from workflows import incident_retrospective as retrospectives
from workflows.incident_paging import PagingRules

SYSTEM_ACTOR = "system"
# What the live checklist post shows changes with these events (it is re-rendered after each;
# and after every end, see `Incident._end`).
CHECKLIST_EVENTS = ITEM_EVENTS | {
    EventType.STAGE_CHANGED,
    EventType.COMMANDER_CHANGED,
    EventType.STATUS_UPDATE,
    EventType.RESTARTED,
    EventType.SEVERITY_CHANGED,
    EventType.FIELD_CHANGED,
}
# Changes the live checklist post shows (who checked what, when) are not also announced
# with a post of their own: one edit of that post, coalesced, instead of a post per click.
# Assignments and stage moves are still announced (they notify people).
SHOWN_BY_CHECKLIST_ONLY = frozenset(
    {
        EventType.ITEM_STATE_CHANGED,
        EventType.ITEM_ADDED,
        EventType.ITEM_RENAMED,
        EventType.ITEM_MOVED,
        EventType.ITEM_REMOVED,
    }
)
# The webhook event each timeline event is (those not listed emit none; see `Incident.emit`).
WEBHOOK_EVENTS: dict[EventType, str] = {
    EventType.CREATED: "incident.started",
    EventType.STATUS_UPDATE: "incident.status_updated",
    EventType.STAGE_CHANGED: "incident.stage_changed",
    **dict.fromkeys(ITEM_EVENTS, "incident.item_changed"),
    EventType.COMMANDER_CHANGED: "incident.commander_changed",
    EventType.ENDED: "incident.ended",
    EventType.AUTO_ENDED: "incident.ended",
    EventType.RESTARTED: "incident.restarted",
    EventType.ALERT_FIRING: "incident.alert_firing",
    EventType.ALERT_RESOLVED: "incident.alert_resolved",
    EventType.ALERTS_RESOLVED: "incident.alerts_resolved",
    EventType.PAGED: "incident.paged",
    EventType.PAGE_ACKNOWLEDGED: "incident.acknowledged",
    EventType.SEVERITY_CHANGED: "incident.severity_changed",
    EventType.FIELD_CHANGED: "incident.field_changed",
    EventType.RETROSPECTIVE_PUBLISHED: "incident.retrospective_published",
}
# The live checklist post's name in `IncidentState.post_ids` (it opens the channel).
CHECKLIST_POST = "opening"
# Reminder posts are remembered as "reminder:<seq>" until an update answers them.
REMINDER_POST = "reminder:"
# What the timeline keeps: its newest events, at most this many and about this many bytes
# (summaries and details). The incident's whole state travels in one payload (continue-as-new,
# queries), which Temporal refuses over 2 MB: without a bound, a few hundred long notes would
# wedge the incident.
MAX_TIMELINE_EVENTS = 5000
TIMELINE_MAX_BYTES = 384 * 1024
# The status updates the state keeps in full (the newest; the timeline has them too).
STATUS_UPDATES_KEPT = 50
# How much of a Temporal operator's cancellation reason the timeline keeps.
OPERATOR_REASON_MAX = 200
# The refusal of a command typed in a channel that is not the incident's (the slash command
# says which channel to use); also what a caller who may not see the incident reads.
NOT_HERE = "There is no incident here that you can see."


def check_start(start: IncidentStart) -> None:
    """The rules of starting an incident, over the facts the starter's request carries.

    A playbook the starter may not use, from another team or archived, is "not found",
    exactly as if it did not exist.
    """
    reporter = start.reporter
    playbook = start.playbook
    if start.source is not None:
        # Opened by an integration: its team admins chose the playbook and the commander when
        # they saved it; what may have changed since is checked again here.
        if playbook is not None and (playbook.team_id != start.team_id or playbook.archived):
            raise not_found("The integration's playbook no longer exists.", "playbook_id")
        _check_commander(start)
        return
    if not permissions.can_see_team(reporter, is_team_member=reporter.is_team_member):
        raise not_found("Team not found.", "team_id")
    if playbook is not None and (
        playbook.team_id != start.team_id
        or playbook.archived
        or not permissions.can_use_playbook(
            reporter, is_team_member=reporter.is_team_member, member_ids=playbook.member_ids
        )
    ):
        raise not_found("Playbook not found.", "playbook_id")
    public = playbook.create_public_incident if playbook else False
    if not permissions.can_create_channel(reporter, public=public, permissions=start.reporter_permissions):
        kind = "public" if public else "private"
        source = (
            f"playbook {playbook.title!r} starts incidents in {kind} channels"
            if playbook
            else "blank incidents get private channels"
        )
        raise forbidden(
            f"You cannot create {kind} channels in this team, and {source}. "
            "Ask a team admin for the permission, or use another playbook."
        )
    if start.severity is not None:
        try:
            parse_severity(start.severity, start.severity_levels)
        except SeverityUnknown as unknown:
            raise invalid(str(unknown), "severity") from None
    start_field_values(start, strict=True)
    _check_commander(start)


def start_severity(start: IncidentStart) -> Severity | None:
    """The severity an incident starts with: the level asked for (by its starter, or its alert
    route or label), else the playbook's default; none when neither names a level of the team
    (an integration's stale choice, or a playbook default its team no longer has, is passed over)."""
    levels = start.severity_levels
    if start.severity is not None:
        try:
            return severity_of(parse_severity(start.severity, levels))
        except SeverityUnknown:
            pass  # refused by `check_start` for a person's start; an alert's falls back
    default = start.playbook.default_severity if start.playbook else None
    level = next((level for level in levels if level.level == default), None)
    return severity_of(level) if level is not None else None


def start_field_values(start: IncidentStart, *, strict: bool) -> dict[str, str]:
    """The custom fields' values an incident starts with, read against its playbook's fields.

    `strict` (a person's start): a name the playbook does not declare, a value its field cannot
    take and a required field without a value are refused, naming `fields.<name>`. Otherwise (an
    alert's start, or a run continuing) what can be read is kept and the rest passed over: an
    alert never has its incident refused for a field.
    """
    declared = start.playbook.fields if start.playbook else []
    values: dict[str, str] = {}
    for name, given in start.fields.items():
        spec = field_named(declared, name)
        if spec is None:
            if strict:
                raise invalid(unknown_field(declared, name), f"fields.{name[:64]}")
            continue
        try:
            value = read_field(spec, given, start.field_users)
        except FieldValueError as problem:
            if strict:
                raise invalid(str(problem), f"fields.{spec.name}") from None
            continue
        if value:
            values[spec.name] = value
    if strict:
        for spec in declared:
            if spec.required and spec.name not in values:
                raise invalid(
                    f"Field '{spec.name}' is required: give it {takes(spec)} when you start the incident.",
                    f"fields.{spec.name}",
                )
    return {spec.name: values[spec.name] for spec in declared if spec.name in values}


def _check_commander(start: IncidentStart) -> None:
    commander = start.commander
    if commander is not None:
        if not commander.is_team_member:
            raise invalid(f"{commander.mention} is not in this team and cannot be the commander.", "commander_id")
        if commander.is_bot:
            raise invalid(f"{commander.mention} is a bot and cannot be the commander.", "commander_id")


def new_incident(start: IncidentStart, now: datetime, new_id: Callable[[], str]) -> IncidentState:
    """The state of a brand-new incident, from the starter's input and the playbook snapshot."""
    now = start.requested_at or now
    playbook = start.playbook
    if playbook:
        stages = [
            Stage(
                title=spec.title,
                items=[
                    conditions.playbook_item(stage_index, item_index, spec, item, new_id)
                    for item_index, item in enumerate(spec.items)
                ],
            )
            for stage_index, spec in enumerate(playbook.checklists)
        ]
    else:
        stages = [Stage(title=BLANK_STAGE_TITLE)]
    reporter = start.reporter
    commander = start.commander
    commander_id = commander.user_id if commander else reporter.user_id
    usernames = {reporter.user_id: reporter.username}
    for fact in [*start.invited, *start.rule_users, *start.field_users, *([commander] if commander else [])]:
        usernames[fact.user_id] = fact.username
    reminder = playbook.reminder_timer_default_seconds if playbook else 0
    if reminder:
        # Playbooks are checked against the limits when saved; the limits may have moved since.
        reminder = min(max(reminder, start.config.reminder_min_seconds), REMINDER_MAX_SECONDS)
    state = IncidentState(
        id=start.id,
        name=start.name,
        description=start.description,
        team_id=start.team_id,
        team_name=start.team_name,
        playbook=playbook,
        is_public=playbook.create_public_incident if playbook else False,
        commander_id=commander_id,
        reporter_id=reporter.user_id,
        member_ids=list(dict.fromkeys([reporter.user_id, commander_id])),
        usernames=usernames,
        started_at=now,
        periods=[Period(started_at=now)],
        checklists=stages,
        reminder_seconds=reminder,
        reminder_due_at=now + timedelta(seconds=reminder) if reminder else None,
        broadcast_channel_ids=playbook.broadcast_channel_ids if playbook else [],
        config=start.config,
        start_fingerprint=start.fingerprint,
        source=start.source,
        severity=start_severity(start),
        field_values=start_field_values(start, strict=False),
    )
    # The checklist has the steps whose conditions hold (`workflows.incident_conditions`).
    conditions.drop_inapplicable(state)
    due_dates.anchor_at_start(state, now)
    source = f" from playbook **{playbook.title}** (v{playbook.version})" if playbook else ""
    started = f"{reporter.mention} started the incident"
    if start.source is not None:
        started = f"{start.source.reporter_name} opened the incident for alert group `{start.source.group_key[:200]}`"
    severity = state.severity
    Incident(state, new_id).record(
        now,
        reporter,
        EventType.CREATED,
        f"{started}{source}" + (f", severity **{severity.name}**" if severity else ""),
        {
            "playbook_id": playbook.id if playbook else None,
            "commander_id": commander_id,
            **({"severity": severity.level, "severity_name": severity.name} if severity else {}),
            **({"fields": dict(state.field_values)} if state.field_values else {}),
        },
        post=False,
    )
    return state


def event_size(event: TimelineEvent) -> int:
    """About how many bytes an event takes in the state's payload (deterministic, cheap)."""
    return 80 + len(event.summary) + sum(len(str(key)) + len(str(value)) for key, value in event.details.items())


class Incident(PagingRules):
    """Operations on one incident's state (its paging rules: `workflows.incident_paging`)."""

    def __init__(
        self, state: IncidentState, new_id: Callable[[], str], clock: Callable[[], datetime] | None = None
    ) -> None:
        self.state = state
        self._new_id = new_id
        # What time it is, for the rules that refuse a time in the future (the workflow's
        # `workflow.now`; without one, the newest event's time).
        self._clock = clock or self._last_known_time

    def _last_known_time(self) -> datetime:
        timeline = self.state.timeline
        return max(timeline[-1].at, self.state.started_at) if timeline else self.state.started_at

    # ------------------------------------------------------------------ bookkeeping

    def enqueue(self, effect: Effect) -> None:
        self.state.outbox.append(PendingEffect(seq=self.state.next_seq, effect=effect))
        self.state.next_seq += 1

    def post(self, message: str, **fields: Any) -> None:
        self.enqueue(PostEffect(message=message, **fields))

    def broadcast(self, message: str) -> None:
        """Tell the broadcast channels and the channels the incident was announced in."""
        for channel_id in text.informed_channels(self.state):
            self.enqueue(PostEffect(channel_id=channel_id, message=text.broadcast_post(self.state, message)))

    def record(
        self,
        now: datetime,
        actor: Actor | str,
        kind: EventType,
        summary: str,
        details: dict[str, Any] | None = None,
        *,
        post: bool | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append a timeline event and announce it in the channel (by default, unless the
        live checklist post shows it: `SHOWN_BY_CHECKLIST_ONLY`). An event that happened `at`
        an earlier time (a back-dated note) is placed among the others at that time, so the
        timeline stays in the order things happened."""
        actor_id = actor if isinstance(actor, str) else actor.user_id
        event = TimelineEvent(
            id=self.state.next_event_id(),
            at=at or now,
            actor_id=actor_id,
            type=kind,
            summary=summary,
            details=details or {},
        )
        timeline = self.state.timeline
        if timeline and timeline[-1].at > event.at:
            timeline.insert(bisect.bisect_right(timeline, event.at, key=lambda e: e.at), event)
        else:
            timeline.append(event)
        self._keep_timeline_bounded(event)
        webhook = WEBHOOK_EVENTS.get(kind)
        if kind == EventType.CANCELLED and event.details.get("ended_it"):
            webhook = "incident.ended"
        if webhook is not None:
            self.emit(webhook, now, actor_id, {"summary": summary, "change": kind.value, **event.details})
        if post if post is not None else kind not in SHOWN_BY_CHECKLIST_ONLY:
            self.post(summary)
        if kind in CHECKLIST_EVENTS:
            self.refresh_checklist()

    def emit(self, event_type: str, now: datetime, actor_id: str, data: dict[str, Any]) -> None:
        """Queue a webhook event (its own lane: see `models.webhooks`); each gets the next number.
        The incident as the REST record summarizes it goes with it."""
        state = self.state
        if not state.emits_webhooks:
            return
        state.webhook_events += 1
        event = WebhookEvent(
            id=f"evt_{state.id}_{state.webhook_events}",
            type=event_type,
            number=state.webhook_events,
            occurred_at=now,
            actor=EventActor(id=actor_id, username=state.usernames.get(actor_id, "")),
            incident=summarize(state).model_dump(mode="json"),
            data=data,
        )
        self.enqueue(WebhookEffect(event=event))

    def start_emitting(self) -> None:
        """A new incident emits webhook events from now on, starting with its start."""
        state = self.state
        state.emits_webhooks = True
        created = next((e for e in state.timeline if e.type == EventType.CREATED), None)
        if created is not None and state.status == IncidentStatus.ONGOING:
            data = {"summary": created.summary, "change": created.type.value, **created.details}
            self.emit("incident.started", created.at, created.actor_id, data)

    def webhook_failed(self, now: datetime, failure: WebhookGaveUp) -> None:
        """A subscription refused one of the incident's events, or gave up on it: on the timeline
        each time, and said in the channel the first time for that subscription."""
        state = self.state
        tell = failure.subscription_id not in state.webhook_failures_told
        if tell:
            state.webhook_failures_told.append(failure.subscription_id)
        what = "refused" if failure.refused else "did not accept"
        self.record(
            now,
            SYSTEM_ACTOR,
            EventType.WEBHOOK_FAILED,
            f"Webhook {failure.url[:200]} {what} event `{failure.type}` ({failure.event_id}): {failure.reason[:300]}",
            {
                "subscription_id": failure.subscription_id,
                "event_id": failure.event_id,
                "type": failure.type,
                "reason": failure.reason[:300],
                "refused": failure.refused,
            },
            post=tell,
        )

    def _keep_timeline_bounded(self, added: TimelineEvent) -> None:
        state = self.state
        if state.timeline_bytes == 0:
            state.timeline_bytes = sum(map(event_size, state.timeline))
        else:
            state.timeline_bytes += event_size(added)
        drop = 0
        while len(state.timeline) - drop > 1 and (
            len(state.timeline) - drop > MAX_TIMELINE_EVENTS or state.timeline_bytes > TIMELINE_MAX_BYTES
        ):
            state.timeline_bytes -= event_size(state.timeline[drop])
            drop += 1
        if drop:
            dropped = {event.id for event in state.timeline[:drop]}
            del state.timeline[:drop]
            # A key moment that left the timeline is no longer one.
            if dropped.intersection(state.key_moments):
                state.key_moments = [k for k in state.key_moments if k not in dropped]

    def did(
        self,
        command: IncidentCommand,
        now: datetime,
        kind: EventType,
        what: str,
        details: dict[str, Any] | None = None,
        *,
        post: bool | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record what the command's actor did: "@who <what>"."""
        self.record(now, command.actor, kind, f"{command.actor.mention} {what}", details, post=post, at=at)

    def refresh_checklist(self) -> None:
        """Queue an edit of the live checklist post (once the channel exists: until then the
        opening post, rendered when it is made, shows everything)."""
        if self.state.channel_id is not None:
            self.enqueue(ChecklistEffect())

    def learn(self, actor: Actor, now: datetime) -> None:
        """Remember who acted, and that they are in the channel if Mattermost says so."""
        if actor.username:
            self.state.usernames[actor.user_id] = actor.username
        if actor.is_channel_member and actor.user_id not in self.state.member_ids:
            self.state.member_ids.append(actor.user_id)
            self.state.members_joined_at[actor.user_id] = actor.observed_at or now

    def learn_user(self, user: UserFact) -> None:
        self.state.usernames[user.user_id] = user.username

    # ------------------------------------------------------------------ requests

    def applied(self, command: IncidentCommand) -> RecentRequest | None:
        """The earlier answer to this very request (same scoped key), if it was applied."""
        if command.request is None:
            return None
        return next((r for r in self.state.recent_requests if r.id == command.request.id), None)

    def remember(self, command: IncidentCommand, message: str) -> None:
        if command.request is None:
            return
        recent = self.state.recent_requests
        recent.append(RecentRequest(id=command.request.id, fingerprint=command.request.fingerprint, message=message))
        if len(recent) > RECENT_REQUESTS_MAX:
            del recent[: len(recent) - RECENT_REQUESTS_MAX]

    # ------------------------------------------------------------------ access

    def is_member(self, actor: Actor) -> bool:
        return permissions.is_member_of(actor, self.state)

    def check_visible(self, command: IncidentCommand) -> bool:
        """Refuse as "not found" what the actor may not see, or a command typed elsewhere;
        returns whether the actor is a member of the incident."""
        if not permissions.may_see_incident(command.actor, self.state, typed_in=command.channel_id):
            raise not_found(NOT_HERE)
        return self.is_member(command.actor)

    def _check_member(self, command: IncidentCommand, refusal: str) -> None:
        if not permissions.can_change_incident(command.actor, is_member=self.check_visible(command)):
            raise forbidden(refusal)

    def _check_change(self, command: IncidentCommand) -> None:
        self._check_member(
            command,
            "Only members of the incident channel can change this incident. Ask someone in the channel to add you.",
        )
        if self.state.status != IncidentStatus.ONGOING:
            raise conflict(ENDED)

    def _stage(self, index: int) -> Stage:
        stages = self.state.checklists
        if index >= len(stages):
            raise invalid(f"There is no such stage: this incident has {len(stages)} stage(s).")
        return stages[index]

    def _item(self, stage_index: int, item_index: int) -> ChecklistItem:
        stage = self._stage(stage_index)
        if item_index >= len(stage.items):
            raise invalid(f"There is no such item: stage {stage.title!r} has {len(stage.items)} item(s).")
        return stage.items[item_index]

    # ------------------------------------------------------------------ stages

    def _target_stage(self, command: ChangeStage) -> int:
        current = self.state.active_stage
        last = len(self.state.checklists) - 1
        if command.stage is not None:
            self._stage(command.stage)
            if command.stage == current:
                raise conflict(f"Stage {self.state.checklists[current].title!r} is already the active stage.")
            return command.stage
        if command.direction == "next":
            if current >= last:
                raise conflict(f"Stage {self.state.checklists[current].title!r} is already the last stage.")
            return current + 1
        if command.direction == "prev":
            if current == 0:
                raise conflict(f"Stage {self.state.checklists[current].title!r} is already the first stage.")
            return current - 1
        raise invalid("Say which way to move: next, prev, or a stage.")

    def check_change_stage(self, command: ChangeStage) -> None:
        self._check_change(command)
        current = self.state.active_stage
        stage = self.state.checklists[current]
        if command.from_stage is not None and command.from_stage != current:
            decided = self._stage(command.from_stage).title if command.from_stage < len(self.state.checklists) else "?"
            raise conflict(
                f"The incident is no longer at stage {decided!r}: it is now at stage {text.stage_label(self.state)}. "
                "Nothing was changed; look at the checklist and move on again if you still want to."
            )
        target = self._target_stage(command)
        if target > current and stage.open_count and not command.force:
            raise confirm(
                f"Stage {stage.title!r} still has {stage.open_count} open item(s). Move on anyway?",
                stage=current,
                title=stage.title,
                open_items=stage.open_count,
            )

    def change_stage(self, command: ChangeStage, now: datetime) -> str:
        self.learn(command.actor, now)
        before = self.state.checklists[self.state.active_stage]
        open_left = before.open_count
        self.state.active_stage = self._target_stage(command)
        self.state.stage_entries += 1
        self.state.stage_entered_at = now
        due_dates.anchor_stage_entry(self.state, now)
        stage = self.state.checklists[self.state.active_stage]
        # Quoted by hand: repr() would spell out the invisible mark that neutralises a mention.
        left = f"'{text.relayed(self.state, before.title)}'"
        skipped = f" (leaving {open_left} open item(s) in {left})" if open_left else ""
        self.did(
            command,
            now,
            EventType.STAGE_CHANGED,
            f"moved the incident to stage {text.stage_label(self.state)}{skipped}",
            {"from": before.title, "to": stage.title, "open_items_left": open_left, "forced": command.force},
            post=False,
        )
        checklist = "\n".join(text.checklist_lines(self.state, stage))
        self.post(f"{self.state.timeline[-1].summary}\n\n{checklist}")
        self.run_rules(automation.on_stage_entered(self.state), now)
        return f"Moved to stage {text.stage_label(self.state)}."

    # ------------------------------------------------------------------ items

    def _item_at(self, command: SetItemState) -> ChecklistItem:
        stage = self.state.active_stage if command.stage is None else command.stage
        return self._item(stage, command.item)

    def _next_state(self, command: SetItemState) -> ItemState:
        item = self._item_at(command)
        if command.state == "toggle":
            return ItemState.OPEN if item.state == ItemState.DONE else ItemState.DONE
        return command.state

    def check_set_item_state(self, command: SetItemState) -> None:
        self._check_change(command)
        if command.from_stage is not None and command.from_stage != self.state.active_stage:
            raise conflict(
                f"The checklist has moved on to stage {text.stage_label(self.state)} since this was shown; "
                "nothing was changed. Look at the checklist again."
            )
        if command.item_id is not None:
            stage = self.state.active_stage if command.stage is None else command.stage
            items = self._stage(stage).items
            if command.item >= len(items) or items[command.item].id != command.item_id:
                raise conflict(
                    "The checklist changed since this was shown; nothing was changed. Look at the checklist again."
                )
        item = self._item_at(command)
        target = self._next_state(command)
        if target == ItemState.SKIPPED:
            raise invalid(
                "A step is skipped by its playbook condition (`when`), not by hand: check it, open it, "
                "mark it in progress, or remove it."
            )
        if item.state == target:
            raise conflict(f"Item {item.title!r} is already {target.value.replace('_', ' ')}.")

    def set_item_state(self, command: SetItemState, now: datetime) -> str:
        self.learn(command.actor, now)
        stage = self.state.active_stage if command.stage is None else command.stage
        item = self._item_at(command)
        target = self._next_state(command)
        before = item.state
        conditions.took_over(self.state, item)
        item.state = target
        item.state_changed_at = now
        item.state_changed_by = command.actor.user_id
        item.touched = True
        due_dates.mark_overdue(item)
        label = {
            ItemState.DONE: "done",
            ItemState.OPEN: "not done",
            ItemState.IN_PROGRESS: "in progress",
            ItemState.SKIPPED: "skipped",
        }[target]
        self.did(
            command,
            now,
            EventType.ITEM_STATE_CHANGED,
            f"marked **{item.title}** as {label} (stage {text.stage_label(self.state, stage)})",
            {"stage": stage, "item": command.item, "from": before.value, "to": target.value},
        )
        if target == ItemState.DONE:
            self.run_rules(automation.on_item_checked(self.state, stage, item), now)
        return f"Marked {item.title!r} as {label}."

    def check_assign_item(self, command: AssignItem) -> None:
        self._check_change(command)
        item = self._item(command.stage, command.item)
        user = command.assignee
        if user is None:
            if item.assignee_id is None:
                raise conflict(f"Item {item.title!r} has no assignee.")
            return
        if user.is_bot:
            raise invalid(f"{user.mention} is a bot and cannot be assigned an item.")
        if not user.is_channel_member:
            raise invalid(f"{user.mention} must be part of this channel to be assigned an item. Add them first.")
        if item.assignee_id == user.user_id:
            raise conflict(f"{user.mention} is already assigned to {item.title!r}.")

    def assign_item(self, command: AssignItem, now: datetime) -> str:
        self.learn(command.actor, now)
        item = self._item(command.stage, command.item)
        user = command.assignee
        previous = item.assignee_id
        item.touched = True
        if user is None:
            item.assignee_id = None
            title = text.relayed(self.state, item.title)
            summary = f"{command.actor.mention} unassigned **{title}** (was {self.state.mention(previous)})"
        else:
            self.learn_user(user)
            item.assignee_id = user.user_id
            summary = f"{command.actor.mention} assigned **{text.relayed(self.state, item.title)}** to {user.mention}"
        self.record(
            now,
            command.actor,
            EventType.ITEM_ASSIGNED,
            summary,
            {"stage": command.stage, "item": command.item, "from": previous, "to": item.assignee_id},
        )
        return text.sentence(summary.split(" ", 1)[1])

    def _wanted_due(self, command: SetItemDue) -> DueText:
        return read_due(command.due) if command.due is not None else DueText("none")

    def check_set_item_due(self, command: SetItemDue) -> None:
        self._check_change(command)
        item = self._item(command.stage, command.item)
        wanted = self._wanted_due(command)
        if wanted.kind == "none":
            if item.due_at is None and item.due_rule is None:
                raise conflict(f"Item {item.title!r} has no due time.")
        elif item.state == ItemState.DONE:
            raise conflict(f"Item {item.title!r} is done; reopen it before giving it a due time.")
        elif item.state == ItemState.SKIPPED:
            raise conflict(
                f"Item {item.title!r} is skipped ({item.skipped_reason or 'its condition does not hold'}); "
                "open it before giving it a due time."
            )

    def set_item_due(self, command: SetItemDue, now: datetime) -> str:
        """Give the item a due time (which re-arms its nudge), or clear it; on the timeline."""
        self.learn(command.actor, now)
        item = self._item(command.stage, command.item)
        wanted = self._wanted_due(command)
        before = item.due_at
        item.touched = True
        item.due_rule = None
        item.overdue_for = None
        item.overdue = False
        title = text.relayed(self.state, item.title)
        where = f"(stage {text.stage_label(self.state, command.stage)})"
        details: dict[str, Any] = {
            "stage": command.stage,
            "item": command.item,
            "item_id": item.id,
            "from": before.isoformat() if before else None,
        }
        if wanted.kind == "none":
            item.due_at = None
            what = f"cleared the due time of **{title}** {where}"
            self.did(command, now, EventType.ITEM_DUE_CHANGED, what, {**details, "to": None}, post=False)
            return f"Item {item.title!r} no longer has a due time."
        due = due_time(wanted, now, command.actor.time_zone)
        item.due_at = due.at
        what = f"set **{title}** {where} due at {text.clock(self.state, due.at)}"
        self.did(command, now, EventType.ITEM_DUE_CHANGED, what, {**details, "to": due.at.isoformat()}, post=False)
        return f"Item {item.title!r} is due {due.words}."

    def nudge_overdue_items(self, now: datetime) -> bool:
        """Every open item whose due time has come (and that was not found overdue for it yet) is
        marked overdue, on the timeline, and its assignee, else the commander, is told in one
        direct message per person. Whether any was."""
        state = self.state
        found = due_dates.due_items(state, now)
        told: dict[str, list[due_dates.DueItem]] = {}
        for due in found:
            item = due.entry
            assert item.due_at is not None
            item.overdue_for = item.due_at
            due_dates.mark_overdue(item)
            person = item.assignee_id or state.commander_id
            told.setdefault(person, []).append(due)
            self.record(
                now,
                SYSTEM_ACTOR,
                EventType.ITEM_OVERDUE,
                f"**{text.relayed(state, item.title)}** (stage {text.stage_label(state, due.stage)}) is overdue: "
                f"it was due at {text.clock(state, item.due_at)}; telling {state.mention(person)}",
                {
                    "stage": due.stage,
                    "item": due.item,
                    "item_id": item.id,
                    "due_at": item.due_at.isoformat(),
                    "told": person,
                },
                post=False,
            )
        for person, items in told.items():
            self.enqueue(DirectMessageEffect(user_id=person, message=text.overdue_message(state, items, now)))
        return bool(found)

    def direct_message_failed(
        self, now: datetime, user_id: str, problems: list[str], about: str = "overdue items"
    ) -> None:
        """A direct message (an overdue nudge, a retrospective's reminder) could not be delivered: on the timeline."""
        reason = "; ".join(problems)[:500] or "nobody could be messaged"
        self._record_failure(now, f"tell {self.state.mention(user_id)} of {about}", reason, tell_channel=False)

    def check_add_item(self, command: AddItem) -> None:
        self._check_change(command)
        stage = self._stage(command.stage)
        if command.position is not None and command.position > len(stage.items):
            raise invalid(f"Position {command.position} is past the end of stage {stage.title!r}.")

    def add_item(self, command: AddItem, now: datetime) -> str:
        self.learn(command.actor, now)
        stage = self._stage(command.stage)
        item = ChecklistItem(
            id=self._new_id(), title=command.title, description=command.description, command=command.command
        )
        position = len(stage.items) if command.position is None else command.position
        stage.items.insert(position, item)
        self.did(
            command,
            now,
            EventType.ITEM_ADDED,
            f"added **{item.title}** to stage {stage.title!r}",
            {"stage": command.stage, "item": position, "item_id": item.id},
        )
        return f"Added {item.title!r} as item {position + 1} of stage {stage.title!r}."

    def check_edit_item(self, command: EditItem) -> None:
        self._check_change(command)
        item = self._item(command.stage, command.item)
        changes = {
            "title": command.title,
            "description": command.description,
            "command": command.command,
        }
        if all(value is None or getattr(item, field) == value for field, value in changes.items()):
            raise conflict(f"Nothing to change: item {item.title!r} already looks like that.")

    def edit_item(self, command: EditItem, now: datetime) -> str:
        self.learn(command.actor, now)
        item = self._item(command.stage, command.item)
        before = item.title
        item.touched = True
        for field in ("title", "description", "command"):
            value = getattr(command, field)
            if value is not None:
                setattr(item, field, value)
        what = f"renamed **{before}** to **{item.title}**" if item.title != before else f"edited **{item.title}**"
        self.did(
            command,
            now,
            EventType.ITEM_RENAMED,
            what,
            {"stage": command.stage, "item": command.item, "from": before, "to": item.title},
        )
        return text.sentence(what.replace("**", "'"))

    def check_remove_item(self, command: RemoveItem) -> None:
        self._check_change(command)
        self._item(command.stage, command.item)

    def remove_item(self, command: RemoveItem, now: datetime) -> str:
        self.learn(command.actor, now)
        stage = self._stage(command.stage)
        item = stage.items.pop(command.item)
        if item.spec_key is not None and item.spec_key not in self.state.steps_removed:
            # A playbook step removed by hand: conditions never bring it back.
            self.state.steps_removed.append(item.spec_key)
        self.did(
            command,
            now,
            EventType.ITEM_REMOVED,
            f"removed **{item.title}** from stage {stage.title!r}",
            {"stage": command.stage, "item": command.item, "item_id": item.id, "title": item.title},
        )
        return f"Removed {item.title!r}."

    def check_move_item(self, command: MoveItem) -> None:
        self._check_change(command)
        item = self._item(command.stage, command.item)
        stage = self._stage(command.stage)
        if command.to_position >= len(stage.items):
            raise invalid(f"Position {command.to_position} is past the end of stage {stage.title!r}.")
        if command.to_position == command.item:
            raise conflict(f"Item {item.title!r} is already at that position.")

    def move_item(self, command: MoveItem, now: datetime) -> str:
        self.learn(command.actor, now)
        stage = self._stage(command.stage)
        item = stage.items.pop(command.item)
        stage.items.insert(command.to_position, item)
        self.did(
            command,
            now,
            EventType.ITEM_MOVED,
            f"moved **{item.title}** to position {command.to_position + 1} in stage {stage.title!r}",
            {"stage": command.stage, "from": command.item, "to": command.to_position},
        )
        return f"Moved {item.title!r} to position {command.to_position + 1}."

    def check_run_item_command(self, command: RunItemCommand) -> None:
        self._check_change(command)
        item = self._item(command.stage, command.item)
        if not item.command:
            raise invalid(f"Item {item.title!r} has no slash command to run.")

    def run_item_command(self, command: RunItemCommand, now: datetime) -> str:
        self.learn(command.actor, now)
        item = self._item(command.stage, command.item)
        item.command_last_run = now
        item.touched = True
        self.did(
            command,
            now,
            EventType.COMMAND_RUN,
            f"ran `{text.relayed(self.state, item.command)}` for **{text.relayed(self.state, item.title)}**",
            {"stage": command.stage, "item": command.item, "command": item.command},
        )
        return f"Recorded that {item.command} ran."

    # ------------------------------------------------------------------ notes

    def check_add_note(self, command: AddNote) -> None:
        """Members note what happened while the incident runs, and after it ended (for the
        retrospective); back-dated (`at`) within the incident's time span."""
        self._check_member(
            command,
            "Only members of the incident channel can add notes. Ask someone in the channel to add you.",
        )
        if command.at is not None:
            self._note_time(command, self._clock())

    def _note_time(self, command: AddNote, now: datetime) -> datetime | None:
        """When a back-dated note happened; refused before the incident's start or in the future."""
        if command.at is None:
            return None
        at = note_moment(command.at, now, command.actor.time_zone)
        start = self.state.started_at
        if at < start:
            raise invalid(
                f"{text.clock(self.state, at)} is before the incident started "
                f"({text.clock(self.state, start)}); give a time after its start, or leave the time out."
            )
        if at > now:
            raise invalid(
                f"{text.clock(self.state, at)} is in the future; give a time that has passed, or leave the time out."
            )
        return at

    def add_note(self, command: AddNote, now: datetime) -> str:
        self.learn(command.actor, now)
        at = self._note_time(command, now)
        details: dict[str, Any] = {"text": command.text}
        if at is not None:
            details["written_at"] = now.isoformat()
        self.did(command, now, EventType.NOTE_ADDED, self._noted(command.text), details, post=False, at=at)
        where = f" at {text.clock(self.state, at)}" if at is not None else ""
        return f"Note e{self.state.events_numbered} added to the timeline{where}."

    def _noted(self, typed: str) -> str:
        return f"noted: {text.relayed(self.state, typed)}"

    def _own_note(self, command: EditNote | DeleteNote, what: str) -> TimelineEvent:
        self._check_member(
            command,
            f"Only members of the incident channel can {what} notes. Ask someone in the channel to add you.",
        )
        note = self.state.event(command.note_id)
        if note is None or note.type != EventType.NOTE_ADDED:
            raise not_found(
                f"There is no note {command.note_id} on this incident's timeline; "
                "the timeline shows each note's id (such as e12)."
            )
        if note.details.get("deleted"):
            raise conflict(f"Note {note.id} was deleted.")
        if note.actor_id != command.actor.user_id:
            author = self.state.mention(note.actor_id)
            raise forbidden(f"Only its author can {what} a note; note {note.id} is {author}'s.")
        return note

    def check_edit_note(self, command: EditNote) -> None:
        note = self._own_note(command, "edit")
        if note.details.get("text") == command.text:
            raise conflict(f"Note {note.id} already says that.")

    def edit_note(self, command: EditNote, now: datetime) -> str:
        """The note keeps its id and its place; its text changes (the earlier one kept in the
        edit's event), and the edit is on the timeline."""
        self.learn(command.actor, now)
        note = self._own_note(command, "edit")
        before = str(note.details.get("text", ""))
        note.summary = f"{command.actor.mention} {self._noted(command.text)}"
        note.details = {**note.details, "text": command.text, "edited_at": now.isoformat()}
        self.state.timeline_bytes = 0  # counted again with the next event
        self.did(
            command,
            now,
            EventType.NOTE_EDITED,
            f"edited note {note.id}",
            {"note_id": note.id, "before": before},
            post=False,
        )
        return f"Note {note.id} edited."

    def check_delete_note(self, command: DeleteNote) -> None:
        self._own_note(command, "delete")

    def delete_note(self, command: DeleteNote, now: datetime) -> str:
        """The note's text is gone from every view; its place, its id and its deletion are on the timeline."""
        self.learn(command.actor, now)
        note = self._own_note(command, "delete")
        note.summary = f"{command.actor.mention} deleted this note"
        note.details = {"deleted": True, "deleted_at": now.isoformat()}
        for edit in self.state.timeline:  # its earlier texts go too
            if edit.type == EventType.NOTE_EDITED and edit.details.get("note_id") == note.id:
                edit.details = {"note_id": note.id}
        self.state.timeline_bytes = 0
        self.did(command, now, EventType.NOTE_DELETED, f"deleted note {note.id}", {"note_id": note.id}, post=False)
        return f"Note {note.id} deleted."

    # ------------------------------------------------------------------ key moments

    def _starrable(self, command: StarEvent | UnstarEvent) -> TimelineEvent:
        self._check_member(
            command,
            "Only members of the incident channel can star key moments. Ask someone in the channel to add you.",
        )
        event = self.state.event(command.event_id)
        if event is None:
            raise not_found(
                f"There is no event {command.event_id} on this incident's timeline; "
                "the timeline shows each event's id (such as e12)."
            )
        return event

    def check_star_event(self, command: StarEvent) -> None:
        event = self._starrable(command)
        if event.id in self.state.key_moments:
            raise conflict(f"Event {event.id} is already a key moment.")

    def star_event(self, command: StarEvent, now: datetime) -> str:
        self.learn(command.actor, now)
        event = self._starrable(command)
        self.state.key_moments.append(event.id)
        self.did(
            command,
            now,
            EventType.KEY_MOMENT_STARRED,
            f"starred {event.id} as a key moment",
            {"event_id": event.id},
            post=False,
        )
        return f"Event {event.id} is a key moment."

    def check_unstar_event(self, command: UnstarEvent) -> None:
        event = self._starrable(command)
        if event.id not in self.state.key_moments:
            raise conflict(f"Event {event.id} is not a key moment.")

    def unstar_event(self, command: UnstarEvent, now: datetime) -> str:
        self.learn(command.actor, now)
        event = self._starrable(command)
        self.state.key_moments.remove(event.id)
        self.did(
            command,
            now,
            EventType.KEY_MOMENT_UNSTARRED,
            f"unstarred {event.id}: no longer a key moment",
            {"event_id": event.id},
            post=False,
        )
        return f"Event {event.id} is no longer a key moment."

    # ------------------------------------------------------------------ retrospective

    def _open_retrospective(self, now: datetime) -> None:
        """At the end, the playbook's retrospective opens from its template (once: an incident
        restarted and ended again keeps the one it has)."""
        state = self.state
        spec = state.playbook.retrospective if state.playbook else None
        if spec is None or state.retrospective is not None:
            return
        retrospective = retrospectives.opened(state, spec, now)
        state.retrospective = retrospective
        url = retrospectives.retrospective_url(state)
        where = f": [edit it in the backstage]({url})" if url else " (the backstage edits it)"
        self.record(
            now,
            SYSTEM_ACTOR,
            EventType.RETROSPECTIVE_OPENED,
            f"The retrospective is open{where}; it is due {text.clock(state, retrospective.due_at)}, and "
            f"{state.mention(state.commander_id)} is reminded until it is published or declined",
            {"due_at": retrospective.due_at.isoformat()},
        )

    def _draft(self, what: str) -> None:
        """The retrospective exists and is still a draft (what `what` needs)."""
        retrospective = self.state.retrospective
        if retrospective is None:
            raise conflict(NO_RETROSPECTIVE)
        if retrospective.status != RetrospectiveStatus.DRAFT:
            by = self.state.mention(retrospective.concluded_by)
            raise conflict(f"The retrospective was {retrospective.status.value} by {by}; it can no longer {what}.")

    def check_save_retrospective(self, command: SaveRetrospective) -> None:
        """Members of the incident channel edit the draft; a save based on an older version
        than the latest is refused (409), so nobody overwrites another's edit unseen."""
        self._check_member(
            command,
            "Only members of the incident channel can edit the retrospective. Ask someone in the channel to add you.",
        )
        self._draft("be edited")
        retrospective = self.state.retrospective
        assert retrospective is not None  # checked
        if command.version != retrospective.version:
            latest = retrospective.history[-1] if retrospective.history else None
            by = f" by {self.state.mention(latest.author_id)}" if latest and latest.author_id != SYSTEM_ACTOR else ""
            raise refuse(
                Refusal.CONFLICT,
                f"The retrospective changed since you opened it (you edited version {command.version}; "
                f"version {retrospective.version}{by} is the latest): reload it, then make your change again.",
                {STALE_VERSION: retrospective.version},
            )
        if command.text == retrospective.text:
            raise conflict(f"Version {retrospective.version} of the retrospective already says that.")

    def save_retrospective(self, command: SaveRetrospective, now: datetime) -> str:
        """A new version: kept in the history (who, when, and the newest texts); not on the
        timeline (every save would be one entry)."""
        self.learn(command.actor, now)
        retrospective = self.state.retrospective
        assert retrospective is not None  # checked
        retrospective.text = command.text
        retrospective.version += 1
        retrospective.record_version(command.actor.user_id, now)
        return f"Retrospective saved (version {retrospective.version})."

    def _check_conclude(self, command: IncidentCommand, what: str) -> None:
        """The commander (or a member of the incident's playbook, or a system admin), in the
        incident channel, publishes or declines the draft."""
        is_member = self.check_visible(command)
        state = self.state
        if not permissions.can_conclude_retrospective(
            command.actor,
            is_member=is_member,
            commander_id=state.commander_id,
            playbook_member_ids=state.playbook.member_ids if state.playbook else [],
        ):
            raise forbidden(
                f"Only the commander ({state.mention(state.commander_id)}) or a member of the playbook, in the "
                f"incident channel, can {what} the retrospective."
            )
        self._draft(f"be {what}d" if what.endswith("e") else f"be {what}ed")

    def check_publish_retrospective(self, command: PublishRetrospective) -> None:
        self._check_conclude(command, "publish")
        retrospective = self.state.retrospective
        assert retrospective is not None  # checked
        if not summary_of(retrospective.text):
            raise invalid("The retrospective is empty; write it (at least its first section) before publishing it.")

    def publish_retrospective(self, command: PublishRetrospective, now: datetime) -> str:
        """Its summary (the first section) goes to the incident channel and the informed
        channels, with the link to the whole; webhooks get `incident.retrospective_published`."""
        self.learn(command.actor, now)
        state = self.state
        retrospective = state.retrospective
        assert retrospective is not None  # checked
        retrospective.status = RetrospectiveStatus.PUBLISHED
        retrospective.concluded_at = now
        retrospective.concluded_by = command.actor.user_id
        retrospective.next_reminder_at = None
        url = retrospectives.retrospective_url(state)
        link = f"\n\n[Read the whole retrospective]({url})" if url else ""
        summary = text.relayed(state, summary_of(retrospective.text))
        self.did(
            command,
            now,
            EventType.RETROSPECTIVE_PUBLISHED,
            f"published the retrospective (version {retrospective.version})",
            {"version": retrospective.version, "summary": summary_of(retrospective.text), "url": url},
            post=False,
        )
        self.post(f"#### Retrospective published by {command.actor.mention}\n{summary}{link}")
        self.broadcast(f"retrospective published by {command.actor.mention}:\n{summary}{link}")
        return "Retrospective published: its summary is posted in the incident channel and the broadcast channels."

    def check_decline_retrospective(self, command: DeclineRetrospective) -> None:
        self._check_conclude(command, "decline")

    def decline_retrospective(self, command: DeclineRetrospective, now: datetime) -> str:
        self.learn(command.actor, now)
        retrospective = self.state.retrospective
        assert retrospective is not None  # checked
        retrospective.status = RetrospectiveStatus.DECLINED
        retrospective.concluded_at = now
        retrospective.concluded_by = command.actor.user_id
        retrospective.reason = command.reason
        retrospective.next_reminder_at = None
        self.did(
            command,
            now,
            EventType.RETROSPECTIVE_DECLINED,
            f"declined the retrospective: {text.relayed(self.state, command.reason)}",
            {"reason": command.reason},
        )
        return "Retrospective declined: no more reminders."

    def remind_of_retrospective(self, now: datetime) -> bool:
        """The draft's reminder, when due: a direct message to the commander, then the next one
        `reminder_every` later. Whether one was due."""
        due = retrospectives.reminder_due(self.state)
        if due is None or due > now:
            return False
        state = self.state
        retrospective = state.retrospective
        assert retrospective is not None  # due
        every = timedelta(seconds=retrospective.reminder_every_seconds)
        # The next one after now (a worker down for days sends one reminder, not a backlog).
        due += every * (int((now - due) / every) + 1)
        retrospective.next_reminder_at = due
        retrospective.reminders_sent += 1
        url = retrospectives.retrospective_url(state)
        where = f"[edit it in the backstage]({url})" if url else "edit it in the backstage"
        overdue = "is due" if retrospective.reminders_sent == 1 else "is overdue"
        self.enqueue(
            DirectMessageEffect(
                user_id=state.commander_id,
                about="the retrospective",
                message=(
                    f"The retrospective of incident **{text.incident_name(state.name)}** {overdue} "
                    f"(since {text.clock(state, retrospective.due_at)}): {where}, then publish it, or decline it "
                    "with `/incident retrodecline <reason>` in the incident channel."
                ),
            )
        )
        self.record(
            now,
            SYSTEM_ACTOR,
            EventType.RETROSPECTIVE_REMINDED,
            f"Reminded {state.mention(state.commander_id)} of the retrospective (reminder "
            f"{retrospective.reminders_sent}; the next {text.clock(state, due)})",
            {"reminder": retrospective.reminders_sent, "next_at": due.isoformat()},
            post=False,
        )
        return True

    # ------------------------------------------------------------------ people

    def check_change_commander(self, command: ChangeCommander) -> None:
        self._check_change(command)
        user = command.commander
        if user.user_id == self.state.commander_id:
            raise conflict(f"{user.mention} is already the commander.")
        if user.is_bot:
            raise invalid(f"{user.mention} is a bot and cannot be the commander.")
        if not user.is_channel_member:
            raise invalid(f"{user.mention} must be part of this channel to make them commander.")

    def change_commander(self, command: ChangeCommander, now: datetime) -> str:
        self.learn(command.actor, now)
        user = command.commander
        self.learn_user(user)
        previous = self.state.commander_id
        self.state.commander_id = user.user_id
        self.did(
            command,
            now,
            EventType.COMMANDER_CHANGED,
            f"changed the commander from {self.state.mention(previous)} to {user.mention}",
            {"from": previous, "to": user.user_id},
        )
        self._refresh_header()
        return f"{user.mention} is now the commander."

    def _invitees(self, command: InviteMembers) -> list[UserFact]:
        # Mattermost's word decides (the incident's list may miss a removal made outside
        # this tool); inviting someone who is already in is harmless.
        return [u for u in command.users if not u.is_channel_member]

    def check_invite_members(self, command: InviteMembers) -> None:
        self._check_change(command)
        outsiders = [u.mention for u in command.users if not u.is_team_member]
        if outsiders:
            raise invalid(f"{', '.join(outsiders)} not in this team; only team members can join the incident channel.")
        if not self._invitees(command):
            names = ", ".join(u.mention for u in command.users)
            raise conflict(f"{names} already in the incident channel.")

    def invite_members(self, command: InviteMembers, now: datetime) -> str:
        self.learn(command.actor, now)
        users = self._invitees(command)
        for user in users:
            self.learn_user(user)
        names = ", ".join(u.mention for u in users)
        self.enqueue(InviteEffect(actor_id=command.actor.user_id, users=users))
        self.did(
            command,
            now,
            EventType.MEMBER_INVITED,
            f"added {names} to the incident",
            {"user_ids": [u.user_id for u in users]},
        )
        skipped = [u.mention for u in command.users if u not in users]
        note = f" ({', '.join(skipped)} already in the channel)" if skipped else ""
        return f"Adding {names}{note}."

    def members_added(self, user_ids: list[str], now: datetime) -> None:
        new = [user_id for user_id in user_ids if user_id not in self.state.member_ids]
        self.state.member_ids.extend(new)
        for user_id in user_ids:
            self.state.members_joined_at[user_id] = now
        if new:
            self.enqueue(StatsEffect())
            self.emit("incident.members_added", now, SYSTEM_ACTOR, {"user_ids": new})

    def invite_failed(self, now: datetime, actor_id: str, user: UserFact, reason: str) -> None:
        self.record(
            now,
            actor_id,
            EventType.INVITE_FAILED,
            f"Could not add {user.mention} to the channel: {reason}",
            {"user_id": user.user_id, "reason": reason},
        )

    def channel_access_lost(self, now: datetime, *, bot_username: str, waiting_after_seq: int) -> None:
        """The bot may not post in the incident channel: its effects wait, members are told."""
        lost = self.state.channel_access_lost
        recheck = self.state.config.channel_access_recheck_seconds
        if lost is not None:
            lost.attempts += 1
            lost.waiting_after_seq = waiting_after_seq
            lost.retry_at = now + timedelta(seconds=min(recheck * 2 ** (lost.attempts - 1), 3600))
            return
        self.state.channel_access_lost = ChannelAccessLost(
            since=now,
            bot_username=bot_username,
            waiting_after_seq=waiting_after_seq,
            retry_at=now + timedelta(seconds=recheck),
        )
        self.record(
            now,
            SYSTEM_ACTOR,
            EventType.CHANNEL_ACCESS_LOST,
            f"@{bot_username} can no longer post in the incident channel; what happens here is kept "
            "and posted once it is back",
            {"bot": bot_username},
            post=False,
        )

    def effect_carried_out(self, now: datetime, lane: str) -> None:
        """An effect of `lane` worked: the bot is back in the incident channel, or a channel
        whose effects were failing works again, each on record once."""
        lost = self.state.channel_access_lost
        if lane == INCIDENT_CHANNEL_LANE and lost is not None:
            self.state.channel_access_lost = None
            self.record(
                now,
                SYSTEM_ACTOR,
                EventType.CHANNEL_ACCESS_BACK,
                f"@{lost.bot_username} can post in the incident channel again",
                {"bot": lost.bot_username, "away_seconds": round((now - lost.since).total_seconds())},
                post=False,
            )
        failing = self.state.failing_lanes.pop(lane, None)
        if failing is not None:
            actions = "action" if failing.failed == 1 else "actions"
            self.record(
                now,
                SYSTEM_ACTOR,
                EventType.EFFECT_RECOVERED,
                f"Posting to {self._lane_target(lane)} works again; "
                f"{failing.failed} {actions} there could not be carried out meanwhile",
                {
                    "lane": lane,
                    "failed": failing.failed,
                    "failing_seconds": round((now - failing.since).total_seconds()),
                },
                post=False,
            )

    def _lane_target(self, lane: str) -> str:
        if lane == INCIDENT_CHANNEL_LANE:
            return "the incident channel"
        return self.state.channel_mention(lane.removeprefix(OTHER_CHANNEL_LANE))

    def access_note(self) -> str:
        """What every reply adds while the bot cannot post in the incident channel."""
        lost = self.state.channel_access_lost
        if lost is None:
            return ""
        bot = f"@{lost.bot_username}"
        return (
            f"\n\nNote: {bot} can no longer post in this channel, so nobody else sees changes here yet. "
            f"Add {bot} back to the channel (`/invite {bot}`); what happened meanwhile is posted then."
        )

    def effect_failed(self, now: datetime, lane: str, what: str, reason: str, *, tell_channel: bool) -> None:
        """An effect of `lane` was refused, or not accepted in time, and is skipped.

        A channel's first failure is on record, and said when it helps; later ones are only
        counted, until one of its effects works again (`effect_carried_out`): a channel the bot
        cannot reach is one entry and one notice, not one per change. Other lanes (the header,
        statistics, command replies) fail seldom and each failure is on record.
        """
        failing = self.state.failing_lanes.get(lane)
        if failing is not None:
            failing.failed += 1
            return
        if is_channel_lane(lane):
            self.state.failing_lanes[lane] = FailingLane(since=now)
        self._record_failure(now, what, reason, tell_channel=tell_channel)

    def pin_refused(self, now: datetime, reason: str) -> None:
        """The post stands and its channel works; only the pin was refused."""
        self._record_failure(now, "pin the post", reason, tell_channel=False)

    def _record_failure(self, now: datetime, what: str, reason: str, *, tell_channel: bool) -> None:
        self.record(
            now,
            SYSTEM_ACTOR,
            EventType.EFFECT_FAILED,
            f"Could not {what}: {reason}",
            {"what": what, "reason": reason},
            post=tell_channel,
        )

    # ------------------------------------------------------------------ status updates and reminders

    def check_post_status_update(self, command: PostStatusUpdate) -> None:
        self._check_change(command)

    def post_status_update(self, command: PostStatusUpdate, now: datetime) -> str:
        self.learn(command.actor, now)
        update = StatusUpdate(at=now, author_id=command.actor.user_id, message=command.message, status=command.status)
        self.state.status_updates.append(update)
        self.state.status_updates_posted += 1
        del self.state.status_updates[:-STATUS_UPDATES_KEPT]
        if self.state.first_status_update_at is None:
            self.state.first_status_update_at = now
            self.enqueue(StatsEffect())
        status = f" ({update.status.value})" if update.status else ""
        self.did(
            command,
            now,
            EventType.STATUS_UPDATE,
            f"posted a status update{status}",
            {"status": update.status.value if update.status else None, "message": update.message},
            post=False,
        )
        self.post(text.status_update_post(self.state, update, command.actor))
        self._answer_reminders(f"*Answered by {command.actor.mention}'s status update.*")
        relayed = text.relayed(self.state, update.message[:1000])
        self.broadcast(f"status update{status} from {command.actor.mention}:\n> {relayed}")
        self._reschedule_reminder(now)
        self.run_rules(automation.on_status_update(self.state, update.status.value if update.status else None), now)
        if update.status == UpdateStatus.RESOLVED:
            # "Resolved" describes the problem, not the incident: ending it is a choice of its own.
            return "Status update posted. The incident is still ongoing: `/incident end` ends it."
        return "Status update posted."

    def _answer_reminders(self, note: str) -> None:
        """Reminder posts waiting for an answer lose their buttons (queued after them in their lane)."""
        waiting = any(name.startswith(REMINDER_POST) for name in self.state.post_ids) or any(
            isinstance(p.effect, PostEffect) and (p.effect.remember_as or "").startswith(REMINDER_POST)
            for p in self.state.outbox
        )
        if waiting:
            self.enqueue(ClearButtonsEffect(post_name=REMINDER_POST, note=note))

    def _reschedule_reminder(self, now: datetime) -> None:
        seconds = self.state.reminder_seconds
        self.state.reminder_due_at = now + timedelta(seconds=seconds) if seconds else None

    def check_set_reminder(self, command: SetReminder) -> None:
        self._check_change(command)
        problem = reminder_problem(command.seconds, self.state.config.reminder_min_seconds)
        if problem:
            raise invalid(problem, "seconds")
        if command.seconds == self.state.reminder_seconds:
            current = text.format_duration(command.seconds) if command.seconds else "off"
            raise conflict(f"The status update reminder is already {current}.")

    def set_reminder(self, command: SetReminder, now: datetime) -> str:
        self.learn(command.actor, now)
        self.state.reminder_seconds = command.seconds
        self._reschedule_reminder(now)
        setting = f"every {text.format_duration(command.seconds)}" if command.seconds else "off"
        self.did(
            command,
            now,
            EventType.REMINDER_CHANGED,
            f"set the status update reminder {setting}",
            {"seconds": command.seconds},
        )
        return f"Status update reminder set {setting}."

    def check_snooze_reminder(self, command: SnoozeReminder) -> None:
        self._check_change(command)
        if not self.state.reminder_seconds:
            raise conflict("The status update reminder is off for this incident.")

    def snooze_reminder(self, command: SnoozeReminder, now: datetime) -> str:
        self.learn(command.actor, now)
        self.state.reminder_due_at = now + timedelta(seconds=command.seconds)
        duration = text.format_duration(command.seconds)
        self.did(
            command,
            now,
            EventType.REMINDER_CHANGED,
            f"snoozed the status update reminder for {duration}",
            {"snoozed_seconds": command.seconds},
        )
        return f"Reminder snoozed for {duration} by {command.actor.mention}."

    def reminder_is_due(self, now: datetime) -> bool:
        due = self.state.reminder_due_at
        return self.state.status == IncidentStatus.ONGOING and due is not None and now >= due

    def send_reminder(self, now: datetime) -> None:
        last = self.state.status_updates[-1].at if self.state.status_updates else self.state.started_at
        quiet = (now - max(last, self.state.periods[-1].started_at)).total_seconds()
        self.record(
            now,
            SYSTEM_ACTOR,
            EventType.REMINDER_SENT,
            f"Reminded {self.state.mention(self.state.commander_id)} to post a status update",
            {"commander_id": self.state.commander_id, "quiet_seconds": round(quiet)},
            post=False,
        )
        self.post(
            text.reminder_post(self.state, quiet),
            buttons=[
                Button(id="postupdate", name="Post update", action="post_update"),
                Button(id="snooze", name="Snooze 1h", action="snooze", seconds=3600),
            ],
            remember_as=f"{REMINDER_POST}{self.state.next_seq}",
        )
        self._reschedule_reminder(now)

    # ------------------------------------------------------------------ playbook rules

    def fire_due_rules(self, now: datetime) -> bool:
        """Fire the timer rules due by `now` (see `incident_automation`); whether any was."""
        firings = automation.due_firings(self.state, now)
        self.run_rules(firings, now)
        return bool(firings)

    def run_rules(self, firings: list[automation.Firing], now: datetime) -> None:
        """Carry out each firing's actions through the incident's own machinery, remember its
        key (it never fires again) and put it on the timeline, naming the rule."""
        for firing in firings:
            if automation.has_fired(self.state, firing.key):
                continue
            automation.remember(self.state, firing.key)
            rule = firing.rule
            done = [self._rule_action(rule.name, action, now) for action in rule.then]
            self.record(
                now,
                SYSTEM_ACTOR,
                EventType.RULE_FIRED,
                f"Rule '{rule.name}' fired ({firing.why}): {'; '.join(done)}",
                {"rule": rule.name, "key": firing.key},
                post=False,
            )

    def _rule_action(self, rule: str, action: RuleAction, now: datetime) -> str:
        """Carry out one action of a rule; what it did, in words."""
        state = self.state
        if isinstance(action, PostAction):
            self.post(text.relayed(state, action.message))
            return "posted a message"
        if isinstance(action, AddItemsAction):
            wanted = action.stage.casefold()
            index = next((i for i, s in enumerate(state.checklists) if s.title.casefold() == wanted), None)
            if index is None:
                return f"no stage {action.stage!r} to add items to"
            stage = state.checklists[index]
            added = []
            for title in action.items:
                if len(stage.items) >= MAX_ITEMS_PER_STAGE:
                    break
                item = ChecklistItem(id=self._new_id(), title=title)
                stage.items.append(item)
                added.append(title)
                self.record(
                    now,
                    SYSTEM_ACTOR,
                    EventType.ITEM_ADDED,
                    f"Rule '{rule}' added **{title}** to stage {stage.title!r}",
                    {"stage": index, "item": len(stage.items) - 1, "item_id": item.id, "rule": rule},
                )
            listed = ", ".join(repr(t) for t in added) or "no items (the stage is full)"
            return f"added {listed} to stage {stage.title!r}"
        if isinstance(action, SetReminderAction):
            # Checked against the limits when the playbook was saved; they may have moved since.
            seconds = duration_seconds(action.after)
            seconds = min(max(seconds, state.config.reminder_min_seconds), REMINDER_MAX_SECONDS)
            state.reminder_seconds = seconds
            self._reschedule_reminder(now)
            return f"set the status update reminder every {text.format_duration(seconds)}"
        if isinstance(action, InviteAction):
            users = [
                UserFact(user_id=u, username=state.usernames.get(u, u), is_channel_member=False)
                for u in action.user_ids
                if u not in state.member_ids
            ]
            if not users:
                return "invited nobody (everyone is in the channel)"
            self.enqueue(InviteEffect(actor_id=SYSTEM_ACTOR, users=users))
            return f"added {', '.join(state.mention(u.user_id) for u in users)} to the incident"
        if isinstance(action, AnnounceAction):
            if action.channel_id == state.channel_id:
                return "did not announce the incident in its own channel"
            where = f"join ~{state.channel_name}" if state.is_public else "the incident channel is private"
            self.enqueue(
                PostEffect(
                    channel_id=action.channel_id,
                    message=(
                        f"#### :rotating_light: Incident: {text.incident_name(state.name)}\n"
                        f"Commander {state.mention(state.commander_id)} · stage {text.stage_label(state)} · {where}\n"
                        f"Announced by the playbook's rule {text.incident_name(rule)!r}; this channel is told when "
                        "its status changes and when it ends."
                    ),
                )
            )
            if action.channel_id not in state.announced_channel_ids:
                state.announced_channel_ids.append(action.channel_id)
            return f"announced the incident in {state.channel_mention(action.channel_id)}"
        if isinstance(action, PageAction):
            return self.page_by_rule(rule, action.user_ids, action.reason, now)
        self.emit(action.event_type, now, SYSTEM_ACTOR, {"rule": rule})
        return f"sent webhook event {action.event_type}"

    # ------------------------------------------------------------------ severity

    def _severity_level(self, command: SetSeverity) -> SeverityLevel:
        try:
            return parse_severity(command.severity, command.levels)
        except SeverityUnknown as unknown:
            raise invalid(str(unknown), "severity") from None

    def check_set_severity(self, command: SetSeverity) -> None:
        """Members set it while the incident runs, and after it ended (to correct it for the
        retrospective and the statistics), to one of the team's levels."""
        self._check_member(
            command,
            "Only members of the incident channel can change the severity. Ask someone in the channel to add you.",
        )
        level = self._severity_level(command)
        current = self.state.severity
        if current is not None and current.level == level.level and current.name == level.name:
            raise conflict(f"The severity is already {level.name}.")

    def set_severity(self, command: SetSeverity, now: datetime) -> str:
        self.learn(command.actor, now)
        state = self.state
        before = state.severity
        after = severity_of(self._severity_level(command))
        state.severity = after
        what = f"to **{after.name}**" if before is None else f"from **{before.name}** to **{after.name}**"
        self.did(
            command,
            now,
            EventType.SEVERITY_CHANGED,
            f"{'set' if before is None else 'changed'} the severity {what}",
            {
                "from": before.level if before else None,
                "from_name": before.name if before else None,
                "to": after.level,
                "to_name": after.name,
            },
        )
        if state.status == IncidentStatus.ONGOING:
            self.broadcast(f"severity {what} by {command.actor.mention}.")
        self._refresh_header()
        self.enqueue(StatsEffect())
        self.conditions_changed(now, command.actor.user_id, f"Severity {after.name}")
        return f"Severity set to {after.name}."

    # ------------------------------------------------------------------ custom fields

    def _field_spec(self, command: SetField) -> FieldSpec:
        declared = self.state.playbook.fields if self.state.playbook else []
        spec = field_named(declared, command.name)
        if spec is None:
            raise invalid(unknown_field(declared, command.name), "name")
        return spec

    def _field_value(self, spec: FieldSpec, command: SetField) -> str:
        try:
            return read_field(spec, command.value, command.users)
        except FieldValueError as problem:
            raise invalid(str(problem), "value") from None

    def check_set_field(self, command: SetField) -> None:
        """Members set the incident's fields while it runs, and after it ended (to correct them for
        the retrospective and the statistics), to a value the playbook's field takes."""
        self._check_member(
            command,
            "Only members of the incident channel can change the incident's fields. "
            "Ask someone in the channel to add you.",
        )
        spec = self._field_spec(command)
        value = self._field_value(spec, command)
        current = self.state.field_values.get(spec.name, "")
        if value == current:
            if not value:
                raise conflict(f"Field '{spec.name}' has no value.")
            shown = shown_value(spec, value, self.state.mention)
            raise conflict(f"Field '{spec.name}' is already {shown}.")

    def set_field(self, command: SetField, now: datetime) -> str:
        self.learn(command.actor, now)
        for user in command.users:
            self.learn_user(user)
        state = self.state
        spec = self._field_spec(command)
        after = self._field_value(spec, command)
        before = state.field_values.get(spec.name, "")
        if after:
            state.field_values[spec.name] = after
        else:
            state.field_values.pop(spec.name, None)
        # Kept in the playbook's order.
        declared = state.playbook.fields if state.playbook else []
        state.field_values = {s.name: state.field_values[s.name] for s in declared if s.name in state.field_values}
        # A person chosen is mentioned (as an assignee is); what was typed is relayed (mentions neutralised).
        old, new = (
            shown_value(spec, value, state.mention) if spec.type == FieldType.USER else text.relayed(state, value)
            for value in (before, after)
        )
        if not after:
            what = f"cleared **{spec.title}** (was {old})"
        elif not before:
            what = f"set **{spec.title}** to **{new}**"
        else:
            what = f"changed **{spec.title}** from **{old}** to **{new}**"
        self.did(
            command,
            now,
            EventType.FIELD_CHANGED,
            what,
            {"field": spec.name, "type": spec.type.value, "from": before or None, "to": after or None},
        )
        if state.status == IncidentStatus.ONGOING:
            self.broadcast(f"{what} ({command.actor.mention}).")
        self.enqueue(StatsEffect())
        # Steps that depend on the field's value come and go with it (`workflows.incident_conditions`).
        self.conditions_changed(now, command.actor.user_id, f"{spec.title} {new}" if after else f"{spec.title} cleared")
        if not after:
            return f"Field '{spec.name}' cleared."
        return f"Field '{spec.name}' set to {shown_value(spec, after, state.mention)}."

    # ------------------------------------------------------------------ conditional steps

    def conditions_changed(self, now: datetime, actor_id: str, cause: str | None = None) -> None:
        """The severity or a custom field changed (or the incident restarted): gain the playbook
        steps that now apply, skip those that no longer do, bring back those that apply again
        (`workflows.incident_conditions`); one timeline entry when anything changed."""
        state = self.state
        changes = conditions.reconcile(state, now, self._new_id)
        if not changes:
            return

        def relayed(title: str) -> str:
            return f"'{text.relayed(state, title)}'"

        def listed(found: list[tuple[int, ChecklistItem]]) -> str:
            return ", ".join(relayed(item.title) for _, item in found[:10]) + (" …" if len(found) > 10 else "")

        parts = []
        if changes.added:
            parts.append(f"{len(changes.added)} step(s) added ({listed(changes.added)})")
        if changes.back:
            parts.append(f"{len(changes.back)} back ({listed(changes.back)})")
        if changes.skipped:
            parts.append(f"{len(changes.skipped)} skipped ({listed(changes.skipped)})")
        if changes.full:
            titles = ", ".join(relayed(title) for _, title in changes.full[:10])
            parts.append(f"{len(changes.full)} not added, their stage is full ({titles})")

        def entries(found: list[tuple[int, ChecklistItem]]) -> list[dict[str, Any]]:
            return [
                {
                    "stage": index,
                    "item_id": item.id,
                    "spec_key": item.spec_key,
                    "title": item.title,
                    "state": item.state.value,
                    "touched": item.touched,
                    "condition": item.condition.words() if item.condition else None,
                }
                for index, item in found
            ]

        self.record(
            now,
            actor_id,
            EventType.STEPS_CHANGED,
            f"{cause or 'Conditions changed'}: {'; '.join(parts)}",
            {
                "added": entries(changes.added),
                "skipped": entries(changes.skipped),
                "back": entries(changes.back),
                "not_added": [{"stage": index, "title": title} for index, title in changes.full],
                "severity": state.severity.level if state.severity else None,
                "fields": dict(state.field_values),
            },
        )

    # ------------------------------------------------------------------ announcements

    def check_announce(self, command: Announce) -> None:
        self._check_change(command)
        if self.state.channel_id is None:
            raise conflict("The incident channel is still being created; try again in a moment.")
        for channel in command.channels:
            if channel.team_id and channel.team_id != self.state.team_id:
                raise invalid(f"~{channel.name} belongs to another team.")
            if not channel.actor_can_post:
                raise forbidden(f"You cannot post in ~{channel.name}, so you cannot announce the incident there.")

    def announce(self, command: Announce, now: datetime) -> str:
        self.learn(command.actor, now)
        commander = self.state.mention(self.state.commander_id)
        if self.state.is_public:
            where = f"join ~{self.state.channel_name}"
        else:
            # Non-members cannot see a private channel: a link would lead nowhere.
            where = f"the incident channel is private: ask {commander} to add you"
        message = (
            f"#### :rotating_light: Incident: {text.incident_name(self.state.name)}\n"
            f"Commander {commander} · stage {text.stage_label(self.state)} · {where}\n"
            f"Announced by {command.actor.mention}; this channel is told when its status changes and when it ends."
        )
        for channel in command.channels:
            self.enqueue(PostEffect(channel_id=channel.channel_id, message=message))
            if channel.channel_id not in self.state.announced_channel_ids:
                self.state.announced_channel_ids.append(channel.channel_id)
        names = ", ".join(f"~{c.name}" for c in command.channels)
        self.did(
            command,
            now,
            EventType.ANNOUNCED,
            f"announced the incident in {names}",
            {"channel_ids": [c.channel_id for c in command.channels]},
        )
        return f"Announced in {names}."

    # ------------------------------------------------------------------ end and restart

    def check_end(self, command: EndIncident) -> None:
        self._check_member(command, "Only members of the incident channel can end this incident.")
        if self.state.status != IncidentStatus.ONGOING:
            raise conflict(ALREADY_ENDED)
        if not command.confirmed:
            raise confirm(f"End **{self.state.name}**? {text.who_is_told(self.state)}", stage=self.state.active_stage)

    def end(self, command: EndIncident, now: datetime) -> str:
        self.learn(command.actor, now)
        duration = self._duration(now)
        self._end(
            now,
            command.actor,
            EventType.ENDED,
            f"{command.actor.mention} ended the incident after {duration}",
            f"ended by {command.actor.mention} after {duration}.",
            {},
        )
        return f"Incident ended after {duration}."

    def end_by_operator(self, now: datetime, reason: str) -> None:
        """A Temporal operator asked to cancel the incident's workflow (the Web UI's *Request
        Cancellation*). The incident is not lost: it ends like `end`, on record as the
        operator's doing, and stays restartable; one that is not ongoing only records the request.
        """
        because = f" ({reason[:OPERATOR_REASON_MAX]})" if reason else ""
        details = {"reason": reason[:OPERATOR_REASON_MAX]}
        if self.state.status != IncidentStatus.ONGOING:
            self.record(
                now,
                SYSTEM_ACTOR,
                EventType.CANCELLED,
                f"A Temporal operator cancelled the incident's workflow{because}; it had already ended, "
                "so nothing changed",
                {**details, "ended_it": False},
                post=False,
            )
            return
        duration = self._duration(now)
        self._end(
            now,
            SYSTEM_ACTOR,
            EventType.CANCELLED,
            f"A Temporal operator cancelled the incident's workflow{because}: the incident ended after "
            f"{duration}. `/incident restart` reopens it",
            f"ended after {duration}: a Temporal operator cancelled its workflow.",
            {**details, "ended_it": True},
        )

    def _duration(self, now: datetime) -> str:
        return text.format_duration((now - self.state.started_at).total_seconds())

    def _end(
        self, now: datetime, actor: Actor | str, kind: EventType, summary: str, told: str, details: dict[str, Any]
    ) -> None:
        """End the ongoing incident: recorded as `kind` (`summary`, posted in its channel), `told`
        to the informed channels, reminders answered, header and statistics updated."""
        state = self.state
        state.status = IncidentStatus.ENDED
        state.ended_at = now
        state.periods[-1].ended_at = now
        state.reminder_due_at = None
        self.record(
            now, actor, kind, summary, {**details, "duration_seconds": round((now - state.started_at).total_seconds())}
        )
        self.refresh_checklist()
        self.broadcast(told)
        self.cancel_pages(now)
        self._answer_reminders("*The incident has ended.*")
        self._refresh_header()
        self.enqueue(StatsEffect())
        self._open_retrospective(now)

    def check_restart(self, command: RestartIncident) -> None:
        self._check_member(command, "Only members of the incident channel can restart this incident.")
        if self.state.status != IncidentStatus.ENDED:
            raise conflict("This incident is ongoing; only an ended incident can be restarted.")

    def restart(self, command: RestartIncident, now: datetime) -> str:
        self.learn(command.actor, now)
        state = self.state
        state.status = IncidentStatus.ONGOING
        state.ended_at = None
        state.periods.append(Period(started_at=now))
        self._reschedule_reminder(now)
        self.did(command, now, EventType.RESTARTED, "restarted the incident")
        self.broadcast(f"restarted by {command.actor.mention}.")
        self._refresh_header()
        self.enqueue(StatsEffect())
        # The severity or fields may have changed while it was ended.
        self.conditions_changed(now, command.actor.user_id, "Restarted")
        return "Incident restarted."

    # ------------------------------------------------------------------ alerts

    def check_receive_alerts(self, command: ReceiveAlerts) -> None:
        """A notification for the group goes to its ongoing incident; an ended one refuses it,
        and the intake opens the group's next incident (never reopens this one)."""
        if self.state.source is None:
            raise invalid("This incident was not opened by alerts.")
        if self.state.status != IncidentStatus.ONGOING:
            raise conflict(ENDED)

    def receive_alerts(self, command: ReceiveAlerts, now: datetime) -> str:
        """Record each alert that joined the group or changed state (once: a notification sent
        again changes nothing), and tell the channel in one post."""
        source = self.state.source
        assert source is not None  # checked
        if command.update_id in source.applied_updates:
            return "Already recorded: this notification was received before."
        source.applied_updates.append(command.update_id)
        del source.applied_updates[:-APPLIED_UPDATES_KEPT]
        source.notifications += 1
        source.opened_by = source.opened_by or command.update_id
        changed: list[AlertRecord] = []
        unlisted = 0
        for alert in map(compact, command.notification.alerts):
            before = source.status_of(alert.fingerprint)
            if before == alert.status:
                continue
            firing = alert.status == AlertStatus.FIRING
            known = source.alerts.get(alert.fingerprint)
            record = AlertRecord(
                fingerprint=alert.fingerprint,
                status=alert.status,
                title=alert.title,
                labels=alert.labels,
                links=alert.links,
                firing_since=(alert.starts_at or now) if firing else (known.firing_since if known else alert.starts_at),
                resolved_at=None if firing else (alert.ends_at or now),
            )
            if known is not None or len(source.alerts) < ALERTS_KEPT:
                source.alerts[alert.fingerprint] = record
            elif before is not None or len(source.others) < OTHERS_KEPT:
                source.others[digest(alert.fingerprint)] = alert.status
            else:
                source.uncounted += 1
                continue
            changed.append(record)
            if source.alert_events >= ALERT_EVENTS_KEPT:
                unlisted += 1
            else:
                source.alert_events += 1
                self.record(
                    now,
                    self.state.reporter_id,
                    EventType.ALERT_FIRING if firing else EventType.ALERT_RESOLVED,
                    f"Alert {'firing' if firing else 'resolved'}: {record.title}",
                    {"fingerprint": record.fingerprint, "labels": record.labels, "links": record.links[:1]},
                    post=False,
                )
        if unlisted:
            if not source.unlisted:
                self.record(
                    now,
                    self.state.reporter_id,
                    EventType.ALERTS_UNLISTED,
                    f"The timeline lists the group's first {ALERT_EVENTS_KEPT} alert changes; later ones are "
                    "counted (the incident's source shows how many)",
                    post=False,
                )
            source.unlisted += unlisted
        if not changed:
            return "Nothing new: every alert of this notification was already recorded."
        fired = [r for r in changed if r.status == AlertStatus.FIRING]
        resolved = [r for r in changed if r.status == AlertStatus.RESOLVED]
        all_resolved = source.firing == 0
        if fired:
            source.auto_end_at = None
        if all_resolved:
            self.record(
                now,
                self.state.reporter_id,
                EventType.ALERTS_RESOLVED,
                f"Every alert of the group has resolved ({source.resolved})",
                post=False,
            )
            if source.auto_end_after_minutes:
                source.auto_end_at = now + timedelta(minutes=source.auto_end_after_minutes)
        self.post(text.alerts_post(self.state, fired, resolved, all_resolved=all_resolved))
        self.refresh_checklist()
        return f"{len(fired)} alert(s) firing and {len(resolved)} resolved, recorded on incident {self.state.id}."

    def timed_work(self, now: datetime) -> bool:
        """Do one thing that is due by `now` (the automatic end, the status update reminder, an
        escalation, overdue items, the retrospective's reminder, timer rules); whether anything was.
        The workflow's main loop calls it until nothing is (so does the rebuild of its history)."""
        if self.auto_end_is_due(now):
            self.auto_end(now)
            return True
        if self.reminder_is_due(now):
            self.send_reminder(now)
            return True
        if self.escalate_if_due(now):
            return True
        if self.nudge_overdue_items(now):
            return True
        if self.remind_of_retrospective(now):
            return True
        return self.fire_due_rules(now)

    def auto_end_is_due(self, now: datetime) -> bool:
        source = self.state.source
        return (
            self.state.status == IncidentStatus.ONGOING
            and source is not None
            and source.auto_end_at is not None
            and now >= source.auto_end_at
        )

    def auto_end(self, now: datetime) -> None:
        """The route's automatic end: every alert had resolved and nobody acted since."""
        source = self.state.source
        assert source is not None  # auto_end_is_due
        source.auto_end_at = None
        duration = self._duration(now)
        self._end(
            now,
            self.state.reporter_id,
            EventType.AUTO_ENDED,
            f"Every alert had resolved {text.format_duration((source.auto_end_after_minutes or 0) * 60)} ago and "
            f"nobody acted on the incident: it ended automatically after {duration}. `/incident restart` reopens it",
            f"ended automatically after {duration}: every alert of its group resolved.",
            {},
        )

    def cancel_auto_end(self, actor: Actor, now: datetime) -> None:
        """Anyone acting on the incident keeps it open: its automatic end is called off."""
        source = self.state.source
        if source is None or source.auto_end_at is None or self.state.status != IncidentStatus.ONGOING:
            return
        source.auto_end_at = None
        self.post(f"{actor.mention} acted on the incident, so it will not end automatically.")

    # ------------------------------------------------------------------ start-up

    def channel_ready(
        self, now: datetime, channel_id: str, channel_name: str, invited: list[UserFact], response_url: str | None
    ) -> None:
        """The channel exists: bring people in, open with the checklist, tell the world.

        These go before anything queued while the channel was being created, so the channel
        opens with its people and checklist, followed by the changes made meanwhile.
        """
        state = self.state
        queued, state.outbox = state.outbox, []
        state.channel_id = channel_id
        state.channel_name = channel_name
        state.channel_created_at = now
        # A list, not a set: iteration order must be the same on every replay.
        people = list(dict.fromkeys([state.reporter_id, state.commander_id]))
        invitees = [
            UserFact(user_id=user_id, username=state.usernames.get(user_id, user_id), is_channel_member=False)
            for user_id in people
        ] + [u for u in invited if u.user_id not in people]
        self.enqueue(InviteEffect(actor_id=state.reporter_id, users=invitees))
        # The opening post is the live checklist: posted and pinned now, edited on every change.
        self.enqueue(ChecklistEffect())
        self.broadcast(f"started by {state.mention(state.reporter_id)}; commander {state.mention(state.commander_id)}.")
        if response_url:
            self.enqueue(
                RespondEffect(
                    response_url=response_url,
                    text=f"Incident **{text.incident_name(state.name)}** started: ~{channel_name}",
                )
            )
        self.enqueue(StatsEffect())
        # The start's event goes out with the channel it now has.
        for pending in queued:
            if isinstance(pending.effect, WebhookEffect) and pending.effect.event.type == "incident.started":
                pending.effect.event.incident = summarize(state).model_dump(mode="json")
        state.outbox.extend(queued)
        self.run_rules(automation.on_start(state), now)
        if state.playbook is not None and state.playbook.escalation is not None:
            self.start_escalation(state.playbook.escalation, now)

    def start_failed(self, now: datetime, reason: str, response_url: str | None) -> None:
        # No channel, no incident: its start is not announced to webhooks.
        self.state.outbox = [p for p in self.state.outbox if not isinstance(p.effect, WebhookEffect)]
        self.state.status = IncidentStatus.FAILED
        self.state.failure = reason
        self.state.reminder_due_at = None
        if response_url:
            self.enqueue(
                RespondEffect(
                    response_url=response_url,
                    text=f"Could not start incident **{text.incident_name(self.state.name)}**: {reason}",
                )
            )

    def _refresh_header(self) -> None:
        if self.state.channel_id:
            self.enqueue(ChannelHeaderEffect())
