"""The playbook's rules: who may create and edit one, and what a spec may name.

Pure (no Temporal calls, no I/O): the playbook workflow runs them in its validators and
when it is started, over the facts the service gathered (`PlaybookFacts`); the REST API,
the backstage and YAML import all end here, so they cannot disagree.
"""

from __future__ import annotations

import permissions
from models.common import reminder_problem
from models.playbook import PlaybookCommand, PlaybookFacts, PlaybookSpec
from models.playbook_automation import (
    AnnounceAction,
    InviteAction,
    PageAction,
    SetReminderAction,
    duration_seconds,
    rule_place,
)
from models.refusals import invalid_fields, not_found

REFERS_TO_UNUSABLE = "The playbook refers to people or channels it cannot use."


def check_create(creator: PlaybookCommand, spec: PlaybookSpec, facts: PlaybookFacts) -> None:
    """Only members of a team create playbooks in it (others learn nothing of the team)."""
    if not permissions.can_see_team(creator.actor, is_team_member=creator.is_team_member):
        raise not_found("Team not found.")
    check_spec(spec, facts)


def with_creator(spec: PlaybookSpec, creator_id: str) -> PlaybookSpec:
    """The creator is a member of the playbook they create."""
    if creator_id in spec.member_ids:
        return spec
    return spec.model_copy(update={"member_ids": [creator_id, *spec.member_ids]})


def check_spec(spec: PlaybookSpec, facts: PlaybookFacts) -> None:
    """People must exist and be in the team (a commander no bot), broadcast channels usable, the
    reminder within this deployment's limits: every problem named by its field."""
    problems: dict[str, str] = {}
    people = [
        *((f"member_ids[{i}]", u) for i, u in enumerate(spec.member_ids)),
        *((f"invited_user_ids[{i}]", u) for i, u in enumerate(spec.invited_user_ids)),
        *((("default_commander_id", spec.default_commander_id),) if spec.default_commander_id else ()),
    ]
    # Whom the escalation policy pages in person (its schedules are looked up when paged).
    paged = [
        (f"escalation.tiers[{t}].targets[{i}].user_id", target.user_id)
        for t, tier in enumerate(spec.escalation.tiers if spec.escalation else [])
        for i, target in enumerate(tier.targets)
        if target.user_id is not None
    ]
    people.extend(paged)
    for t, tier in enumerate(spec.escalation.tiers if spec.escalation else []):
        for i, target in enumerate(tier.targets):
            if target.schedule_id is not None and target.schedule_id not in facts.schedules:
                field = f"escalation.tiers[{t}].targets[{i}].schedule_id"
                problems[field] = f"no on-call schedule {target.schedule_id} in this team"
    channels = [(f"broadcast_channel_ids[{i}]", c) for i, c in enumerate(spec.broadcast_channel_ids)]
    # What the rules name: a problem there also says which rule ("Rule 2 (page on sev1): ...").
    places: dict[str, str] = {}
    paged_by_rules = {
        f"rules[{r}].then[{a}].user_ids[{i}]"
        for r, rule in enumerate(spec.rules)
        for a, action in enumerate(rule.then)
        if isinstance(action, PageAction)
        for i in range(len(action.user_ids))
    }
    for r, rule in enumerate(spec.rules):
        for a, action in enumerate(rule.then):
            field = f"rules[{r}].then[{a}]"
            places[field] = rule_place(r, rule)
            if isinstance(action, InviteAction | PageAction):
                people.extend((f"{field}.user_ids[{i}]", u) for i, u in enumerate(action.user_ids))
                places.update({f"{field}.user_ids[{i}]": places[field] for i in range(len(action.user_ids))})
            elif isinstance(action, AnnounceAction):
                channels.append((f"{field}.channel_id", action.channel_id))
                places[f"{field}.channel_id"] = places[field]
            elif isinstance(action, SetReminderAction):
                reminder = reminder_problem(duration_seconds(action.after), facts.reminder_min_seconds)
                if reminder:
                    problems[f"{field}.after"] = f"{places[field]}: {reminder}"
    for field, user_id in people:
        user = facts.users.get(user_id)
        if user is None:
            problems[field] = f"no user has the id {user_id}"
        elif not user.is_team_member:
            problems[field] = f"@{user.username} is not a member of this team"
        elif field == "default_commander_id" and user.is_bot:
            problems[field] = f"@{user.username} is a bot and cannot be the commander"
        elif (field.startswith("escalation.") or field in paged_by_rules) and user.is_bot:
            problems[field] = f"@{user.username} is a bot and cannot be paged"
    count = facts.severity_level_count
    if spec.default_severity is not None and count and spec.default_severity > count:
        problems["default_severity"] = (
            f"the team has no severity level {spec.default_severity}: its levels are 1 to {count}"
        )
    if count:
        # A condition (`when`, `models.conditions`) names the team's levels.
        for s_index, stage in enumerate(spec.checklists):
            for path, condition in [
                (f"checklists[{s_index}].when", stage.when),
                *((f"checklists[{s_index}].items[{i}].when", item.when) for i, item in enumerate(stage.items)),
            ]:
                beyond = [level for level in condition.severity if level > count] if condition else []
                if beyond:
                    problems[path] = f"the team has no severity level {beyond[0]}: its levels are 1 to {count}"
    reminder = reminder_problem(spec.reminder_timer_default_seconds, facts.reminder_min_seconds)
    if reminder:
        problems["reminder_timer_default_seconds"] = reminder
    if spec.retrospective is not None:
        reminder = reminder_problem(duration_seconds(spec.retrospective.reminder_every), facts.reminder_min_seconds)
        if reminder:
            problems["retrospective.reminder_every"] = reminder
    for field, channel_id in channels:
        channel = facts.channels.get(channel_id)
        if channel is None or not channel.visible_in_team:
            problems[field] = f"no channel {channel_id} that you can see in this team"
        elif not channel.actor_can_post:
            problems[field] = f"you cannot post in ~{channel.name}"
        elif channel.private_without_bot:
            problems[field] = f"~{channel.name} is private: add @{facts.bot_username} to it first"
    for field, place in places.items():
        if field in problems and not problems[field].startswith(place):
            problems[field] = f"{place}: {problems[field]}"
    if problems:
        raise invalid_fields(REFERS_TO_UNUSABLE, problems)
