"""Starting and driving incidents through the workflow's own client API (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from models import search_attributes as sa
from models.command_table import update_name
from models.common import Actor, UserFact, new_short_id
from models.incident import IncidentStart, IncidentState
from models.incident_commands import AddItem, CommandResult, IncidentCommand
from models.playbook import ChecklistItemSpec, Playbook, StageSpec
from service.incident_starts import incident_config, start_options
from tests.harness import Stack, User, World, eventually
from workflows.incident_workflow import IncidentWorkflow


def actor(user: User, *, member: bool = True, admin: bool = False) -> Actor:
    return Actor(
        user_id=user.id, username=user.username, is_channel_member=member, is_system_admin=admin, is_team_member=True
    )


def fact(user: User, *, member: bool = True, team: bool = True) -> UserFact:
    return UserFact(user_id=user.id, username=user.username, is_channel_member=member, is_team_member=team)


def playbook(world: World, **fields: Any) -> Playbook:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": new_short_id(),
        "team_id": world.team_id,
        "title": "Database outage",
        "checklists": [
            StageSpec(title="Triage", items=[ChecklistItemSpec(title="Page DBA"), ChecklistItemSpec(title="Logs")]),
            StageSpec(title="Mitigate", items=[ChecklistItemSpec(title="Fail over", command="/db failover")]),
        ],
        "member_ids": [world.alice.id],
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "created_by": world.alice.id,
    }
    values.update(fields)
    return Playbook(**values)


async def start(
    world: World,
    *,
    reporter: User | None = None,
    book: Playbook | None = None,
    client: Client | None = None,
    task_queue: str | None = None,
    recorded_channel_id: str | None = None,
    task_timeout: timedelta | None = None,
    **fields: Any,
) -> WorkflowHandle[Any, Any]:
    """Start an incident directly on Temporal (optionally another server or task queue, and with
    a channel already recorded as its own, for a workflow that cannot record it itself)."""
    stack: Stack = world.stack
    incident_id = fields.pop("id", None) or new_short_id()
    values: dict[str, Any] = {
        "id": incident_id,
        "team_id": world.team_id,
        "team_name": world.team["name"],
        "name": "Primary DB down",
        "reporter": actor(reporter or world.alice),
        "reporter_permissions": ["create_private_channel", "create_public_channel"],
        "playbook": book,
        "config": incident_config(stack.settings, incident_id),
    }
    values.update(fields)
    start = IncidentStart(**values)
    options = start_options(stack.settings, start, book, world.team["display_name"])
    if task_queue:
        options["task_queue"] = task_queue
    if task_timeout:
        options["task_timeout"] = task_timeout
    if recorded_channel_id:
        options["search_attributes"] = TypedSearchAttributes(
            [
                *options["search_attributes"].search_attributes,
                SearchAttributePair(sa.INCIDENT_CHANNEL_ID, recorded_channel_id),
            ]
        )
    return await (client or stack.temporal).start_workflow(IncidentWorkflow.run, start, **options)


async def state(handle: WorkflowHandle[Any, Any]) -> IncidentState:
    result: IncidentState = await handle.query(IncidentWorkflow.get_state)
    return result


async def ready(world: World, handle: WorkflowHandle[Any, Any]) -> IncidentState:
    """The incident once its channel exists and its opening post is there."""

    async def probe() -> IncidentState:
        return await state(handle)

    return await eventually(probe, lambda s: s.channel_id is not None and "opening" in s.post_ids)


async def settled(handle: WorkflowHandle[Any, Any]) -> IncidentState:
    """The incident once its channel exists and every queued side effect has been carried out."""
    return await eventually(
        lambda: state(handle), lambda s: s.channel_id is not None and not s.outbox, what="the outbox to drain"
    )


async def update(handle: WorkflowHandle[Any, Any], command: IncidentCommand) -> CommandResult:
    result: CommandResult = await handle.execute_update(update_name(command), command, result_type=CommandResult)
    return result


def messages(world: World, channel_id: str) -> list[str]:
    return [post["message"] for post in world.standin.posts(channel_id)]


async def add_steps(handle: WorkflowHandle[Any, Any], by: Actor, count: int) -> None:
    """`count` items, "Step 0" on, added one by one to the first stage."""
    for n in range(count):
        await update(handle, AddItem(actor=by, stage=0, title=f"Step {n}"))
