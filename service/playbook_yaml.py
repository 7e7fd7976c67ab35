"""Playbooks as code: the YAML form of a playbook, with line-numbered errors.

People and channels appear by name (usernames, channel names), so a file reads well in
review and can be imported into another team; import resolves them in the target team.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError

from mattermost_client.gateway import MattermostFailure
from models.common import Model, ReminderSeconds
from models.custom_fields import FIELDS_MAX, FieldSpec
from models.paging import (
    REPEAT_MAX,
    SCHEDULE_ID_MAX,
    TARGETS_MAX,
    TIERS_MAX,
    AckWithin,
    EscalationPolicy,
    policy_user_ids,
)
from models.playbook import DESCRIPTION_MAX, TITLE_MAX, Playbook, PlaybookSpec, StageSpec
from models.playbook_automation import (
    MAX_ACTIONS,
    MAX_RULES,
    RULE_PAGED_MAX,
    RULE_PEOPLE_MAX,
    AddItemsAction,
    AnnounceAction,
    InviteAction,
    PageAction,
    PostAction,
    RuleSpec,
    RuleWhen,
    SetReminderAction,
    WebhookAction,
    rule_user_ids,
)
from models.retrospective import RetrospectiveSpec
from models.severity import SEVERITY_LEVELS_MAX
from service.container import Services
from service.errors import ServiceError, field_path
from service.yaml_documents import DocumentKind, line_for, located_error, parse_off_loop

ESCALATION_TEXT = DocumentKind("escalation", "a mapping with escalation: and the policy under it")
PLAYBOOK_FILE = DocumentKind("playbook", "a mapping with title, checklists, ...")
RULES_TEXT = DocumentKind("rules", "a mapping with rules: and a list of rules under it")
FIELDS_TEXT = DocumentKind("fields", "a mapping with fields: and a list of fields under it")


class InviteByName(Model):
    """`invite` as a file writes it: people by username."""

    type: Literal["invite"] = "invite"
    users: list[str] = Field(min_length=1, max_length=RULE_PEOPLE_MAX)


class AnnounceByName(Model):
    """`announce` as a file writes it: the channel by name."""

    type: Literal["announce"] = "announce"
    channel: str = Field(min_length=1, max_length=64)


class PageByName(Model):
    """`page` as a file writes it: people by username."""

    type: Literal["page"] = "page"
    users: list[str] = Field(min_length=1, max_length=RULE_PAGED_MAX)
    reason: str = Field(default="", max_length=500)


ActionDocument = Annotated[
    PostAction | AddItemsAction | SetReminderAction | InviteByName | AnnounceByName | WebhookAction | PageByName,
    Field(discriminator="type"),
]


class RuleDocument(Model):
    """A rule as a file writes it (`RuleSpec`, with people and channels named)."""

    name: str
    when: RuleWhen
    then: list[ActionDocument] = Field(min_length=1, max_length=MAX_ACTIONS)


class RulesDocument(Model):
    """The rules alone, as the backstage editor shows them: `rules:` and the list."""

    rules: list[RuleDocument] = Field(default_factory=list, max_length=MAX_RULES)


class TargetDocument(Model):
    """Whom a tier pages, as a file writes it: a person by username, or a schedule by id."""

    user: str | None = Field(default=None, min_length=1, max_length=64)
    schedule_id: str | None = Field(default=None, min_length=1, max_length=SCHEDULE_ID_MAX)


class TierDocument(Model):
    targets: list[TargetDocument] = Field(min_length=1, max_length=TARGETS_MAX)
    ack_within: AckWithin


class EscalationDocument(Model):
    """The escalation policy as a file writes it (`models.paging.EscalationPolicy`, people by name)."""

    tiers: list[TierDocument] = Field(min_length=1, max_length=TIERS_MAX)
    repeat: int = Field(default=0, ge=0, le=REPEAT_MAX)


class EscalationText(Model):
    """The escalation policy alone, as the backstage editor shows it: `escalation:` and the policy."""

    escalation: EscalationDocument | None = None


FORMAT_HEADER = "# Incident response playbook. Import with POST /api/v1/playbooks/import?team_id=<team>\n"


class PlaybookDocument(Model):
    """The YAML schema (names instead of ids)."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    create_public_incident: bool = False
    reminder_timer_default_seconds: ReminderSeconds = 0
    channel_name_template: str = ""
    members: list[str] = Field(default_factory=list)
    invited_users: list[str] = Field(default_factory=list)
    default_commander: str | None = None
    broadcast_channels: list[str] = Field(default_factory=list)
    checklists: list[StageSpec] = Field(min_length=1)
    rules: list[RuleDocument] = Field(default_factory=list, max_length=MAX_RULES)
    escalation: EscalationDocument | None = None
    # The team's severity level (1 is the most severe) its incidents start with when nobody gives one.
    default_severity: int | None = Field(default=None, ge=1, le=SEVERITY_LEVELS_MAX)
    # The custom fields its incidents carry (`models.custom_fields`), as the playbook stores them.
    fields: list[FieldSpec] = Field(default_factory=list, max_length=FIELDS_MAX)
    # The retrospective its incidents open when they end (`models.retrospective`; `{}`: the defaults).
    retrospective: RetrospectiveSpec | None = None


