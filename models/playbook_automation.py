"""A playbook's rules, "when -> then": what an editor declares (API body, YAML, backstage).

`RuleSpec` says when a rule fires (`RuleWhen`: exactly one condition, perhaps held for a
while) and what it then does (`RuleAction`, up to ten). Limits and the shape are checked
here; what needs the rest of the playbook (its stages and items) by `PlaybookSpec`, what
needs Mattermost (the people and channels named) by `workflows.playbook_rules`. The
incident evaluates rules in `workflows.incident_automation`. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from models.common import MattermostId, Model, Trimmed
from models.webhooks import custom_event_type

RULE_NAME_MAX = 64
MAX_RULES = 50
MAX_ACTIONS = 10
RULE_MESSAGE_MAX = 4000
RULE_ITEMS_MAX = 20
RULE_PEOPLE_MAX = 50
RULE_PAGED_MAX = 10
# How long a rule may wait: at least a second (tests use short timers), at most 30 days.
DURATION_MIN_SECONDS = 1
DURATION_MAX_SECONDS = 30 * 86400
# The status values of a status update (`models.incident.UpdateStatus`, which imports this module).
StatusValue = Literal["investigating", "identified", "monitoring", "resolved"]

_DURATION = re.compile(r"^(?:\d{1,7}[smhd])+\Z")
_PART = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """`"1h30m"` -> 5400 (the text is a valid `Duration`)."""
    return sum(int(number) * _UNIT[unit] for number, unit in _PART.findall(text))


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError("must be a duration such as 30s, 5m, 2h, 1d or 1h30m")
    seconds = duration_seconds(value)
    if not DURATION_MIN_SECONDS <= seconds <= DURATION_MAX_SECONDS:
        raise ValueError("must be at least 1s and at most 30d")
    return value


# A duration as people write it: whole numbers with s, m, h or d ("30s", "5m", "1h30m").
Duration = Annotated[Trimmed, AfterValidator(_duration)]
StageTitle = Annotated[Trimmed, Field(min_length=1, max_length=128)]
ItemTitle = Annotated[Trimmed, Field(min_length=1, max_length=256)]
EventTypeName = Annotated[Trimmed, Field(max_length=100), AfterValidator(custom_event_type)]


class ItemRef(Model):
    """An item of the playbook, by its stage's title and its own."""

    stage: StageTitle
    item: ItemTitle


# The conditions of `RuleWhen`, in the order they are described.
WHEN_KINDS = ("incident_started", "stage_entered", "status_set", "item_checked", "no_status_update_for")


class RuleWhen(Model):
    """Exactly one condition; `after` holds it for a while (the start, a stage's entry)."""

    incident_started: Literal[True] | None = None
    stage_entered: StageTitle | None = None
    status_set: StatusValue | None = None
    item_checked: ItemRef | None = None
    # The last status update (or the start, if none) is this old: once per quiet period.
    no_status_update_for: Duration | None = None
    # With incident_started or stage_entered: this long after, if the incident is still
    # ongoing (and still in that stage).
    after: Duration | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> RuleWhen:
        given = [kind for kind in WHEN_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(WHEN_KINDS)}")
        if self.after is not None and given[0] not in ("incident_started", "stage_entered"):
            raise ValueError("after goes with incident_started or stage_entered only")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in WHEN_KINDS if getattr(self, kind) is not None)

    @property
    def delay_seconds(self) -> int | None:
        """How long the condition must hold before the rule fires (None: it fires at once)."""
        if self.no_status_update_for is not None:
            return duration_seconds(self.no_status_update_for)
        return duration_seconds(self.after) if self.after is not None else None


class PostAction(Model):
    """Post a message in the incident channel."""

    type: Literal["post"] = "post"
    message: Trimmed = Field(min_length=1, max_length=RULE_MESSAGE_MAX)


class AddItemsAction(Model):
    """Add items (titles) at the end of a stage."""

    type: Literal["add_items"] = "add_items"
    stage: StageTitle
    items: list[ItemTitle] = Field(min_length=1, max_length=RULE_ITEMS_MAX)


class SetReminderAction(Model):
    """Set the status update reminder (checked against this deployment's limits on save)."""

    type: Literal["set_reminder"] = "set_reminder"
    after: Duration


class InviteAction(Model):
    """Bring people into the incident channel (those already in are skipped)."""

    type: Literal["invite"] = "invite"
    user_ids: list[MattermostId] = Field(min_length=1, max_length=RULE_PEOPLE_MAX)


class AnnounceAction(Model):
    """Announce the incident in a channel, which is then kept informed."""

    type: Literal["announce"] = "announce"
    channel_id: MattermostId


