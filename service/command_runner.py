"""Running one incident command, whichever face it came from (REST, slash, dialog, button, backstage).

A face parses what the person gave into the command's fields (`values`), naming people and
channels by reference (`UserRef`, `ChannelRef`: by id from REST and forms, by name from
slash commands); this module resolves the references to the facts the workflow's rules
need, adds the caller's facts for the incident, builds the command declared in the
command table and sends it as one Update. The workflow decides; its answer is everything
the face renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mattermost_client.gateway import MattermostFailure
from models.command_table import CommandSpec
from models.common import Actor, ChannelFact, UserFact
from models.custom_fields import user_reference
from models.incident_commands import CommandResult, RequestKey
from models.paging import ScheduleFact
from models.pending_commands import LateReply
from service import incident_access, incident_starts, oncall_schedules, team_configuration
from service.container import Services
from service.errors import ServiceError
from service.incident_access import IncidentLocation


@dataclass(frozen=True)
class UserRef:
    """A person a command names: by id (REST, forms) or by @username (slash commands)."""

    user_id: str = ""
    username: str = ""
    # Where the id came from in a REST body (e.g. `user_ids[1]`), to name it in a refusal.
    field: str = ""


@dataclass(frozen=True)
class ChannelRef:
    """A channel a command names: by id (REST, forms) or by ~name (slash commands)."""

    channel_id: str = ""
    name: str = ""
    field: str = ""


@dataclass(frozen=True)
class ScheduleRef:
    """An on-call schedule a command names: by id (REST, forms) or by name (slash commands)."""

    schedule_id: str = ""
    name: str = ""
    field: str = ""


class UnknownReference(ServiceError):
    """A person or channel the command names does not exist, or the caller cannot see it."""

    def __init__(self, message: str, field: str = "", problem: str = "") -> None:
        super().__init__(422, "validation_error", message, {field: problem} if field else None)


def references_from_body(spec: CommandSpec, body: Mapping[str, Any]) -> dict[str, Any]:
    """The command's fields from a REST or form body: ids of people and channels become references."""
    values = dict(body)
    for name, ref in spec.refs.items():
        raw = values.pop(ref.rest_field, None)
        if ref.kind == "target":
            schedule_id = values.pop("schedule_id", None)
            values[name] = ScheduleRef(schedule_id=schedule_id, field="schedule_id") if schedule_id else None
            if raw:
                values[name] = UserRef(user_id=raw, field=ref.rest_field)
        elif ref.kind == "user":
            values[name] = UserRef(user_id=raw, field=ref.rest_field) if raw else None
        elif ref.kind == "users":
            values[name] = [UserRef(user_id=v, field=f"{ref.rest_field}[{i}]") for i, v in enumerate(raw or [])]
        else:
            values[name] = [ChannelRef(channel_id=v, field=f"{ref.rest_field}[{i}]") for i, v in enumerate(raw or [])]
    return values


async def run_command(
    svc: Services,
    spec: CommandSpec,
    actor: Actor,
    incident_id: str,
    values: Mapping[str, Any],
    *,
    request: RequestKey | None,
    location: IncidentLocation | None = None,
    channel_id: str | None = None,
    caller_token: str | None = None,
    late_reply: LateReply | None = None,
    asked: str = "",
) -> CommandResult:
    """Send one command: locate the incident, add the facts, one Update (or update-with-start).

    `channel_id` is where a slash command, dialog or button was used: the workflow refuses a
    command from any channel but the incident's own. `caller_token` is the caller's
    Mattermost token, for a command that runs the item's slash command as them. A command
    Temporal took but did not answer in time raises `CommandPending`; its outcome is told
    through `late_reply` (what the person `asked`, in their words).
    """
    location = location or await incident_access.locate(svc, incident_id)
    if spec.starts_a_run:
        return await incident_starts.restart(
            svc, actor, location.incident_id, request=request, late_reply=late_reply, asked=asked
        )
    actor = await incident_access.actor_at(svc, actor, location)
    resolved = {name: await _resolve(svc, actor, location, value) for name, value in values.items()}
    if spec.severity_levels:
        # The team's levels as they are now: the incident reads what was asked against them.
        resolved["levels"] = await team_configuration.severity_levels(svc, location.team_id)
    if spec.value_names_user:
        # The person the value may name (a user field's): the incident reads the value against them.
        reference = user_reference(resolved.get("value"))
        found = await incident_starts.user_named(svc, location.team_id, reference) if reference else None
        resolved["users"] = [found] if found else []
    command = spec.command.model_validate({**resolved, "actor": actor, "request": request, "channel_id": channel_id})
    result = await incident_access.send(svc, location, spec.name, command, late_reply=late_reply, asked=asked)
    if spec.runs_item_command:
        answer = await _run_item_command(svc, result, values, caller_token)
        if answer:
            result = result.model_copy(update={"message": f"{result.message} Mattermost answered: {answer}"})
    return result


