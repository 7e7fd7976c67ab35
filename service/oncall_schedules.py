"""On-call schedules for REST, slash commands and the backstage: create, list, read, change,
delete, who is on call, and a schedule by its name.

A team's members read its schedules; its admins (and system admins) change them, as they
manage the team's integrations and webhooks (`integrations.MANAGE_TEAM`). Anyone outside the
team learns nothing ("Team not found" / "Schedule not found"). Every person a schedule names
must be in the team, and its channel a channel of the team the caller can see: each refusal
names the field at fault. Names are unique in the team, whatever their case (checked against
the team's list, which visibility keeps: two creations in the same moment can both pass).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

import permissions
from models import search_attributes as sa
from models.common import SHORT_ID, Actor, new_short_id, short_id_from
from models.schedules import (
    SCHEDULES_MAX,
    ChangeSchedule,
    DeleteSchedule,
    OncallPerson,
    OncallView,
    Schedule,
    ScheduleSpec,
    ScheduleState,
    in_years,
    name_key,
    next_handoffs,
    oncall_at,
    schedule_workflow_id,
)
from service.container import Services
from service.errors import ServiceError, invalid, not_found
from service.integrations import MANAGE_TEAM
from service.temporal_calls import Gone, query, quote, update_or_not_found
from workflows.schedule_workflow import SCHEDULE_MEMO, ScheduleWorkflow

# How many handoffs the on-call answer lists.
HANDOFFS_SHOWN = 5


def _handle(svc: Services, schedule_id: str) -> WorkflowHandle[Any, Any]:
    return svc.temporal.get_workflow_handle(schedule_workflow_id(schedule_id))


async def _require_member(svc: Services, actor: Actor, team_id: str, what: str = "Team") -> None:
    member = await svc.facts.is_team_member(team_id, actor.user_id)
    if not permissions.can_see_team(actor, is_team_member=member):
        raise not_found(what)


async def may_manage(svc: Services, actor: Actor, team_id: str) -> bool:
    """Whether the actor may change the team's schedules: a team admin or a system admin."""
    if actor.is_system_admin:
        return True
    return await svc.facts.is_team_member(team_id, actor.user_id) and MANAGE_TEAM in await svc.facts.team_permissions(
        team_id, actor
    )


async def _require_manager(svc: Services, actor: Actor, team_id: str, what: str = "Team") -> None:
    await _require_member(svc, actor, team_id, what)
    if not await may_manage(svc, actor, team_id):
        raise ServiceError(403, "forbidden", "Only team admins can change this team's schedules; ask one of them.")


async def _person_problem(svc: Services, team_id: str, user_id: str) -> str:
    """Why this person cannot be in the team's schedule ("": they can)."""
    user = await svc.facts.user_by_id(user_id)
    if user is None:
        return f"no user has the id {user_id}"
    if not await svc.facts.is_team_member(team_id, user_id):
        return f"@{user.get('username', user_id)} ({user_id}) is not a member of this team"
    return ""


async def check_spec(svc: Services, actor: Actor, spec: ScheduleSpec, *, schedule_id: str | None) -> None:
    """Everyone named is in the team, the channel is the team's, the name is free."""
    fields: dict[str, str] = {}
    ids = spec.user_ids()
    problems = dict(zip(ids, await asyncio.gather(*(_person_problem(svc, spec.team_id, i) for i in ids)), strict=True))
    for where, user_id in spec.located_user_ids():
        if problems[user_id]:
            fields.setdefault(where, problems[user_id])
    if spec.channel_id is not None:
        channel = await svc.facts.visible_channel(actor, spec.channel_id)
        if channel is None or channel.get("team_id") != spec.team_id:
            fields["channel_id"] = f"no channel {spec.channel_id} of this team that you can see"
    listed = await _listed(svc, spec.team_id)
    if any(name_key(s.name) == name_key(spec.name) and s.id != schedule_id for s in listed):
        fields["name"] = f"the team already has a schedule named {spec.name!r}; choose another name"
    if schedule_id is None and len(listed) >= SCHEDULES_MAX:
        raise invalid(f"A team has at most {SCHEDULES_MAX} schedules; delete one first.")
    if fields:
        listed_fields = "; ".join(f"{name}: {problem}" for name, problem in fields.items())
        raise invalid(f"The schedule is invalid: {listed_fields}.", fields)


async def create_schedule(
    svc: Services, actor: Actor, spec: ScheduleSpec, *, idempotency_key: str | None = None
) -> Schedule:
    """Make a schedule. With an `Idempotency-Key` (the backstage form's request key), the same
    request again names the same schedule and makes nothing more (a double click, a retry)."""
    await _require_manager(svc, actor, spec.team_id)
    schedule_id = (
        short_id_from(f"schedule:{spec.team_id}:{actor.user_id}:{idempotency_key}")
        if idempotency_key
        else new_short_id()
    )
    if idempotency_key:
        try:
            return await _stored(svc, schedule_id)
        except ServiceError as error:
            if error.status != 404:
                raise
    await check_spec(svc, actor, spec, schedule_id=None)
    now = datetime.now(UTC)
    schedule = Schedule(**dict(spec), id=schedule_id, created_by=actor.user_id, updated_at=now)
    await svc.temporal.start_workflow(
        ScheduleWorkflow.run,
        ScheduleState(schedule=schedule, told_until=now),
        id=schedule_workflow_id(schedule.id),
        task_queue=svc.settings.temporal_task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.SCHEDULE_TEAM_ID, spec.team_id)]),
        memo={SCHEDULE_MEMO: schedule.model_dump(mode="json")},
        static_summary=f"On-call schedule: {schedule.name}",
        static_details=f"Team {schedule.team_id} · created by {actor.mention}",
        # The same request at the same moment (its key): one schedule, the other sees it.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING if idempotency_key else WorkflowIDConflictPolicy.FAIL,
        rpc_timeout=svc.rpc_timeout,
    )
    return schedule


