"""Playbook operations shared by the REST API and the slash commands.

Each function gathers the facts the access rules need, applies `permissions`, and calls
the playbook's workflow. What a caller may not see is "not found", never "forbidden".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

import permissions
from models import search_attributes as sa
from models.common import SHORT_ID, Actor, new_short_id, reminder_problem, short_id_from
from models.playbook import (
    ArchivePlaybook,
    Playbook,
    PlaybookEdit,
    PlaybookSpec,
    PlaybookStart,
    PlaybookSummary,
    UpdatePlaybook,
    playbook_workflow_id,
    summarize,
)
from models.refusals import Refusal
from service.container import Services
from service.errors import ServiceError, not_found
from service.pagination import Page, PageParams, paginate
from service.temporal_calls import Gone, execute_update, query, quote
from workflows.playbook_workflow import SUMMARY_MEMO, PlaybookWorkflow

SortKey = Literal["title", "stages", "steps", "updated_at"]
SORT_KEYS: dict[str, Any] = {
    "title": lambda p: (p.title.casefold(), p.id),
    "stages": lambda p: (p.stage_count, p.title.casefold()),
    "steps": lambda p: (p.step_count, p.title.casefold()),
    "updated_at": lambda p: (p.updated_at, p.id),
}


async def require_team(svc: Services, actor: Actor, team_id: str) -> None:
    """Only members of a team see anything of it; others learn nothing, not even that it exists."""
    is_member = await svc.facts.is_team_member(team_id, actor.user_id)
    if not permissions.can_see_team(actor, is_team_member=is_member):
        raise not_found("Team")


async def check_spec(svc: Services, actor: Actor, team_id: str, spec: PlaybookSpec) -> None:
    """The rules pydantic cannot check: people and channels must exist and belong to the team."""
    fields: dict[str, str] = {}
    people = [
        *((f"member_ids[{i}]", u) for i, u in enumerate(spec.member_ids)),
        *((f"invited_user_ids[{i}]", u) for i, u in enumerate(spec.invited_user_ids)),
        *((("default_commander_id", spec.default_commander_id),) if spec.default_commander_id else ()),
    ]
    found = {u["id"]: u for u in await svc.mattermost.get_users_by_ids(u for _, u in people)}
    in_team = dict(
        zip(
            found,
            await asyncio.gather(*(svc.facts.is_team_member(team_id, user_id) for user_id in found)),
            strict=True,
        )
    )
    for field, user_id in people:
        if user_id not in found:
            fields[field] = f"no user has the id {user_id}"
        elif not in_team[user_id]:
            fields[field] = f"@{found[user_id]['username']} is not a member of this team"
        elif field == "default_commander_id" and found[user_id].get("is_bot"):
            fields[field] = f"@{found[user_id]['username']} is a bot and cannot be the commander"
    reminder = reminder_problem(spec.reminder_timer_default_seconds, svc.settings.reminder_min_seconds)
    if reminder:
        fields["reminder_timer_default_seconds"] = reminder
    for index, channel_id in enumerate(spec.broadcast_channel_ids):
        problem = await _broadcast_problem(svc, actor, team_id, channel_id)
        if problem:
            fields[f"broadcast_channel_ids[{index}]"] = problem
    if fields:
        raise ServiceError(422, "validation_error", "The playbook refers to people or channels it cannot use.", fields)


async def _broadcast_problem(svc: Services, actor: Actor, team_id: str, channel_id: str) -> str | None:
    channel = await svc.facts.visible_channel(actor, channel_id)
    if channel is None or channel.get("team_id") != team_id:
        return f"no channel {channel_id} that you can see in this team"
    fact = await svc.facts.channel_fact(actor, channel)
    if not fact.actor_can_post:
        return f"you cannot post in ~{channel['name']}"
    if channel.get("type") != "O":
        bot = await svc.mattermost.bot_user()
        if not await svc.mattermost.is_channel_member(channel_id, bot["id"]):
            return f"~{channel['name']} is private: add @{bot['username']} to it first"
    return None


async def create_playbook(
    svc: Services, actor: Actor, team_id: str, spec: PlaybookSpec, *, idempotency_key: str | None = None
) -> Playbook:
    await require_team(svc, actor, team_id)
    if actor.user_id not in spec.member_ids:
        spec = spec.model_copy(update={"member_ids": [actor.user_id, *spec.member_ids]})
    await check_spec(svc, actor, team_id, spec)
    now = datetime.now(UTC)
    playbook_id = (
        short_id_from(f"playbook:{team_id}:{actor.user_id}:{idempotency_key}") if idempotency_key else (new_short_id())
    )
    playbook = Playbook(
        **spec.model_dump(),
        id=playbook_id,
        team_id=team_id,
        version=1,
        created_at=now,
        updated_at=now,
        created_by=actor.user_id,
    )
    start = PlaybookStart(
        playbook=playbook,
        edits=[PlaybookEdit(version=1, editor_id=actor.user_id, at=now, summary=["created"])],
    )
    try:
        handle = await svc.temporal.start_workflow(
            PlaybookWorkflow.run,
            start,
            id=playbook_workflow_id(playbook_id),
            task_queue=svc.settings.temporal_task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.PLAYBOOK_TEAM_ID, team_id),
                    SearchAttributePair(sa.PLAYBOOK_MEMBER_IDS, list(playbook.member_ids)),
                    SearchAttributePair(sa.PLAYBOOK_TITLE, playbook.title),
                ]
            ),
            memo={SUMMARY_MEMO: summarize(playbook).model_dump(mode="json")},
            static_summary=f"Playbook: {playbook.title}",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
            if idempotency_key
            else WorkflowIDConflictPolicy.FAIL,
            rpc_timeout=svc.rpc_timeout,
        )
    except WorkflowAlreadyStartedError:
        raise ServiceError(409, "conflict", "A playbook with this id already exists; try again.") from None
    if idempotency_key:
        return await _read(svc, handle)
    return playbook


def _handle(svc: Services, playbook_id: str) -> WorkflowHandle[Any, Any]:
    return svc.temporal.get_workflow_handle(playbook_workflow_id(playbook_id))


async def _read(svc: Services, handle: WorkflowHandle[Any, Any]) -> Playbook:
    result: Playbook = await query(handle, PlaybookWorkflow.get_playbook, rpc_timeout=svc.rpc_timeout)
    return result


async def _accessible(svc: Services, actor: Actor, playbook_id: str) -> tuple[Playbook, bool]:
    """The playbook and the actor's team membership, if the actor may use it; else "not found"."""
    if not SHORT_ID.match(playbook_id):
        raise not_found("Playbook")
    try:
        playbook = await _read(svc, _handle(svc, playbook_id))
    except Gone:
        raise not_found("Playbook") from None
    if playbook.archived:
        raise not_found("Playbook")
    is_team_member = await svc.facts.is_team_member(playbook.team_id, actor.user_id)
    if not permissions.can_use_playbook(actor, is_team_member=is_team_member, member_ids=playbook.member_ids):
        raise not_found("Playbook")
    return playbook, is_team_member


