"""The open items assigned to a person in every ongoing incident they can see: `/incident todo`,
`GET /api/v1/me/todo` and the backstage's *My open items*.

Visibility finds the incidents to read: those whose `IncidentOpenAssignees` names the person
(each ongoing incident keeps it while anyone has an open item there), under the same access
clause as the lists (`permissions.incident_query_filter`). Only those are read, one query
each, and each is kept only if the person may see it now (`incident_access.load`, with live
facts: a private incident they were removed from is not shown). Overdue items first, then
those with a due time, soonest first, then the rest (`models.incident_views.todo_order`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import permissions
from models import search_attributes as sa
from models.common import Actor
from models.incident_views import OpenItem, open_items_of, todo_order
from service import incident_access
from service.container import Services
from service.errors import ServiceError
from service.temporal_calls import quote

# The incidents one list reads at most (the person's items in more are left out, and it says so).
INCIDENTS_READ_MAX = 100
# How many incidents are read at once.
READS_AT_ONCE = 8


@dataclass
class OpenItems:
    items: list[OpenItem]
    # More incidents than `INCIDENTS_READ_MAX` have items of the person's: some are not listed.
    incomplete: bool = False


def todo_query(actor: Actor) -> str:
    """The visibility query of the ongoing incidents where `actor` has open items, that they may see."""
    clauses = [
        "WorkflowType = 'IncidentWorkflow'",
        "ExecutionStatus = 'Running'",
        "IncidentStatus = 'ongoing'",
        f"{sa.INCIDENT_OPEN_ASSIGNEES.name} = {quote(actor.user_id)}",
    ]
    restriction = permissions.incident_query_filter(actor)
    if restriction:
        clauses.append(restriction)
    return " AND ".join(clauses)


async def open_items(svc: Services, actor: Actor) -> OpenItems:
    """Every open item assigned to `actor` in the ongoing incidents they may see, in `todo_order`."""
    incident_ids: list[str] = []
    async for execution in svc.temporal.list_workflows(
        todo_query(actor), limit=INCIDENTS_READ_MAX + 1, rpc_timeout=svc.rpc_timeout
    ):
        incident_id = execution.id.removeprefix("incident-")
        if incident_id not in incident_ids:
            incident_ids.append(incident_id)
    incomplete = len(incident_ids) > INCIDENTS_READ_MAX
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def read(incident_id: str) -> list[OpenItem]:
        async with gate:
            try:
                access = await incident_access.load(svc, actor, incident_id)
            except ServiceError as error:
                if error.status == 404:
                    return []  # gone, or no longer theirs to see
                raise
        return open_items_of(access.state, actor.user_id)

    found = await asyncio.gather(*(read(incident_id) for incident_id in incident_ids[:INCIDENTS_READ_MAX]))
    items = sorted((item for listed in found for item in listed), key=todo_order)
    return OpenItems(items=items, incomplete=incomplete)
