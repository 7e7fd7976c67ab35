"""Playbook operations shared by the REST API, the slash commands, the backstage and YAML import.

Each function gathers the facts the rules need and calls the playbook's workflow, which
decides (`workflows.playbook_rules`); reads apply `permissions`. What a caller may not see
is "not found", never "forbidden".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

import permissions
from models import search_attributes as sa
from models.common import SHORT_ID, Actor, new_short_id, short_id_from
from models.paging import policy_user_ids
from models.playbook import (
    ArchivePlaybook,
    BroadcastChannelFact,
    OpenPlaybook,
    Playbook,
    PlaybookCommand,
    PlaybookEdit,
    PlaybookFacts,
    PlaybookSpec,
    PlaybookStart,
    PlaybookSummary,
    UpdatePlaybook,
    playbook_workflow_id,
    summarize,
)
from models.playbook_automation import rule_channel_ids, rule_user_ids
from models.refusals import Refusal
from service import oncall_schedules, team_configuration
from service.container import Services
from service.errors import ServiceError, not_found
from service.pagination import MAX_PER_PAGE, Page, PageParams, paginate
from service.temporal_calls import Gone, execute_update, execute_update_with_start, query, quote
from workflows.playbook_rules import with_creator
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


async def _schedules(svc: Services, actor: Actor, team_id: str, spec: PlaybookSpec) -> dict[str, str]:
    """The schedules of the team that the escalation policy names (one that is not there is left out)."""
    wanted = {t.schedule_id for tier in (spec.escalation.tiers if spec.escalation else []) for t in tier.targets}
    wanted.discard(None)
    if not wanted:
        return {}
    return {s.id: s.name for s in await oncall_schedules.list_schedules(svc, actor, team_id) if s.id in wanted}


async def playbook_facts(svc: Services, actor: Actor, team_id: str, spec: PlaybookSpec) -> PlaybookFacts:
    """What the playbook rules need to know of the people and channels the spec names."""
    people = {
        *spec.member_ids,
        *spec.invited_user_ids,
        *([spec.default_commander_id] if spec.default_commander_id else []),
        *rule_user_ids(spec.rules),
        *policy_user_ids(spec.escalation),
    }
    found = await svc.mattermost.get_users_by_ids(sorted(str(u) for u in people))
    users = await asyncio.gather(*(svc.facts.user_fact(user, team_id=team_id, channel_id=None) for user in found))
    named = list(dict.fromkeys([*spec.broadcast_channel_ids, *rule_channel_ids(spec.rules)]))
    channels = await asyncio.gather(*(_broadcast_fact(svc, actor, team_id, c) for c in named))
    bot = await svc.mattermost.bot_user()
    # Read only when the spec names a severity level: most playbooks name none.
    levels = await team_configuration.severity_levels(svc, team_id) if spec.default_severity else []
    return PlaybookFacts(
        users={user.user_id: user for user in users},
        channels={channel.channel_id: channel for channel in channels},
        schedules=await _schedules(svc, actor, team_id, spec),
        bot_username=str(bot["username"]),
        reminder_min_seconds=svc.settings.reminder_min_seconds,
        severity_level_count=len(levels),
    )


async def _broadcast_fact(svc: Services, actor: Actor, team_id: str, channel_id: str) -> BroadcastChannelFact:
    channel = await svc.facts.visible_channel(actor, channel_id)
    if channel is None or channel.get("team_id") != team_id:
        return BroadcastChannelFact(channel_id=channel_id)
    fact = await svc.facts.channel_fact(actor, channel)
    bot = await svc.mattermost.bot_user()
    private_without_bot = channel.get("type") != "O" and not await svc.mattermost.is_channel_member(
        channel_id, bot["id"]
    )
    return BroadcastChannelFact(
        channel_id=channel_id,
        name=str(channel["name"]),
        visible_in_team=True,
        actor_can_post=fact.actor_can_post,
        private_without_bot=private_without_bot,
    )


async def create_playbook(
    svc: Services, actor: Actor, team_id: str, spec: PlaybookSpec, *, idempotency_key: str | None = None
) -> Playbook:
    """Create a playbook: the facts gathered, then one update-with-start; the playbook's workflow
    runs the rules and answers with the playbook or the refusal (a refused one is never listed)."""
    is_team_member = await svc.facts.is_team_member(team_id, actor.user_id)
    facts = await playbook_facts(svc, actor, team_id, with_creator(spec, actor.user_id))
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
        creator=PlaybookCommand(actor=actor, is_team_member=is_team_member),
        facts=facts,
    )
    # What lists show from the first moment (the workflow keeps it current, the creator a member).
    listed = playbook.model_copy(update={"member_ids": with_creator(spec, actor.user_id).member_ids})
    operation = WithStartWorkflowOperation(
        PlaybookWorkflow.run,
        start,
        id=playbook_workflow_id(playbook_id),
        task_queue=svc.settings.temporal_task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.PLAYBOOK_TEAM_ID, team_id),
                SearchAttributePair(sa.PLAYBOOK_MEMBER_IDS, list(listed.member_ids)),
                SearchAttributePair(sa.PLAYBOOK_TITLE, playbook.title),
            ]
        ),
        memo={SUMMARY_MEMO: summarize(listed).model_dump(mode="json")},
        static_summary=f"Playbook: {playbook.title}",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING if idempotency_key else WorkflowIDConflictPolicy.FAIL,
    )
    try:
        created: Playbook = await execute_update_with_start(
            svc.temporal,
            PlaybookWorkflow.open_playbook,
            OpenPlaybook(),
            start=operation,
            workflow_id=playbook_workflow_id(playbook_id),
            rpc_timeout=svc.rpc_timeout,
            result_type=Playbook,
        )
    except WorkflowAlreadyStartedError:
        raise ServiceError(409, "conflict", "A playbook with this id already exists; try again.") from None
    return created


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


async def usable_playbooks(svc: Services, actor: Actor, team_id: str) -> list[PlaybookSummary]:
    """What a chooser offers (start a new incident, filter by playbook): the team's playbooks the
    actor may use, by title, the first MAX_PER_PAGE of them."""
    page = await list_playbooks(
        svc, actor, team_id, sort="title", params=PageParams(page=0, per_page=MAX_PER_PAGE, direction="asc")
    )
    return page.items


_HIDE_FORBIDDEN = {Refusal.FORBIDDEN: not_found("Playbook"), Refusal.NOT_FOUND: not_found("Playbook")}


async def update_playbook(
    svc: Services, actor: Actor, playbook_id: str, spec: PlaybookSpec, expected_version: int
) -> Playbook:
    current, is_team_member = await _accessible(svc, actor, playbook_id)
    facts = await playbook_facts(svc, actor, current.team_id, spec)
    command = UpdatePlaybook(
        actor=actor, is_team_member=is_team_member, spec=spec, expected_version=expected_version, facts=facts
    )
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
