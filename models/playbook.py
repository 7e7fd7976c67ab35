"""Playbooks: how a kind of incident is run.

`PlaybookSpec` is what an editor writes (API body, YAML file); `Playbook` adds what the
system owns (id, team, version, audit fields). Incidents carry a `Playbook` snapshot.
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from models.common import Actor, MattermostId, Model, ReminderSeconds, Trimmed, UserFact
from models.conditions import StepCondition, condition_problems
from models.custom_fields import FIELDS_MAX, FieldSpec
from models.due_dates import ItemDue
from models.paging import EscalationPolicy
from models.playbook_automation import MAX_RULES, RuleSpec, stage_problems
from models.retrospective import RetrospectiveSpec
from models.severity import SEVERITY_LEVELS_MAX

TITLE_MAX = 64
DESCRIPTION_MAX = 4096
STAGE_TITLE_MAX = 128
ITEM_TITLE_MAX = 256
COMMAND_MAX = 1024
MAX_STAGES = 50
MAX_ITEMS_PER_STAGE = 200
MAX_MEMBERS = 500

CHANNEL_TEMPLATE_FIELDS = ("name", "date", "id", "playbook")
_TEMPLATE_LITERAL = re.compile(r"^[a-z0-9_-]*$")


def _slash_command(value: str) -> str:
    if value and (not value.startswith("/") or len(value) < 2 or value[1].isspace()):
        raise ValueError("must be a slash command such as /jira create, or empty")
    return value


# An item's slash command: what `/incident` runs for it, as the person who asks.
SlashCommandText = Annotated[Trimmed, Field(max_length=COMMAND_MAX), AfterValidator(_slash_command)]


class ChecklistItemSpec(Model):
    title: Trimmed = Field(min_length=1, max_length=ITEM_TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    command: SlashCommandText = ""
    # When an incident's item is due (`models.due_dates`): none by default.
    due: ItemDue | None = None
    # When the item applies (`models.conditions`): always by default.
    when: StepCondition | None = None


class StageSpec(Model):
    title: Trimmed = Field(min_length=1, max_length=STAGE_TITLE_MAX)
    items: list[ChecklistItemSpec] = Field(default_factory=list, max_length=MAX_ITEMS_PER_STAGE)
    # When the stage's items apply (`models.conditions`; with each item's own): always by default.
    when: StepCondition | None = None


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


UserIds = Annotated[list[MattermostId], Field(max_length=MAX_MEMBERS)]


class PlaybookSpec(Model):
    """The editable part of a playbook."""

    title: Trimmed = Field(min_length=1, max_length=TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    create_public_incident: bool = False
    checklists: list[StageSpec] = Field(min_length=1, max_length=MAX_STAGES)
    member_ids: UserIds = Field(default_factory=list)
    invited_user_ids: UserIds = Field(default_factory=list)
    default_commander_id: MattermostId | None = None
    broadcast_channel_ids: Annotated[list[MattermostId], Field(max_length=50)] = Field(default_factory=list)
    reminder_timer_default_seconds: ReminderSeconds = 0
    channel_name_template: Trimmed = Field(default="", max_length=64)
    # "When -> then" rules (models/playbook_automation.py), run by every incident of the playbook.
    rules: list[RuleSpec] = Field(default_factory=list, max_length=MAX_RULES)
    # Whom an incident of the playbook pages, tier after tier, until someone acknowledges (models/paging.py).
    escalation: EscalationPolicy | None = None
    # The custom fields its incidents carry (models/custom_fields.py), asked for at the start.
    fields: list[FieldSpec] = Field(default_factory=list, max_length=FIELDS_MAX)
    # The retrospective its incidents open when they end (models/retrospective.py; None: none).
    retrospective: RetrospectiveSpec | None = None
    # The severity level its incidents start with when their starter gives none (models/severity.py).
    default_severity: int | None = Field(
        default=None,
        ge=1,
        le=SEVERITY_LEVELS_MAX,
        description="The team's severity level (1 is the most severe) an incident starts with when its starter "
        "gives none",
    )

    @field_validator("member_ids", "invited_user_ids", "broadcast_channel_ids")
    @classmethod
    def _dedupe(cls, values: list[str]) -> list[str]:
        return _unique(values)

    @field_validator("channel_name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        return validate_channel_template(value)

    @field_validator("fields")
    @classmethod
    def _distinct_field_names(cls, fields: list[FieldSpec]) -> list[FieldSpec]:
        seen: set[str] = set()
        for spec in fields:
            if spec.name in seen:
                raise ValueError(f"field '{spec.name}' is declared twice; give every field its own name")
            seen.add(spec.name)
        return fields

    @field_validator("checklists")
    @classmethod
    def _distinct_stage_titles(cls, stages: list[StageSpec]) -> list[StageSpec]:
        seen: dict[str, int] = {}
        for index, stage in enumerate(stages):
            key = stage.title.casefold()
            if key in seen:
                raise ValueError(
                    f"stage {index + 1} has the same title as stage {seen[key] + 1} "
                    f"({stage.title!r}); give every stage its own title"
                )
            seen[key] = index
        return stages

    @model_validator(mode="after")
    def _conditions_name_fields(self) -> PlaybookSpec:
        """Conditions (`when`) name the playbook's fields and their options; a select field's
        values are written as its options are."""
        problems = condition_problems(self.checklists, self.fields)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("rules")
    @classmethod
    def _rules_name_this_playbook(cls, rules: list[RuleSpec], info: ValidationInfo) -> list[RuleSpec]:
        """Rule names are unique, and the stages and items rules name are this playbook's."""
        checklists: list[StageSpec] | None = info.data.get("checklists")
        if checklists is None:
            return rules  # the stages are invalid themselves: said on their own field
        stages = {s.title.casefold(): [i.title.casefold() for i in s.items] for s in checklists}
        problems = stage_problems(rules, stages)
        if problems:
            raise ValueError("; ".join(problems))
        return rules

    @property
    def stage_count(self) -> int:
        return len(self.checklists)

    @property
    def step_count(self) -> int:
        return sum(len(stage.items) for stage in self.checklists)


