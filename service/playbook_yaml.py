"""Playbooks as code: the YAML form of a playbook, with line-numbered errors.

People and channels appear by name (usernames, channel names), so a file reads well in
review and can be imported into another team; import resolves them in the target team.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import yaml
from pydantic import Field, ValidationError

from mattermost_client.gateway import MattermostFailure
from models.common import Model, ReminderSeconds
from models.playbook import DESCRIPTION_MAX, TITLE_MAX, Playbook, PlaybookSpec, StageSpec
from service.container import Services
from service.errors import ServiceError, field_path

# Far more than any playbook needs (a large one is a few kilobytes, 5 levels deep).
YAML_MAX_CHARS = 256 * 1024
YAML_MAX_DEPTH = 20
YAML_MAX_NODES = 20_000
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
    """`parse_yaml` in a worker thread: parsing takes time, and the event loop serves everyone."""
    return await anyio.to_thread.run_sync(parse_yaml, text)


def check_shape(text: str) -> None:
    """Refuse what no playbook needs and what makes parsing or validating explode: a text
    over YAML_MAX_CHARS, nesting deeper than YAML_MAX_DEPTH (the composer recurses),
    more than YAML_MAX_NODES nodes, and aliases (a few lines can expand to billions of nodes
    for the validator). PyYAML's event parser is iterative, so this scan is safe."""
    if len(text) > YAML_MAX_CHARS:
        raise ServiceError(422, "validation_error", f"The playbook file is longer than {YAML_MAX_CHARS} characters.")
    depth = nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise _shape_error(event, "aliases (*name) are not supported; write the value out")
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > YAML_MAX_NODES:
                raise _shape_error(event, f"more than {YAML_MAX_NODES} values")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > YAML_MAX_DEPTH:
                raise _shape_error(event, f"nested deeper than {YAML_MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _shape_error(event: yaml.Event, problem: str) -> ServiceError:
    mark = event.start_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return ServiceError(422, "validation_error", f"Invalid playbook file: {where}{problem}.", {"yaml": where + problem})


def parse_yaml(text: str) -> tuple[PlaybookDocument, dict[tuple[Any, ...], int]]:
    """The document and the line of every node, or a 422 naming the line of each problem."""
    try:
        check_shape(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ServiceError(
            422,
            "validation_error",
            f"Invalid YAML: {where}{error.problem or error}",
            {"yaml": f"{where}{error}"},
        ) from None
    except yaml.YAMLError as error:
        raise ServiceError(422, "validation_error", f"Invalid YAML: {error}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if root is not None:
        _index_lines(root, (), lines)
    if not isinstance(data, dict):
        raise ServiceError(422, "validation_error", "The YAML must be a mapping with title, checklists, ...")
    try:
        return PlaybookDocument.model_validate(data), lines
    except ValidationError as error:
        raise located_error(error, lines) from None


def located_error(error: ValidationError, lines: dict[tuple[Any, ...], int]) -> ServiceError:
    fields: dict[str, str] = {}
    for issue in error.errors():
        loc = tuple(issue["loc"])
        line = _line_for(loc, lines)
        message = str(issue["msg"]).removeprefix("Value error, ")
        fields[field_path(loc)] = f"line {line}: {message}" if line else message
    listed = "; ".join(f"{name} ({problem})" for name, problem in fields.items())
    return ServiceError(422, "validation_error", f"The playbook file is invalid: {listed}.", fields)


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _index_lines(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            lines[(*path, name)] = key.start_mark.line + 1
            _index_lines(value, (*path, name), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines)


async def resolve_document(
    svc: Services, team_id: str, document: PlaybookDocument, lines: dict[tuple[Any, ...], int]
) -> PlaybookSpec:
    """Turn names into ids in the target team; unknown names are errors on their line."""
    fields: dict[str, str] = {}

    async def user_id(name: str, loc: tuple[Any, ...]) -> str | None:
        user = await svc.facts.user_by_username(name)
        if user is None:
            fields[field_path(loc)] = f"line {_line_for(loc, lines)}: no user @{name.lstrip('@')}"
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
            line = _line_for(("broadcast_channels", index), lines)
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
        raise located_error(error, lines) from None
