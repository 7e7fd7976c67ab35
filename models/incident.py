"""Incidents: the workflow's state and its timeline, and what starts one.

`IncidentState` is the whole state of an `IncidentWorkflow`; it is carried across
continue-as-new and restart, so nothing is lost between runs. Its pending side effects
are in `models.effects`, what the API shows of it in `models.incident_views`, and how its
channel is named in `models.channel_names`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from models.common import Actor, MattermostId, Model, Trimmed, UserFact
from models.conditions import StepCondition
from models.custom_fields import FIELDS_MAX, FieldInputs
from models.due_dates import ItemDue
from models.effects import PendingEffect
from models.incident_alerts import AlertSource
from models.paging import Escalation, Page, PagingTally
from models.playbook import Playbook
from models.retrospective import Retrospective
from models.severity import Severity, SeverityLevel, SeverityText

NAME_MAX = 64
DESCRIPTION_MAX = 1024
STATUS_MESSAGE_MAX = 4000
NOTE_MAX = 4000
BLANK_STAGE_TITLE = "Checklist"


def incident_workflow_id(incident_id: str) -> str:
    return f"incident-{incident_id}"


class IncidentStatus(StrEnum):
    ONGOING = "ongoing"
    ENDED = "ended"
    # The channel could not be created: there is no incident, only the record of why.
    FAILED = "failed"
    # The incident's rules refused the start (e.g. the commander is a bot): nothing was made.
    REFUSED = "refused"


class ItemState(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    # Its playbook condition (`when`) no longer holds: neither open nor done (`models.conditions`).
    SKIPPED = "skipped"


class UpdateStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class EventType(StrEnum):
    CREATED = "created"
    STAGE_CHANGED = "stage_changed"
    ITEM_STATE_CHANGED = "item_state_changed"
    ITEM_ASSIGNED = "item_assigned"
    ITEM_ADDED = "item_added"
    ITEM_RENAMED = "item_renamed"
    ITEM_MOVED = "item_moved"
    ITEM_REMOVED = "item_removed"
    COMMAND_RUN = "command_run"
    COMMANDER_CHANGED = "commander_changed"
    MEMBER_INVITED = "member_invited"
    INVITE_FAILED = "invite_failed"
    STATUS_UPDATE = "status_update"
    REMINDER_CHANGED = "reminder_changed"
    REMINDER_SENT = "reminder_sent"
    ANNOUNCED = "announced"
    ENDED = "ended"
    # A Temporal operator cancelled the incident's workflow: it ended (or, already ended, nothing changed).
    CANCELLED = "cancelled"
    RESTARTED = "restarted"
    NOTE_ADDED = "note_added"
    # A side effect Mattermost refused, or did not accept within the give-up time: the first
    # of a channel's failures (later ones are counted in `IncidentState.failing_lanes`).
    EFFECT_FAILED = "effect_failed"
    # A channel whose effects were failing took one again; says how many failed meanwhile.
    EFFECT_RECOVERED = "effect_recovered"
    # The bot lost, or got back, the right to post in the incident channel.
    CHANNEL_ACCESS_LOST = "channel_access_lost"
    CHANNEL_ACCESS_BACK = "channel_access_back"
    # An alert of the incident's group fired (joined), or resolved; every alert of the group resolved.
    ALERT_FIRING = "alert_firing"
    ALERT_RESOLVED = "alert_resolved"
    ALERTS_RESOLVED = "alerts_resolved"
    # Alert changes past the timeline's share for single alerts, counted in one entry.
    ALERTS_UNLISTED = "alerts_unlisted"
    # The route's automatic end, once every alert had resolved and nobody acted meanwhile.
    AUTO_ENDED = "auto_ended"
    # A webhook subscription refused one of the incident's events, or did not take it in time.
    WEBHOOK_FAILED = "webhook_failed"
    # One of the playbook's rules fired (`workflows.incident_automation`): what it did, naming it.
    RULE_FIRED = "rule_fired"
    # Paging (`workflows.incident_paging`): a page sent (by hand, or by the escalation policy),
    # acknowledged, declined, or undeliverable; a tier not acknowledged in time; nobody acknowledged.
    PAGED = "paged"
    PAGE_ACKNOWLEDGED = "page_acknowledged"
    PAGE_DECLINED = "page_declined"
    PAGE_UNREACHABLE = "page_unreachable"
    ESCALATED = "escalated"
    ESCALATION_EXHAUSTED = "escalation_exhausted"
    # An item's due time was set, changed or cleared; an open item's due time passed (its person told).
    ITEM_DUE_CHANGED = "item_due_changed"
    ITEM_OVERDUE = "item_overdue"
    # The incident's severity was set or changed (`models.severity`).
    SEVERITY_CHANGED = "severity_changed"
    # A custom field's value was set, changed or cleared (`models.custom_fields`).
    FIELD_CHANGED = "field_changed"
    # Conditional steps (`workflows.incident_conditions`): steps gained, skipped or back after
    # a change of severity or a field, in one entry per change.
    STEPS_CHANGED = "steps_changed"
    # A note's author changed its text, or deleted it (the note's own event keeps its place and id).
    NOTE_EDITED = "note_edited"
    NOTE_DELETED = "note_deleted"
    # An event of the timeline was starred as a key moment, or no longer is (`IncidentState.key_moments`).
    KEY_MOMENT_STARRED = "key_moment_starred"
    KEY_MOMENT_UNSTARRED = "key_moment_unstarred"
    # The retrospective (`models.retrospective`): opened at the end, its commander reminded,
    # published (its summary posted) or declined.
    RETROSPECTIVE_OPENED = "retrospective_opened"
    RETROSPECTIVE_REMINDED = "retrospective_reminded"
    RETROSPECTIVE_PUBLISHED = "retrospective_published"
    RETROSPECTIVE_DECLINED = "retrospective_declined"


# What happens to the checklist's items: their state, owner, title, place, presence.
ITEM_EVENTS = frozenset(
    {
        EventType.ITEM_STATE_CHANGED,
        EventType.ITEM_ASSIGNED,
        EventType.ITEM_ADDED,
        EventType.ITEM_RENAMED,
        EventType.ITEM_MOVED,
        EventType.ITEM_REMOVED,
        EventType.ITEM_DUE_CHANGED,
        EventType.ITEM_OVERDUE,
        EventType.STEPS_CHANGED,
    }
)


class ChecklistItem(Model):
    id: str
    title: str
    description: str = ""
    command: str = ""
    state: ItemState = ItemState.OPEN
    state_changed_at: datetime | None = None
    # Who last changed the state (checked it, or opened it again).
    state_changed_by: str | None = None
    assignee_id: str | None = None
    command_last_run: datetime | None = None
    # When the item is due (`models.due_dates`; None: it is not). The playbook's `due` waits in
    # `due_rule` until its anchor happens (the start, its stage's first entry), then sets `due_at`.
    due_at: datetime | None = None
    due_rule: ItemDue | None = None
    # The due time the item was found overdue at, its person told: once per item and due time.
    overdue_for: datetime | None = None
    # Found overdue for its due time and still open: what the checklist post, `/incident info`,
    # the REST record and the backstage flag (`workflows.incident_due_dates.mark_overdue`).
    overdue: bool = False
    # Which playbook step it is, "<stage index>/<item index>" in the playbook snapshot (None: added
    # by hand or by a rule), and the condition it applies under (its stage's and its own, combined).
    spec_key: str | None = None
    condition: StepCondition | None = None
    # Skipped because its condition stopped holding: why, and the state it had (it returns to it).
    skipped_reason: str | None = None
    state_before_skip: ItemState | None = None
    # A person changed it by hand (state, assignee, due time, title): never skipped silently
    # away from them, only marked skipped with everything kept.
    touched: bool = False


class Stage(Model):
    title: str
    items: list[ChecklistItem] = Field(default_factory=list)

    @property
    def open_count(self) -> int:
        return sum(1 for item in self.items if item.state not in (ItemState.DONE, ItemState.SKIPPED))

    @property
    def all_skipped(self) -> bool:
        """Every item of the stage is skipped (its conditions do not hold): shown as skipped."""
        return bool(self.items) and all(item.state == ItemState.SKIPPED for item in self.items)


class TimelineEvent(Model):
    # The event's handle (`e12`): a note is edited and deleted by it, any event starred by it.
    # Numbered in the order events were recorded (`IncidentState.events_numbered`); events
    # recorded before ids existed are numbered when their state is loaded.
    id: str = ""
    # When it happened: the timeline is kept in this order (a back-dated note is placed at its time).
    at: datetime
    actor_id: str
    type: EventType
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)


class StatusUpdate(Model):
    at: datetime
    author_id: str
    message: str
    status: UpdateStatus | None = None


class Period(Model):
    """One stretch of time the incident was ongoing; a restart opens a new one."""

    started_at: datetime
    ended_at: datetime | None = None


class RecentRequest(Model):
    """A request the incident applied, kept so a resent request returns its first answer."""

    id: str
    fingerprint: str = ""
    message: str


# How many applied request keys an incident remembers (across runs and restarts).
RECENT_REQUESTS_MAX = 500
# How many playbook rule firings an incident remembers (`IncidentState.rule_firings`).
RULE_FIRINGS_KEPT = 500


class ChannelAccessLost(Model):
    """The bot can no longer post in the incident channel (removed from the private channel).

    The incident channel's effects wait (nothing is lost) and are tried again on every new
    one and every `channel_access_recheck_seconds`; members are told how to bring the bot
    back with each reply, and the channel gets everything in order once it is back.
    """

    since: datetime
    bot_username: str
    # Effects queued after this one make the waiting lane try again at once.
    waiting_after_seq: int
    retry_at: datetime
    # Tries so far: the wait between them doubles, up to an hour.
    attempts: int = 1


class FailingLane(Model):
    """A channel's lane (`models.effects.is_channel_lane`) whose effects Mattermost refuses, or
    does not accept within the give-up time.

    Its first failure is on the timeline (and told in the incident channel when it is another
    channel); later ones are only counted here, until one of its effects is carried out again.
    """

    since: datetime
    # Effects of the lane that could not be carried out since, the first included.
    failed: int = 1


class IncidentConfig(Model):
    """Operational knobs the starter passes in (workflows cannot read the environment)."""

    reminder_min_seconds: int = 60
    activity_timeout_seconds: float = 60.0
    # An attempt that has not heartbeaten for this long (its worker died) is retried.
    activity_heartbeat_seconds: float = 5.0
    activity_max_retry_interval_seconds: float = 5.0
    # A side effect Mattermost has not accepted after this long is reported and skipped.
    effect_give_up_seconds: float = 900.0
    # While the bot cannot post in the incident channel, how often it tries again.
    channel_access_recheck_seconds: float = 60.0
    # Where the channel header's "Timeline" link points (the Temporal Web UI page).
    details_url: str = ""
    # The incident's backstage page (PUBLIC_URL/backstage/incidents/<id>), also linked from the header.
    backstage_url: str = ""
    # How long an edit of the live checklist post waits for more changes to join it.
    checklist_edit_delay_seconds: float = Field(default=0.5, ge=0, le=10)
    # How long a webhook event waits for the next moment's events to join its handover (a
    # burst of commands is one activity, and no workflow task each).
    webhook_gather_seconds: float = Field(default=1.0, ge=0, le=10)
    # How long an ended incident's run stays open for a restart (0: it closes when it ends).
    reopen_window_seconds: float = Field(default=0.0, ge=0)


class IncidentState(Model):
    id: str
    name: str
    description: str = ""
    team_id: MattermostId
    team_name: str = ""
    playbook: Playbook | None = None
    is_public: bool
    status: IncidentStatus = IncidentStatus.ONGOING
    commander_id: MattermostId
    reporter_id: MattermostId
    member_ids: list[str] = Field(default_factory=list)
    # When the incident itself brought each member into its channel (newer than a cached
    # "not a member" fact, it wins; see `permissions.is_incident_member`).
    members_joined_at: dict[str, datetime] = Field(default_factory=dict)
    usernames: dict[str, str] = Field(default_factory=dict)
    channel_id: str | None = None
    channel_name: str | None = None
    # When the incident channel was made (None until then, and for incidents older than this field).
    channel_created_at: datetime | None = None
    started_at: datetime
    ended_at: datetime | None = None
    periods: list[Period]
    first_status_update_at: datetime | None = None
    active_stage: int = 0
    checklists: list[Stage]
    status_updates: list[StatusUpdate] = Field(default_factory=list)
    reminder_seconds: int = 0
    reminder_due_at: datetime | None = None
    broadcast_channel_ids: list[str] = Field(default_factory=list)
    # Channels `/incident announce` named: kept informed like the broadcast channels.
    announced_channel_ids: list[str] = Field(default_factory=list)
    timeline: list[TimelineEvent] = Field(default_factory=list)
    # About how many bytes the timeline takes (see `incident_rules.TIMELINE_MAX_BYTES`); 0: not counted yet.
    timeline_bytes: int = 0
    post_ids: dict[str, str] = Field(default_factory=dict)
    # The dedupe key each remembered post was made with (kept when it is edited in place).
    post_keys: dict[str, str] = Field(default_factory=dict)
    # Names of channels posted to, learned from Mattermost, to name them in failure notices.
    channel_names: dict[str, str] = Field(default_factory=dict)
    channel_access_lost: ChannelAccessLost | None = None
    # Channel lanes failing right now, by lane: a channel the bot cannot reach is one timeline
    # entry when it starts failing and one when it works again, not one per change.
    failing_lanes: dict[str, FailingLane] = Field(default_factory=dict)
    outbox: list[PendingEffect] = Field(default_factory=list)
    next_seq: int = 1
    failure: str | None = None
    config: IncidentConfig = Field(default_factory=IncidentConfig)
    recent_requests: list[RecentRequest] = Field(default_factory=list)
    # Fingerprint of the request that started the incident (see `RequestKey`).
    start_fingerprint: str = ""
    # The integration and alert group that opened the incident (None: a person started it).
    source: AlertSource | None = None
    # How many webhook events the incident emitted (the last one's `number`).
    webhook_events: int = 0
    # Whether this incident emits webhook events (set by its workflow: not by runs recorded before them).
    emits_webhooks: bool = False
    # How many of its events the incident handed to each webhook subscription (their `seq` so far).
    webhook_handed: dict[str, int] = Field(default_factory=dict)
    # Subscriptions whose failure the incident channel was told of (once each).
    webhook_failures_told: list[str] = Field(default_factory=list)
    # The playbook rules' firings, "<rule>@<condition instance>" (the last RULE_FIRINGS_KEPT):
    # a condition instance fires a rule once (`workflows.incident_automation`).
    rule_firings: list[str] = Field(default_factory=list)
    # How many times a stage was entered since the start (the first stage at the start is 0),
    # and when the active stage was (None: before this field; the start then).
    stage_entries: int = 0
    stage_entered_at: datetime | None = None
    # How many status updates were posted (`status_updates` keeps only the newest).
    status_updates_posted: int = 0
    # Pages sent (the newest `models.paging.PAGES_KEPT`), and where the playbook's escalation is.
    pages: list[Page] = Field(default_factory=list)
    escalation: Escalation | None = None
    # The pages' figures the statistics report, exact beyond the pages kept (a state from before
    # this was kept tallies the pages it has: `_tally_old_pages`).
    paging_tally: PagingTally = Field(default_factory=PagingTally)
    # The team's severity level and its name when set (None: none was given; `models.severity`).
    severity: Severity | None = None
    # The custom fields' values by name, as canonical text (`models.custom_fields`); unset ones absent.
    field_values: dict[str, str] = Field(default_factory=dict)
    # Playbook steps (`ChecklistItem.spec_key`) a person removed by hand: conditions never bring them back.
    steps_removed: list[str] = Field(default_factory=list)
    # How many timeline events were given an id (`TimelineEvent.id`: the next is `e<n + 1>`).
    events_numbered: int = 0
    # The ids of the timeline events starred as key moments, in the order they were starred.
    key_moments: list[str] = Field(default_factory=list)
    # Opened when the incident ends if its playbook has one (`models.retrospective`); kept across restarts.
    retrospective: Retrospective | None = None

    @model_validator(mode="after")
    def _tally_old_pages(self) -> IncidentState:
        if "paging_tally" not in self.model_fields_set and self.pages:
            self.paging_tally = PagingTally.of(self.pages)
        return self

    @model_validator(mode="after")
    def _number_old_events(self) -> IncidentState:
        """Events recorded before events had ids get the next numbers, in timeline order."""
        for event in self.timeline:
            if not event.id:
                self.events_numbered += 1
                event.id = f"e{self.events_numbered}"
        return self

    def next_event_id(self) -> str:
        self.events_numbered += 1
        return f"e{self.events_numbered}"

    def event(self, event_id: str) -> TimelineEvent | None:
        return next((e for e in self.timeline if e.id == event_id), None)

    def mention(self, user_id: str | None) -> str:
        if user_id is None:
            return "nobody"
        if self.source is not None and user_id == self.reporter_id:
            return self.source.reporter_name
        name = self.usernames.get(user_id)
        return f"@{name}" if name else user_id

    def channel_mention(self, channel_id: str) -> str:
        """`~name` of a channel posted to, or its id until Mattermost has told its name."""
        return f"~{self.channel_names.get(channel_id, channel_id)}"

    @property
    def playbook_id(self) -> str | None:
        return self.playbook.id if self.playbook else None

    @property
    def reopenable_until(self) -> datetime | None:
        """Until when a restart reopens this ended incident's own run, which stays open (and
        *Running* in the Temporal Web UI) until then; None: not ended, or no reopen window."""
        window = self.config.reopen_window_seconds
        if self.status != IncidentStatus.ENDED or self.ended_at is None or window <= 0:
            return None
        return self.ended_at + timedelta(seconds=window)


class IncidentFields(Model):
    """What a person gives to start an incident (REST body, dialog): one declaration of the limits."""

    name: Trimmed = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class IncidentCreate(IncidentFields):
    """A start as asked for (REST body, dialog, slash command, backstage form), before its facts are gathered."""

    team_id: MattermostId
    playbook_id: str | None = Field(default=None, max_length=64)
    commander_id: MattermostId | None = None
    severity: SeverityText | None = Field(
        default=None,
        description="A severity level of the team: its number (1 is the most severe), `sev<n>` or its name; "
        "without one, the playbook's `default_severity`",
    )
    fields: FieldInputs = Field(
        default_factory=dict,
        description="The playbook's custom fields by name: a select's option, a number, text, or a person "
        "(`@username`); every required field of the playbook needs one",
    )


class IncidentStart(IncidentFields):
    """Input of `IncidentWorkflow`: a new incident, or the state of one to continue."""

    id: str
    team_id: MattermostId
    team_name: str = ""
    reporter: Actor
    # The starter's Mattermost permissions in the team that the start rules look at.
    reporter_permissions: list[str] = Field(default_factory=list)
    commander: UserFact | None = None
    playbook: Playbook | None = None
    # Facts about the playbook's invited users and default commander, gathered by the API.
    invited: list[UserFact] = Field(default_factory=list)
    # The people the playbook's rules may invite (their names, for what the incident writes).
    rule_users: list[UserFact] = Field(default_factory=list)
    response_url: str | None = None
    config: IncidentConfig = Field(default_factory=IncidentConfig)
    # When the starter asked (so lists and search attributes agree from the first moment).
    requested_at: datetime | None = None
    # Fingerprint of the start request (see `RequestKey`): a reused key with another body is refused.
    fingerprint: str = ""
    # Set when an integration opens the incident for an alert group (the reporter is then its bot).
    source: AlertSource | None = None
    # The severity asked for (what the person typed; the level the alert route or label named),
    # and the team's levels it is read against (facts the service reads when a severity may be set:
    # asked for, or the playbook's default).
    severity: str | None = Field(default=None, max_length=64)
    severity_levels: list[SeverityLevel] = Field(default_factory=list, max_length=10)
    # The custom fields' values as given (read against the playbook's fields by the start rules),
    # and the people the user fields name (facts the service looks up).
    fields: FieldInputs = Field(default_factory=dict)
    field_users: list[UserFact] = Field(default_factory=list, max_length=FIELDS_MAX)
    # Set when continuing (continue-as-new, or a restart after the incident ended).
    resume: IncidentState | None = None

    @classmethod
    def resuming(cls, state: IncidentState, reporter: Actor) -> IncidentStart:
        """The input of a new run that carries `state` on (continue-as-new or restart)."""
        return cls(
            id=state.id, team_id=state.team_id, name=state.name, reporter=reporter, config=state.config, resume=state
        )