async def get_playbook(svc: Services, actor: Actor, playbook_id: str) -> Playbook:
    playbook, _ = await _accessible(svc, actor, playbook_id)
    return playbook


async def list_playbooks(
    svc: Services, actor: Actor, team_id: str, *, sort: SortKey, params: PageParams
) -> Page[PlaybookSummary]:
    """The team's playbooks the actor may use, read from visibility (one listing, no queries)."""
    await require_team(svc, actor, team_id)
    clauses = [
        "WorkflowType = 'PlaybookWorkflow'",
        "ExecutionStatus = 'Running'",
        f"PlaybookTeamId = {quote(team_id)}",
    ]
    if not actor.is_system_admin:
        clauses.append(f"PlaybookMemberIds = {quote(actor.user_id)}")
    summaries = [
        await execution.memo_value(SUMMARY_MEMO, type_hint=PlaybookSummary)
        async for execution in svc.temporal.list_workflows(" AND ".join(clauses), rpc_timeout=svc.rpc_timeout)
    ]
    return paginate(summaries, SORT_KEYS[sort], params, default="desc" if sort == "updated_at" else "asc")


_HIDE_FORBIDDEN = {Refusal.FORBIDDEN: not_found("Playbook"), Refusal.NOT_FOUND: not_found("Playbook")}


async def update_playbook(
    svc: Services, actor: Actor, playbook_id: str, spec: PlaybookSpec, expected_version: int
) -> Playbook:
    current, is_team_member = await _accessible(svc, actor, playbook_id)
    await check_spec(svc, actor, current.team_id, spec)
    command = UpdatePlaybook(actor=actor, is_team_member=is_team_member, spec=spec, expected_version=expected_version)
    try:
        updated: Playbook = await execute_update(
            _handle(svc, playbook_id),
            PlaybookWorkflow.update_playbook,
            command,
            rpc_timeout=svc.rpc_timeout,
            refusal_override=_HIDE_FORBIDDEN,
        )
    except Gone:
        raise not_found("Playbook") from None
    return updated


async def archive_playbook(svc: Services, actor: Actor, playbook_id: str) -> Playbook:
    _, is_team_member = await _accessible(svc, actor, playbook_id)
    try:
        archived: Playbook = await execute_update(
            _handle(svc, playbook_id),
            PlaybookWorkflow.archive_playbook,
            ArchivePlaybook(actor=actor, is_team_member=is_team_member),
            rpc_timeout=svc.rpc_timeout,
            refusal_override=_HIDE_FORBIDDEN,
        )
    except Gone:
        raise not_found("Playbook") from None
    return archived


async def playbook_history(svc: Services, actor: Actor, playbook_id: str) -> list[PlaybookEdit]:
    await get_playbook(svc, actor, playbook_id)
    edits: list[PlaybookEdit] = await query(
        _handle(svc, playbook_id), PlaybookWorkflow.get_history, rpc_timeout=svc.rpc_timeout
    )
    return edits
