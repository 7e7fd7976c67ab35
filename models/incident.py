"""Incidents: the workflow's state, its timeline, and the record the API renders.

`IncidentState` is the whole state of an `IncidentWorkflow`; it is carried across
continue-as-new and restart, so nothing is lost between runs. `IncidentRecord` is the
read model (state plus elapsed times at a given moment).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from models.common import Actor, MattermostId, Model, Trimmed, UserFact
from models.playbook import Playbook
from models.stats import FactsStatus, IncidentFacts

NAME_MAX = 64
DESCRIPTION_MAX = 1024
STATUS_MESSAGE_MAX = 4000
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
    RESTARTED = "restarted"
    # A side effect Mattermost refused, or did not accept within the give-up time.
    EFFECT_FAILED = "effect_failed"
    # The bot lost, or got back, the right to post in the incident channel.
    CHANNEL_ACCESS_LOST = "channel_access_lost"
    CHANNEL_ACCESS_BACK = "channel_access_back"


class ChecklistItem(Model):
    id: str
    title: str
    description: str = ""
    command: str = ""
    state: ItemState = ItemState.OPEN
    state_changed_at: datetime | None = None
    assignee_id: str | None = None
    command_last_run: datetime | None = None


class Stage(Model):
    title: str
    items: list[ChecklistItem] = Field(default_factory=list)

    @property
    def open_count(self) -> int:
        return sum(1 for item in self.items if item.state != ItemState.DONE)


class TimelineEvent(Model):
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


# Side effects waiting to be carried out by the workflow's main loop, in order within
# their lane (see `lane_of`). Kept in state so they survive continue-as-new; `seq` makes
# each one idempotent.


class Button(Model):
    """A button under a bot post; clicks come back to the API's action endpoint, signed."""

    id: str
    name: str
    action: Literal["post_update", "snooze"]
    seconds: int = 0


class PostEffect(Model):
    kind: Literal["post"] = "post"
    channel_id: str | None = None  # None: the incident channel
    message: str
    buttons: list[Button] = Field(default_factory=list)
    pin: bool = False
    # Remember the resulting post id under this name (e.g. the opening post).
    remember_as: str | None = None


class InviteEffect(Model):
    kind: Literal["invite"] = "invite"
    actor_id: str
    users: list[UserFact]


class ChannelHeaderEffect(Model):
    """Bring the channel header up to date (rendered from the state when carried out)."""

    kind: Literal["channel_header"] = "channel_header"


class RespondEffect(Model):
    """A late reply to the slash command that started it all (via its response_url)."""

    kind: Literal["respond"] = "respond"
    response_url: str
    text: str


class StatsEffect(Model):
    """Report the incident's latest facts to its team's statistics workflow."""

    kind: Literal["stats"] = "stats"


Effect = Annotated[
    PostEffect | InviteEffect | ChannelHeaderEffect | RespondEffect | StatsEffect,
    Field(discriminator="kind"),
]


class PendingEffect(Model):
    seq: int
    effect: Effect


INCIDENT_CHANNEL_LANE = "incident-channel"


def lane_of(effect: Effect, incident_channel_id: str | None) -> str:
    """The lane an effect waits in: effects in one lane happen in order, lanes are independent.

    The incident channel's invites and posts share a lane (the channel opens with its people,
    then its posts in order); each other channel has its own, as do the header, statistics and
    command replies. So one channel that refuses or fails holds back nothing but itself.
    """
    if isinstance(effect, PostEffect):
        if effect.channel_id is None or effect.channel_id == incident_channel_id:
            return INCIDENT_CHANNEL_LANE
        return f"channel:{effect.channel_id}"
    if isinstance(effect, InviteEffect):
        return INCIDENT_CHANNEL_LANE
    return effect.kind


class RecentRequest(Model):
    """A request the incident applied, kept so a resent request returns its first answer."""

    id: str
    fingerprint: str = ""
    message: str


# How many applied request keys an incident remembers (across runs and restarts).
RECENT_REQUESTS_MAX = 500


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