def validate_channel_template(value: str) -> str:
    """Placeholders are {name}, {date}, {id} and {playbook}; literal text must be valid in a
    Mattermost channel name (lowercase letters, digits, - and _)."""
    if not value:
        return value
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as error:
        raise ValueError(f"is not a valid template ({error}); use placeholders like {{name}}") from None
    for literal, field, spec, conversion in parts:
        if not _TEMPLATE_LITERAL.match(literal):
            raise ValueError(f"literal text {literal!r} may only use lowercase letters, digits, '-' and '_'")
        if field is not None and (field not in CHANNEL_TEMPLATE_FIELDS or spec or conversion):
            allowed = ", ".join("{" + name + "}" for name in CHANNEL_TEMPLATE_FIELDS)
            raise ValueError(f"unknown placeholder {{{field}}}; use {allowed}")
    return value


class Playbook(PlaybookSpec):
    """A stored playbook at one version."""

    id: str
    team_id: MattermostId
    version: int = Field(ge=1)
    created_at: datetime
    updated_at: datetime
    created_by: MattermostId
    archived: bool = False

    def with_spec(self, spec: PlaybookSpec, **changes: Any) -> Playbook:
        """`spec`'s content under this playbook's identity (id, team, version, times, creator,
        archived), with `changes` to that identity (a new version, its time)."""
        identity = self.model_dump(exclude=set(PlaybookSpec.model_fields))
        return Playbook(**spec.model_dump(), **{**identity, **changes})


class PlaybookEdit(Model):
    """One entry of a playbook's audit log."""

    version: int
    editor_id: str
    at: datetime
    summary: list[str]


class PlaybookSummary(Model):
    """What a list shows, read from visibility without querying each playbook."""

    id: str
    team_id: str
    title: str
    description: str = ""
    version: int
    stage_count: int
    step_count: int
    member_ids: list[str]
    create_public_incident: bool
    updated_at: datetime
    created_by: str
    # The custom fields its incidents carry (the start dialog asks for them).
    fields: list[FieldSpec] = Field(default_factory=list)


def summarize(playbook: Playbook) -> PlaybookSummary:
    """What lists show of a playbook: its fields (and counts) of the same names, the description cut short."""
    summary = PlaybookSummary.model_validate(playbook, from_attributes=True)
    summary.description = summary.description[:280]
    return summary


