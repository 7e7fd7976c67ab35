"""Playbooks as code: the YAML form of a playbook, with line-numbered errors.

People and channels appear by name (usernames, channel names), so a file reads well in
review and can be imported into another team; import resolves them in the target team.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import Field, ValidationError

from mattermost_client.gateway import MattermostFailure
from models.common import Model, ReminderSeconds
from models.playbook import DESCRIPTION_MAX, TITLE_MAX, Playbook, PlaybookSpec, StageSpec
from service.container import Services
from service.errors import ServiceError, field_path
from service.yaml_documents import DocumentKind, line_for, located_error, parse_off_loop

PLAYBOOK_FILE = DocumentKind("playbook", "a mapping with title, checklists, ...")
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


# The fields a file has as the playbook stores them (people and channels are named instead).
AS_STORED = set(PlaybookDocument.model_fields) & set(PlaybookSpec.model_fields)


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
    )
    body = document.model_dump(mode="json", exclude_none=True)
    return FORMAT_HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def _people(playbook: Playbook) -> list[str]:
    ids = [*playbook.member_ids, *playbook.invited_user_ids]
    if playbook.default_commander_id:
        ids.append(playbook.default_commander_id)
    return ids


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
        )
    except ValidationError as error:
        raise located_error(error, lines, PLAYBOOK_FILE) from None
