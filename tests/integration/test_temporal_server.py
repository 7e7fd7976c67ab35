"""The embedded Temporal server: search attributes, persistence, the worker's wiring."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest, RemoveSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from devstack.embedded_http import free_port
from devstack.temporal_dev_server import RETENTION, TemporalDevServer, prepare_namespace
from models import search_attributes
from models.common import new_short_id
from models.playbook import Playbook, PlaybookEdit, PlaybookStart, StageSpec, playbook_workflow_id
from tests.harness import Stack, eventually
from workflows.playbook_workflow import PlaybookWorkflow


async def test_a_workflow_runs_on_the_worker_and_shows_in_visibility(stack: Stack) -> None:
    now = datetime.now(UTC)
    team = "q" * 26
    playbook = Playbook(
        id=new_short_id(),
        team_id=team,
        title="Smoke",
        checklists=[StageSpec(title="Only")],
        member_ids=[stack.admin["id"]],
        version=1,
        created_at=now,
        updated_at=now,
        created_by=stack.admin["id"],
    )
    handle = await stack.temporal.start_workflow(
        PlaybookWorkflow.run,
        PlaybookStart(playbook=playbook, edits=[PlaybookEdit(version=1, editor_id="x", at=now, summary=["created"])]),
        id=playbook_workflow_id(playbook.id),
        task_queue=stack.settings.temporal_task_queue,
    )
    assert (await handle.query(PlaybookWorkflow.get_playbook)).title == "Smoke"
    found = await eventually(
        lambda: _list(stack, f"PlaybookTeamId = '{team}' AND PlaybookTitle = 'Smoke'"),
        lambda ids: ids == [handle.id],
        what="the playbook workflow in visibility",
    )
    assert found == [handle.id]


async def _list(stack: Stack, query: str) -> list[str]:
    return [execution.id async for execution in stack.temporal.list_workflows(query)]


async def test_persisted_server_keeps_data_and_registers_new_attributes(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    server = TemporalDevServer(port=free_port(), db_file=db)
    client = await server.start()
    try:
        names = await _custom_attributes(client)
        assert {key.name for key in search_attributes.ALL} <= names
        described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
        assert described.config.workflow_execution_retention_ttl.ToTimedelta() == RETENTION
        # An attribute added in a later release is missing from an existing database...
        await client.operator_service.remove_search_attributes(
            RemoveSearchAttributesRequest(namespace="default", search_attributes=["IncidentStage"])
        )
    finally:
        await server.stop()
    # ...and `start-dev --search-attribute` ignores an existing database, so we register it.
    restarted = TemporalDevServer(port=free_port(), db_file=db)
    client = await restarted.start()
    try:
        assert "IncidentStage" in await _custom_attributes(client)
        await prepare_namespace(client, "default", set_retention=True)  # idempotent
    finally:
        await restarted.stop()


async def _custom_attributes(client: object) -> set[str]:
    response = await client.operator_service.list_search_attributes(  # type: ignore[attr-defined]
        ListSearchAttributesRequest(namespace="default")
    )
    return set(response.custom_attributes)