# The fields a file has as the playbook stores them (people and channels are named instead).
AS_STORED = (set(PlaybookDocument.model_fields) & set(PlaybookSpec.model_fields)) - {"rules", "escalation"}


async def export_yaml(svc: Services, playbook: Playbook) -> str:
    users = {u["id"]: u["username"] for u in await svc.mattermost.get_users_by_ids(_people(playbook))}
    channels = []
    for channel_id in playbook.broadcast_channel_ids:
        channel = await svc.mattermost.get_channel(channel_id)
        channels.append(channel["name"])
    document = PlaybookDocument(
        **playbook.model_dump(include=AS_STORED),
        members=[users.get(u, u) for u in playbook.member_ids],
        invited_users=[users.get(u, u) for u in playbook.invited_user_ids],
        default_commander=users.get(playbook.default_commander_id, playbook.default_commander_id)
        if playbook.default_commander_id
        else None,
        broadcast_channels=channels,
        rules=await rule_documents(svc, playbook.rules, users),
        escalation=escalation_document(playbook.escalation, users),
    )
    body = document.model_dump(mode="json", exclude_none=True)
    if not body["rules"]:
        del body["rules"]
    # A condition (`when`) as written by hand: only the parts it has.
    for stage in body["checklists"]:
        for part in [stage, *stage.get("items", [])]:
            if "when" in part:
                part["when"] = {key: value for key, value in part["when"].items() if value}
    # Each custom field as written by hand: what differs from the defaults (its name always).
    body["fields"] = field_documents(playbook.fields)
    if not body["fields"]:
        del body["fields"]
    return FORMAT_HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def _people(playbook: Playbook) -> list[str]:
    ids = [
        *playbook.member_ids,
        *playbook.invited_user_ids,
        *rule_user_ids(playbook.rules),
        *policy_user_ids(playbook.escalation),
    ]
    if playbook.default_commander_id:
        ids.append(playbook.default_commander_id)
    return ids


def escalation_document(policy: EscalationPolicy | None, users: dict[str, str]) -> EscalationDocument | None:
    """The escalation policy as a file writes it: people by username (`users`: by id)."""
    if policy is None:
        return None
    tiers = [
        TierDocument(
            targets=[
                TargetDocument(user=users.get(t.user_id, t.user_id))
                if t.user_id
                else TargetDocument(schedule_id=t.schedule_id)
                for t in tier.targets
            ],
            ack_within=tier.ack_within,
        )
        for tier in policy.tiers
    ]
    return EscalationDocument(tiers=tiers, repeat=policy.repeat)


async def rule_documents(svc: Services, rules: list[RuleSpec], users: dict[str, str]) -> list[RuleDocument]:
    """The rules as a file writes them: people by username (`users`: by id), channels by name."""
    documents = []
    for rule in rules:
        then: list[Any] = []
        for action in rule.then:
            if isinstance(action, InviteAction):
                then.append(InviteByName(users=[users.get(u, u) for u in action.user_ids]))
            elif isinstance(action, PageAction):
                then.append(PageByName(users=[users.get(u, u) for u in action.user_ids], reason=action.reason))
            elif isinstance(action, AnnounceAction):
                then.append(AnnounceByName(channel=await _channel_name(svc, action.channel_id)))
            else:
                then.append(action)
        documents.append(RuleDocument(name=rule.name, when=rule.when, then=then))
    return documents