class IncidentConfig(Model):
    """Operational knobs the starter passes in (workflows cannot read the environment)."""

    reminder_min_seconds: int = 60
    activity_timeout_seconds: float = 60.0
    activity_max_retry_interval_seconds: float = 5.0
    # A side effect Mattermost has not accepted after this long is reported and skipped.
    effect_give_up_seconds: float = 900.0
    # While the bot cannot post in the incident channel, how often it tries again.
    channel_access_recheck_seconds: float = 60.0
    # Where the channel header's "Timeline" link points (the Temporal Web UI page).
    details_url: str = ""
    # The incident's backstage page (PUBLIC_URL/backstage/incidents/<id>), also linked from the header.
    backstage_url: str = ""


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
    timeline: list[TimelineEvent] = Field(default_factory=list)
    post_ids: dict[str, str] = Field(default_factory=dict)
    # Names of channels posted to, learned from Mattermost, to name them in failure notices.
    channel_names: dict[str, str] = Field(default_factory=dict)
    channel_access_lost: ChannelAccessLost | None = None
    outbox: list[PendingEffect] = Field(default_factory=list)
    next_seq: int = 1
    failure: str | None = None
    config: IncidentConfig = Field(default_factory=IncidentConfig)
    recent_requests: list[RecentRequest] = Field(default_factory=list)
    # Fingerprint of the request that started the incident (see `RequestKey`).
    start_fingerprint: str = ""

    def mention(self, user_id: str | None) -> str:
        if user_id is None:
            return "nobody"
        name = self.usernames.get(user_id)
        return f"@{name}" if name else user_id

    @property
    def playbook_id(self) -> str | None:
        return self.playbook.id if self.playbook else None


class IncidentFields(Model):
    """What a person gives to start an incident (REST body, dialog): one declaration of the limits."""

    name: Trimmed = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


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
    response_url: str | None = None
    config: IncidentConfig = Field(default_factory=IncidentConfig)
    # When the starter asked (so lists and search attributes agree from the first moment).
    requested_at: datetime | None = None
    # Fingerprint of the start request (see `RequestKey`): a reused key with another body is refused.
    fingerprint: str = ""
    # Set when continuing (continue-as-new, or a restart after the incident ended).
    resume: IncidentState | None = None

    @classmethod
    def resuming(cls, state: IncidentState, reporter: Actor) -> IncidentStart:
        """The input of a new run that carries `state` on (continue-as-new or restart)."""
        return cls(
            id=state.id, team_id=state.team_id, name=state.name, reporter=reporter, config=state.config, resume=state
        )


# --------------------------------------------------------------------------- read model


class IncidentView(Model):
    """The incident as a command's answer shows it: everything but the timeline."""

    id: str
    name: str
    description: str
    team_id: str
    channel_id: str | None
    channel_name: str | None
    playbook_id: str | None
    playbook_version: int | None
    status: IncidentStatus
    is_public: bool
    commander_id: str
    reporter_id: str
    member_ids: list[str]
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int
    time_to_resolution_seconds: int | None
    active_stage: int
    active_stage_title: str
    checklists: list[Stage]
    status_updates: list[StatusUpdate]
    reminder_seconds: int
    next_reminder_at: datetime | None
    failure: str | None = None


class IncidentRecord(IncidentView):
    """The full incident as the API shows it."""

    timeline: list[TimelineEvent]


class IncidentSummary(Model):
    """What lists show, kept in the workflow's memo so a listing needs no queries."""

    id: str
    name: str
    team_id: str
    channel_id: str | None
    channel_name: str | None
    playbook_id: str | None
    status: IncidentStatus
    is_public: bool
    commander_id: str
    reporter_id: str
    started_at: datetime
    ended_at: datetime | None
    time_to_resolution_seconds: int | None
    first_status_update_at: datetime | None = None
    active_stage: int
    active_stage_title: str
    member_count: int = 0

    def elapsed_seconds(self, now: datetime) -> int:
        """The incident's duration: until its end, or until `now` while it is ongoing."""
        end = self.ended_at if self.status == IncidentStatus.ENDED and self.ended_at else now
        return max(0, round((end - self.started_at).total_seconds()))


def summarize(state: IncidentState) -> IncidentSummary:
    record = to_view(state, state.started_at)
    return IncidentSummary(
        id=state.id,
        name=state.name,
        team_id=state.team_id,
        channel_id=state.channel_id,
        channel_name=state.channel_name,
        playbook_id=state.playbook_id,
        status=state.status,
        is_public=state.is_public,
        commander_id=state.commander_id,
        reporter_id=state.reporter_id,
        started_at=state.started_at,
        ended_at=record.ended_at,
        time_to_resolution_seconds=record.time_to_resolution_seconds,
        first_status_update_at=state.first_status_update_at,
        active_stage=state.active_stage,
        active_stage_title=record.active_stage_title,
        member_count=len(state.member_ids),
    )