def describe_changes(before: PlaybookSpec, after: PlaybookSpec) -> list[str]:
    """A short human summary of what an edit changed, for the history."""
    changes: list[str] = []
    if before.title != after.title:
        changes.append(f"title: {before.title!r} -> {after.title!r}")
    if before.description != after.description:
        changes.append("description changed")
    if before.create_public_incident != after.create_public_incident:
        kind = "public" if after.create_public_incident else "private"
        changes.append(f"incident channels are now {kind}")
    if before.checklists != after.checklists:
        changes.append(
            f"checklists: {before.stage_count} stages/{before.step_count} steps -> "
            f"{after.stage_count} stages/{after.step_count} steps"
        )
    for field, label in (
        ("member_ids", "members"),
        ("invited_user_ids", "invited users"),
        ("broadcast_channel_ids", "broadcast channels"),
    ):
        old, new = set(getattr(before, field)), set(getattr(after, field))
        if old != new:
            parts = []
            if new - old:
                parts.append(f"+{len(new - old)}")
            if old - new:
                parts.append(f"-{len(old - new)}")
            changes.append(f"{label} {' '.join(parts)}")
    if before.default_commander_id != after.default_commander_id:
        changes.append("default commander changed")
    if before.reminder_timer_default_seconds != after.reminder_timer_default_seconds:
        changes.append(f"reminder: {before.reminder_timer_default_seconds}s -> {after.reminder_timer_default_seconds}s")
    if before.channel_name_template != after.channel_name_template:
        changes.append(f"channel name template: {after.channel_name_template!r}")
    if before.rules != after.rules:
        changes.append(f"rules: {len(before.rules)} -> {len(after.rules)}")
    if before.escalation != after.escalation:
        tiers = len(after.escalation.tiers) if after.escalation else 0
        changes.append(f"escalation: {tiers} tier(s)" if tiers else "escalation removed")
    if before.default_severity != after.default_severity:
        level = after.default_severity
        changes.append(f"default severity: level {level}" if level else "default severity removed")
    changes += _field_changes(before.fields, after.fields)
    if before.retrospective != after.retrospective:
        if after.retrospective is None:
            changes.append("retrospective removed")
        elif before.retrospective is None:
            changes.append(f"retrospective added (due {after.retrospective.due_after} after the end)")
        else:
            changes.append("retrospective changed")
    return changes or ["no changes"]


def _field_changes(before: list[FieldSpec], after: list[FieldSpec]) -> list[str]:
    """Fields added, removed and changed, by name."""
    old = {spec.name: spec for spec in before}
    new = {spec.name: spec for spec in after}
    changes = [f"field '{name}' added ({new[name].type.value})" for name in new if name not in old]
    changes += [f"field '{name}' removed" for name in old if name not in new]
    changes += [f"field '{name}' changed" for name in new if name in old and old[name] != new[name]]
    if not changes and [s.name for s in before] != [s.name for s in after]:
        changes.append("fields reordered")
    return changes


def playbook_workflow_id(playbook_id: str) -> str:
    return f"playbook-{playbook_id}"


class BroadcastChannelFact(Model):
    """A channel a playbook broadcasts to, as the editor and the bot see it."""

    channel_id: MattermostId
    name: str = ""
    # Exists, the editor can see it, and it belongs to the playbook's team.
    visible_in_team: bool = False
    actor_can_post: bool = False
    # A private channel the bot is not in: it could not post there.
    private_without_bot: bool = False


class PlaybookFacts(Model):
    """What the playbook rules need to know of the people and channels a spec names, and the
    limits of this deployment; gathered by the service (workflows cannot ask Mattermost)."""

    # Everyone the spec names who exists (a missing id is no user).
    users: dict[str, UserFact] = Field(default_factory=dict)
    channels: dict[str, BroadcastChannelFact] = Field(default_factory=dict)
    # The on-call schedules of the playbook's team that the escalation policy names (id -> name).
    schedules: dict[str, str] = Field(default_factory=dict)
    bot_username: str = "incident-bot"
    reminder_min_seconds: int = 60
    # How many severity levels the playbook's team has (0: not known, nothing checked).
    severity_level_count: int = 0


class PlaybookCommand(Model):
    actor: Actor
    # Whether Mattermost lists the actor in the playbook's team (gathered by the API).
    is_team_member: bool


class PlaybookStart(Model):
    """Input of `PlaybookWorkflow`: a new playbook, or the state carried by continue-as-new.

    A new playbook carries its creator and the facts its rules need (`facts`); the workflow
    refuses it when they do not hold (`workflows.playbook_rules`)."""

    playbook: Playbook
    edits: list[PlaybookEdit]
    creator: PlaybookCommand | None = None
    facts: PlaybookFacts | None = None


class OpenPlaybook(Model):
    """Sent with a new playbook's start (update-with-start) to receive the playbook or the refusal."""


class UpdatePlaybook(PlaybookCommand):
    spec: PlaybookSpec
    # Optimistic concurrency: the version the editor started from.
    expected_version: int
    facts: PlaybookFacts | None = None


class ArchivePlaybook(PlaybookCommand):
    pass