async def _channel_name(svc: Services, channel_id: str) -> str:
    try:
        return str((await svc.mattermost.get_channel(channel_id))["name"])
    except MattermostFailure as failure:
        if failure.retryable:
            raise
        return channel_id


def rules_text(documents: list[RuleDocument]) -> str:
    """The rules as the backstage editor shows them (the `rules:` part of a playbook file)."""
    if not documents:
        return ""
    body = {"rules": [d.model_dump(mode="json", exclude_none=True) for d in documents]}
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


class FieldsDocument(Model):
    """The custom fields alone, as the backstage editor shows them: `fields:` and the list."""

    fields: list[FieldSpec] = Field(default_factory=list, max_length=FIELDS_MAX)


def field_documents(fields: list[FieldSpec]) -> list[dict[str, Any]]:
    """Each custom field as written by hand: what differs from the defaults (its name always)."""
    return [spec.model_dump(mode="json", exclude_defaults=True) | {"name": spec.name} for spec in fields]


def fields_text(fields: list[FieldSpec]) -> str:
    """The custom fields as the backstage editor shows them (the `fields:` part of a playbook file)."""
    if not fields:
        return ""
    return yaml.safe_dump({"fields": field_documents(fields)}, sort_keys=False, allow_unicode=True, width=100)


async def parse_fields_text(text: str) -> list[FieldSpec]:
    """The backstage editor's custom fields (empty: none), or a 422 naming each problem's line."""
    if not text.strip():
        return []
    document, _ = await parse_off_loop(text, FieldsDocument, FIELDS_TEXT)
    return document.fields


async def parse_rules_text(text: str) -> tuple[list[RuleDocument], dict[tuple[Any, ...], int]]:
    """The backstage editor's rules (empty: none), or a 422 naming each problem's line."""
    if not text.strip():
        return [], {}
    document, lines = await parse_off_loop(text, RulesDocument, RULES_TEXT)
    return document.rules, lines