class WebhookAction(Model):
    """Send a webhook event of the rule's own type (its data: the rule's name)."""

    type: Literal["webhook"] = "webhook"
    event_type: EventTypeName


class PageAction(Model):
    """Page people now (a direct message with *Acknowledge* and *Decline*, see `models.paging`)."""

    type: Literal["page"] = "page"
    user_ids: list[MattermostId] = Field(min_length=1, max_length=RULE_PAGED_MAX)
    reason: str = Field(default="", max_length=500)


RuleAction = Annotated[
    PostAction | AddItemsAction | SetReminderAction | InviteAction | AnnounceAction | WebhookAction | PageAction,
    Field(discriminator="type"),
]


class RuleSpec(Model):
    name: Trimmed = Field(min_length=1, max_length=RULE_NAME_MAX)
    when: RuleWhen
    then: list[RuleAction] = Field(min_length=1, max_length=MAX_ACTIONS)


def rule_place(index: int, rule: RuleSpec) -> str:
    """How people read a rule's place: "Rule 2 (page on sev1)"."""
    return f"Rule {index + 1} ({rule.name})"


def stage_problems(rules: list[RuleSpec], stages: dict[str, list[str]]) -> list[str]:
    """What the rules name that the playbook does not have, and names used twice.

    `stages`: each stage's title (casefolded) and its items' titles (casefolded)."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        place = rule_place(index, rule)
        key = rule.name.casefold()
        if key in seen:
            problems.append(f"{place}: Rule {seen[key] + 1} has the same name; give every rule its own name")
        seen.setdefault(key, index)
        named = [rule.when.stage_entered] + [a.stage for a in rule.then if isinstance(a, AddItemsAction)]
        for stage in named:
            if stage is not None and stage.casefold() not in stages:
                problems.append(f"{place}: stage {stage!r} is not a stage of this playbook")
        ref = rule.when.item_checked
        if ref is not None:
            items = stages.get(ref.stage.casefold())
            if items is None:
                problems.append(f"{place}: stage {ref.stage!r} is not a stage of this playbook")
            elif ref.item.casefold() not in items:
                problems.append(f"{place}: stage {ref.stage!r} has no item {ref.item!r}")
    return problems


def describe_when(when: RuleWhen) -> str:
    """The condition in words: "stage Mitigation is entered, after 30m"."""
    if when.no_status_update_for is not None:
        return f"no status update for {when.no_status_update_for}"
    if when.stage_entered is not None:
        said = f"stage {when.stage_entered} is entered"
    elif when.status_set is not None:
        said = f"the status is set to {when.status_set}"
    elif when.item_checked is not None:
        said = f"item {when.item_checked.item!r} of stage {when.item_checked.stage} is checked"
    else:
        said = "the incident starts"
    return f"{said}, after {when.after}" if when.after else said


def describe_action(action: RuleAction, names: dict[str, str] | None = None) -> str:
    """What an action does, in words; `names`: usernames and channel names by id, where known."""
    names = names or {}
    if isinstance(action, PostAction):
        short = action.message if len(action.message) <= 60 else action.message[:57] + "..."
        return f"post {short!r}"
    if isinstance(action, AddItemsAction):
        return f"add {', '.join(repr(i) for i in action.items)} to stage {action.stage}"
    if isinstance(action, SetReminderAction):
        return f"set the reminder to {action.after}"
    if isinstance(action, InviteAction):
        return "invite " + ", ".join(f"@{names[u]}" if u in names else u for u in action.user_ids)
    if isinstance(action, AnnounceAction):
        return f"announce in ~{names.get(action.channel_id, action.channel_id)}"
    if isinstance(action, PageAction):
        return "page " + ", ".join(f"@{names[u]}" if u in names else u for u in action.user_ids)
    return f"send webhook event {action.event_type}"


def describe_rule(rule: RuleSpec, names: dict[str, str] | None = None) -> str:
    """A rule in words: "When stage Mitigation is entered, after 30m → post '…'"."""
    actions = "; ".join(describe_action(action, names) for action in rule.then)
    return f"When {describe_when(rule.when)} → {actions}"


def rule_user_ids(rules: list[RuleSpec]) -> list[str]:
    """Everyone the rules invite or page, in order, once each."""
    ids = [u for rule in rules for a in rule.then if isinstance(a, InviteAction | PageAction) for u in a.user_ids]
    return list(dict.fromkeys(ids))


def rule_channel_ids(rules: list[RuleSpec]) -> list[str]:
    """Every channel the rules announce in, in order, once each."""
    ids = [a.channel_id for rule in rules for a in rule.then if isinstance(a, AnnounceAction)]
    return list(dict.fromkeys(ids))