def ongoing_seconds(periods: list[Period], now: datetime) -> float:
    """Total time the incident has been ongoing, across restarts."""
    return sum(((p.ended_at or now) - p.started_at).total_seconds() for p in periods)


def time_to_resolution(state: IncidentState) -> int | None:
    """Seconds the incident was ongoing until it was (last) ended; None while ongoing.

    A restarted incident counts only the time it was ongoing: the gap between an end and
    the restart is not resolution time (see README, "Time to resolution").
    """
    if state.status != IncidentStatus.ENDED:
        return None
    return round(ongoing_seconds(state.periods, state.ended_at or state.started_at))


def to_record(state: IncidentState, now: datetime) -> IncidentRecord:
    return IncidentRecord(**dict(to_view(state, now)), timeline=state.timeline)


def to_view(state: IncidentState, now: datetime) -> IncidentView:
    end = state.ended_at if state.status != IncidentStatus.ONGOING and state.ended_at else now
    stage_title = state.checklists[state.active_stage].title if state.active_stage < len(state.checklists) else ""
    return IncidentView(
        id=state.id,
        name=state.name,
        description=state.description,
        team_id=state.team_id,
        channel_id=state.channel_id,
        channel_name=state.channel_name,
        playbook_id=state.playbook_id,
        playbook_version=state.playbook.version if state.playbook else None,
        status=state.status,
        is_public=state.is_public,
        commander_id=state.commander_id,
        reporter_id=state.reporter_id,
        member_ids=state.member_ids,
        started_at=state.started_at,
        ended_at=state.ended_at if state.status == IncidentStatus.ENDED else None,
        duration_seconds=max(0, round((end - state.started_at).total_seconds())),
        time_to_resolution_seconds=time_to_resolution(state),
        active_stage=state.active_stage,
        active_stage_title=stage_title,
        checklists=state.checklists,
        status_updates=state.status_updates,
        reminder_seconds=state.reminder_seconds,
        next_reminder_at=state.reminder_due_at if state.status == IncidentStatus.ONGOING else None,
        failure=state.failure,
    )


# --------------------------------------------------------------------------- channel names

CHANNEL_NAME_MAX = 64
_CHANNEL_NAME = re.compile(r"^[a-z0-9]+([a-z\-\_0-9]+|(__)?)[a-z0-9]*$")


def slugify(text: str) -> str:
    """Lowercase ASCII letters and digits joined by '-'; other scripts drop out."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def channel_name_for(*, incident_id: str, name: str, template: str, date: str, playbook_title: str) -> str:
    """A valid, unique Mattermost channel name, derived deterministically.

    The incident id is always part of the name, so the name is unique per incident and a
    retried channel creation finds the channel it made before.
    """
    slug = slugify(name) or "incident"
    if template:
        rendered = template.format(name=slug, date=date, id=incident_id, playbook=slugify(playbook_title))
        if "{id}" not in template:
            rendered = f"{rendered}-{incident_id}"
    else:
        rendered = f"inc-{slug}-{incident_id}"
    rendered = re.sub(r"[^a-z0-9_-]+", "-", rendered.lower())
    rendered = re.sub(r"-{2,}", "-", rendered).strip("-_")
    if len(rendered) > CHANNEL_NAME_MAX:
        # Keep the unique id: cut the descriptive part.
        keep = CHANNEL_NAME_MAX - len(incident_id) - 1
        head = rendered.replace(incident_id, "").strip("-_")[:keep].strip("-_")
        rendered = f"{head}-{incident_id}" if head else incident_id
    if not _CHANNEL_NAME.match(rendered):
        rendered = f"inc-{incident_id}"
    return rendered


def facts(state: IncidentState) -> IncidentFacts:
    """What the incident reports to its team's statistics."""
    ended = state.status == IncidentStatus.ENDED
    return IncidentFacts(
        incident_id=state.id,
        team_id=state.team_id,
        playbook_id=state.playbook_id,
        status=FactsStatus.ENDED if ended else FactsStatus.ONGOING,
        started_at=state.started_at,
        ended_at=state.ended_at if ended else None,
        time_to_resolution_seconds=time_to_resolution(state),
        first_status_update_at=state.first_status_update_at,
        participant_ids=list(state.member_ids),
        is_public=state.is_public,
    )