async def _resolve(svc: Services, actor: Actor, location: IncidentLocation, value: Any) -> Any:
    if isinstance(value, list):
        return [await _resolve(svc, actor, location, item) for item in value]
    if isinstance(value, UserRef):
        return await _user(svc, location, value)
    if isinstance(value, ChannelRef):
        return await _channel(svc, actor, location, value)
    if isinstance(value, ScheduleRef):
        return await _schedule(svc, actor, location, value)
    return value


async def _user(svc: Services, location: IncidentLocation, ref: UserRef) -> UserFact:
    if ref.username:
        user = await svc.facts.user_by_username(ref.username)
        if user is None:
            raise UnknownReference(f"There is no user @{ref.username}.")
    else:
        user = await svc.facts.user_by_id(ref.user_id)
        if user is None:
            raise UnknownReference(f"No user has the id {ref.user_id}.", ref.field, f"no user has the id {ref.user_id}")
    return await svc.facts.user_fact(user, team_id=location.team_id, channel_id=location.channel_id)


async def _schedule(svc: Services, actor: Actor, location: IncidentLocation, ref: ScheduleRef) -> ScheduleFact:
    """A schedule of the incident's team, by name or id (a deleted one, or another team's, is not here)."""
    missing = UnknownReference(
        f"There is no schedule {ref.name or ref.schedule_id} in this team.", ref.field, "no such schedule in this team"
    )
    try:
        if ref.name:
            schedule = await oncall_schedules.find_by_name(svc, actor, location.team_id, ref.name)
        else:
            schedule = await oncall_schedules.get_schedule(svc, actor, ref.schedule_id)
    except ServiceError as error:
        if error.status == 404:
            raise missing from None
        raise
    if schedule is None or schedule.team_id != location.team_id:
        raise missing
    return ScheduleFact(schedule_id=schedule.id, name=schedule.name)


async def _channel(svc: Services, actor: Actor, location: IncidentLocation, ref: ChannelRef) -> ChannelFact:
    channel_id = ref.channel_id
    if ref.name:
        try:
            channel_id = str((await svc.mattermost.get_channel_by_name(location.team_id, ref.name))["id"])
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            # The bot looks the channel up, and a private channel does not exist for it until it joins.
            bot = await svc.mattermost.bot_user()
            raise UnknownReference(
                f"There is no channel ~{ref.name} that you can see in this team. "
                f"For a private channel, add @{bot['username']} to it first."
            ) from None
    visible = await svc.facts.visible_channel(actor, channel_id)
    if visible is None:
        if ref.name:
            raise UnknownReference(f"There is no channel ~{ref.name} that you can see in this team.")
        raise UnknownReference(
            f"There is no channel {channel_id} that you can see.", ref.field, "no such channel that you can see"
        )
    return await svc.facts.channel_fact(actor, visible)


async def _run_item_command(
    svc: Services, result: CommandResult, values: Mapping[str, Any], caller_token: str | None
) -> str:
    """The run is on record; now the item's slash command runs as the caller, in the incident
    channel. Returns the command's answer (its reply text; empty when it has none)."""
    view = result.incident
    text = view.checklists[int(values["stage"])].items[int(values["item"])].command
    if not caller_token:
        raise ServiceError(
            400, "no_token", f"The run of {text} was recorded, but it can only run with your own Mattermost token."
        )
    try:
        reply = await svc.mattermost.execute_command(caller_token, channel_id=str(view.channel_id), command=text)
    except MattermostFailure as failure:
        raise ServiceError(
            502,
            "mattermost_refused",
            f"The run of {text} was recorded, but Mattermost did not run it: {failure.message}",
        ) from None
    return str(reply.get("text") or "").strip()