async def resolve_rules(
    svc: Services, team_id: str, documents: list[RuleDocument], lines: dict[tuple[Any, ...], int]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rules as the API takes them (names turned into ids in the team), and what names nobody."""
    fields: dict[str, str] = {}
    rules: list[dict[str, Any]] = []
    for r, rule in enumerate(documents):
        then: list[dict[str, Any]] = []
        for a, action in enumerate(rule.then):
            loc = ("rules", r, "then", a)
            place = f"Rule {r + 1} ({rule.name})"
            if isinstance(action, InviteByName | PageByName):
                ids = []
                for i, name in enumerate(action.users):
                    user = await svc.facts.user_by_username(name.lstrip("@"))
                    if user is None:
                        where = line_for((*loc, "users", i), lines)
                        fields[field_path((*loc, "users", i))] = (
                            f"{'line ' + str(where) + ': ' if where else ''}{place}: no user @{name.lstrip('@')}"
                        )
                    else:
                        ids.append(str(user["id"]))
                if isinstance(action, PageByName):
                    then.append({"type": "page", "user_ids": ids, "reason": action.reason})
                else:
                    then.append({"type": "invite", "user_ids": ids})
            elif isinstance(action, AnnounceByName):
                found = await _channel_by_name(svc, team_id, action.channel.lstrip("~"))
                if found is None:
                    where = line_for((*loc, "channel"), lines)
                    fields[field_path((*loc, "channel"))] = (
                        f"{'line ' + str(where) + ': ' if where else ''}{place}: "
                        f"no channel ~{action.channel.lstrip('~')} in this team"
                    )
                then.append({"type": "announce", "channel_id": found or ""})
            else:
                then.append(action.model_dump(mode="json"))
        rules.append({"name": rule.name, "when": rule.when.model_dump(mode="json", exclude_none=True), "then": then})
    return rules, fields


def escalation_text(document: EscalationDocument | None) -> str:
    """The escalation policy as the backstage editor shows it (the `escalation:` part of a playbook file)."""
    if document is None:
        return ""
    body = {"escalation": document.model_dump(mode="json", exclude_none=True)}
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


async def parse_escalation_text(text: str) -> tuple[EscalationDocument | None, dict[tuple[Any, ...], int]]:
    """The backstage editor's escalation policy (empty: none), or a 422 naming each problem's line."""
    if not text.strip():
        return None, {}
    document, lines = await parse_off_loop(text, EscalationText, ESCALATION_TEXT)
    return document.escalation, lines


async def resolve_escalation(
    svc: Services, document: EscalationDocument | None, lines: dict[tuple[Any, ...], int]
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The policy as the API takes it (usernames turned into ids), and what names nobody."""
    if document is None:
        return None, {}
    fields: dict[str, str] = {}
    tiers: list[dict[str, Any]] = []
    for t, tier in enumerate(document.tiers):
        targets: list[dict[str, Any]] = []
        for i, target in enumerate(tier.targets):
            if target.user is None:
                targets.append({"schedule_id": target.schedule_id})
                continue
            name = target.user.lstrip("@")
            user = await svc.facts.user_by_username(name)
            if user is None:
                loc = ("escalation", "tiers", t, "targets", i, "user")
                where = line_for(loc, lines)
                fields[field_path(loc)] = f"{'line ' + str(where) + ': ' if where else ''}no user @{name}"
            targets.append({"user_id": str(user["id"]) if user else ""})
        tiers.append({"targets": targets, "ack_within": tier.ack_within})
    return {"tiers": tiers, "repeat": document.repeat}, fields


async def _channel_by_name(svc: Services, team_id: str, name: str) -> str | None:
    try:
        channel: dict[str, Any] | None = await svc.mattermost.get_channel_by_name(team_id, name)
    except MattermostFailure as failure:
        if failure.retryable:
            raise
        return None  # not found, or not visible to the bot
    return str(channel["id"]) if channel else None


async def parse_yaml_off_loop(text: str) -> tuple[PlaybookDocument, dict[tuple[Any, ...], int]]:
    """The playbook file parsed in a worker thread: parsing takes time, and the event loop serves everyone."""
    return await parse_off_loop(text, PlaybookDocument, PLAYBOOK_FILE)


async def resolve_document(
    svc: Services, team_id: str, document: PlaybookDocument, lines: dict[tuple[Any, ...], int]
) -> PlaybookSpec:
    """Turn names into ids in the target team; unknown names are errors on their line."""
    fields: dict[str, str] = {}

    async def user_id(name: str, loc: tuple[Any, ...]) -> str | None:
        user = await svc.facts.user_by_username(name)
        if user is None:
            fields[field_path(loc)] = f"line {line_for(loc, lines)}: no user @{name.lstrip('@')}"
            return None
        return str(user["id"])

    members = [await user_id(n, ("members", i)) for i, n in enumerate(document.members)]
    invited = [await user_id(n, ("invited_users", i)) for i, n in enumerate(document.invited_users)]
    commander = (
        await user_id(document.default_commander, ("default_commander",)) if document.default_commander else None
    )
    channels: list[str | None] = []
    for index, name in enumerate(document.broadcast_channels):
        try:
            channel: dict[str, Any] | None = await svc.mattermost.get_channel_by_name(team_id, name.lstrip("~"))
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            channel = None  # not found, or not visible to the bot: reported on its line below
        if channel is None:
            line = line_for(("broadcast_channels", index), lines)
            fields[f"broadcast_channels[{index}]"] = f"line {line}: no channel ~{name.lstrip('~')} in this team"
        channels.append(channel["id"] if channel else None)
    rules, unknown = await resolve_rules(svc, team_id, document.rules, lines)
    fields.update(unknown)
    escalation, unnamed = await resolve_escalation(svc, document.escalation, lines)
    fields.update(unnamed)
    if fields:
        raise ServiceError(
            422, "validation_error", "The playbook file names people or channels that do not exist.", fields
        )
    try:
        return PlaybookSpec(
            title=document.title,
            description=document.description,
            create_public_incident=document.create_public_incident,
            checklists=document.checklists,
            member_ids=[m for m in members if m],
            invited_user_ids=[m for m in invited if m],
            default_commander_id=commander,
            broadcast_channel_ids=[c for c in channels if c],
            reminder_timer_default_seconds=document.reminder_timer_default_seconds,
            channel_name_template=document.channel_name_template,
            rules=rules,
            escalation=escalation,
            default_severity=document.default_severity,
            fields=document.fields,
            retrospective=document.retrospective,
        )
    except ValidationError as error:
        raise located_error(error, lines, PLAYBOOK_FILE) from None
