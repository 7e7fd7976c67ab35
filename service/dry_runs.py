"""Dry-run a playbook change: a proposed spec tried against the playbook's last ended incidents.

For people who may edit the playbook (anyone else: 404, before anything is read). The proposal
is checked as an edit would be (the spec's fields, the people and channels it names: 422 naming
each field at fault); then the playbook's most recently ended incidents that the caller may see
are found in visibility (`IncidentPlaybookId`, newest end first), each one's history is read
from Temporal (`service.incident_history`) and replayed with the proposal
(`workflows.incident_dry_run`). Nothing is written: no workflow is started, signalled or
updated, and no Mattermost call is made but the reads of the people and channels the spec names.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from models.common import Actor
from models.incident import IncidentStatus
from models.incident_views import IncidentSummary
from models.playbook import Playbook, PlaybookFacts, PlaybookSpec
from models.playbook_dry_run import DryRunRequest, DryRunSummary, IncidentDryRun, PlaybookDryRun
from service import playbooks
from service.container import Services
from service.errors import invalid
from service.incident_history import fetch_histories, incident_steps
from service.incident_lists import IncidentFilter, list_incidents
from service.temporal_calls import refused
from service.unavailability import rpc_error
from workflows.incident_dry_run import dry_run
from workflows.playbook_rules import check_spec

# How many incidents' histories are read at once.
READ_AT_ONCE = 4


async def dry_run_playbook(svc: Services, actor: Actor, playbook_id: str, asked: DryRunRequest) -> PlaybookDryRun:
    """The proposal (`asked.spec`) against the playbook's last `asked.last` ended incidents."""
    return await dry_run_loaded(svc, actor, await playbooks.get_playbook(svc, actor, playbook_id), asked)


async def dry_run_loaded(svc: Services, actor: Actor, playbook: Playbook, asked: DryRunRequest) -> PlaybookDryRun:
    """`dry_run_playbook` for a playbook the actor has just loaded (`playbooks.get_playbook`,
    which checked that they may edit it)."""
    playbook_id = playbook.id
    spec = asked.spec
    facts = await check_proposal(svc, actor, playbook.team_id, spec)
    ended = await last_ended(svc, actor, playbook.team_id, playbook_id, asked.last)
    gate = asyncio.Semaphore(READ_AT_ONCE)

    async def one(summary: IncidentSummary) -> IncidentDryRun:
        async with gate:
            try:
                histories = await fetch_histories(svc.temporal, summary.id, rpc_timeout=svc.rpc_timeout)
            except RPCError as error:
                raise rpc_error(error) from None
            steps = await incident_steps(histories, svc.temporal.data_converter)
        # Pure and CPU-bound: off the event loop.
        return await asyncio.to_thread(dry_run, steps, spec, people=list(facts.users.values()))

    incidents = await asyncio.gather(*(one(summary) for summary in ended))
    return PlaybookDryRun(
        playbook_id=playbook.id,
        version=playbook.version,
        last=asked.last,
        incidents=list(incidents),
        summary=DryRunSummary(
            incidents=len(incidents),
            with_differences=sum(1 for incident in incidents if incident.differences),
            refused_commands=sum(len(incident.refused) for incident in incidents),
        ),
    )


async def check_proposal(svc: Services, actor: Actor, team_id: str, spec: PlaybookSpec) -> PlaybookFacts:
    """The checks an edit of the playbook makes of its spec (`workflows.playbook_rules.check_spec`);
    the facts of the people and channels it names."""
    if not spec.member_ids:
        raise invalid("A playbook needs at least one member.", {"member_ids": "at least one member"})
    facts = await playbooks.playbook_facts(svc, actor, team_id, spec)
    try:
        check_spec(spec, facts)
    except ApplicationError as refusal:
        raise refused(refusal) from None
    return facts


async def last_ended(svc: Services, actor: Actor, team_id: str, playbook_id: str, last: int) -> list[IncidentSummary]:
    """The playbook's `last` most recently ended incidents the actor may see, newest end first."""
    found = await list_incidents(
        svc, actor, team_id, IncidentFilter(status=IncidentStatus.ENDED, playbook_id=playbook_id)
    )
    never = datetime.min.replace(tzinfo=UTC)
    found.sort(key=lambda summary: (summary.ended_at or never, summary.id), reverse=True)
    return found[:last]