async def _stored(svc: Services, schedule_id: str) -> Schedule:
    if not SHORT_ID.match(schedule_id):
        raise not_found("Schedule")
    try:
        schedule: Schedule | None = await query(
            _handle(svc, schedule_id), ScheduleWorkflow.schedule, rpc_timeout=svc.rpc_timeout
        )
    except Gone:
        raise not_found("Schedule") from None
    if schedule is None:
        raise not_found("Schedule")
    return schedule


async def get_schedule(svc: Services, actor: Actor, schedule_id: str) -> Schedule:
    """The schedule, for a member of its team (anyone else: "Schedule not found")."""
    schedule = await _stored(svc, schedule_id)
    await _require_member(svc, actor, schedule.team_id, "Schedule")
    return schedule


async def _listed(svc: Services, team_id: str) -> list[Schedule]:
    clauses = [
        "WorkflowType = 'ScheduleWorkflow'",
        "ExecutionStatus = 'Running'",
        f"ScheduleTeamId = {quote(team_id)}",
    ]
    schedules = [
        await execution.memo_value(SCHEDULE_MEMO, type_hint=Schedule)
        async for execution in svc.temporal.list_workflows(" AND ".join(clauses), rpc_timeout=svc.rpc_timeout)
    ]
    return sorted(schedules, key=lambda s: (name_key(s.name), s.id))


async def list_schedules(svc: Services, actor: Actor, team_id: str) -> list[Schedule]:
    """The team's schedules, by name (members of the team)."""
    await _require_member(svc, actor, team_id)
    return await _listed(svc, team_id)


async def find_by_name(svc: Services, actor: Actor, team_id: str, name: str) -> Schedule | None:
    """The team's schedule of that name (case aside), for `/incident oncall <name>` and `/incident page <name>`."""
    for schedule in await list_schedules(svc, actor, team_id):
        if name_key(schedule.name) == name_key(name.strip()):
            return schedule
    return None


async def _change(svc: Services, schedule_id: str, update: Any, command: Any) -> Schedule:
    changed: Schedule = await update_or_not_found(
        _handle(svc, schedule_id), update, command, what="Schedule", rpc_timeout=svc.rpc_timeout, result_type=Schedule
    )
    return changed


async def update_schedule(svc: Services, actor: Actor, schedule_id: str, spec: ScheduleSpec) -> Schedule:
    """Replace the schedule with `spec` (its team stays: a schedule does not move)."""
    current = await _stored(svc, schedule_id)
    await _require_manager(svc, actor, current.team_id, "Schedule")
    if spec.team_id != current.team_id:
        raise invalid(
            "A schedule cannot move to another team; create one there instead.",
            {"team_id": f"must stay {current.team_id}"},
        )
    await check_spec(svc, actor, spec, schedule_id=schedule_id)
    schedule = Schedule(**dict(spec), id=schedule_id, created_by=current.created_by, updated_at=datetime.now(UTC))
    return await _change(svc, schedule_id, ScheduleWorkflow.update_schedule, ChangeSchedule(schedule=schedule))


async def delete_schedule(svc: Services, actor: Actor, schedule_id: str) -> None:
    current = await _stored(svc, schedule_id)
    await _require_manager(svc, actor, current.team_id, "Schedule")
    await _change(svc, schedule_id, ScheduleWorkflow.delete_schedule, DeleteSchedule(actor_id=actor.user_id))


async def oncall_view(svc: Services, schedule: Schedule, at: datetime) -> OncallView:
    """Who is on call in `schedule` at `at` (with their usernames), and the next handoffs."""
    try:
        at = in_years(at)
    except ValueError as error:
        raise invalid(f"The time asked about {error}.", {"at": str(error)}) from None
    people = []
    for user_id in oncall_at(schedule, at):
        user = await svc.facts.user_by_id(user_id)
        people.append(OncallPerson(user_id=user_id, username=str((user or {}).get("username", ""))))
    return OncallView(at=at, oncall=people, next_handoffs=next_handoffs(schedule, at, HANDOFFS_SHOWN))


async def oncall(svc: Services, actor: Actor, schedule_id: str, at: datetime | None = None) -> OncallView:
    schedule = await get_schedule(svc, actor, schedule_id)
    return await oncall_view(svc, schedule, at or datetime.now(UTC))


async def usernames(svc: Services, user_ids: list[str]) -> dict[str, str]:
    """Usernames of these people, as Mattermost tells them (cached); an unknown one is left out."""
    names: dict[str, str] = {}
    for user_id in dict.fromkeys(user_ids):
        user = await svc.facts.user_by_id(user_id)
        if user is not None and user.get("username"):
            names[user_id] = str(user["username"])
    return names
