"""`service.temporal_calls` against the real Temporal server: what the SDK leaves behind."""

from __future__ import annotations

import gc
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.common import Actor
from models.severity import DEFAULT_LEVELS
from models.team_settings import SetSeverityLevels, TeamSettings
from service.temporal_calls import execute_update_with_start
from tests.harness import World
from workflows.team_settings_workflow import TeamSettingsWorkflow


async def test_a_refused_start_in_update_with_start_leaves_no_error_unseen(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A start refused inside update-with-start (here: the id is taken and the policy is FAIL)
    sets its error on a future the SDK keeps for `workflow_handle()`. Nobody awaits it, so
    asyncio would log "Future exception was never retrieved" when it is collected; in CPython
    3.11 a collection inside the AST builder even broke an unrelated test (gh-106905)."""
    client = world.stack.temporal
    queue = world.stack.settings.temporal_task_queue
    workflow_id = f"team-settings-taken-{uuid.uuid4().hex[:8]}"
    team = TeamSettings(team_id=uuid.uuid4().hex[:26])
    await client.start_workflow(TeamSettingsWorkflow.run, team, id=workflow_id, task_queue=queue)
    operation = WithStartWorkflowOperation(
        TeamSettingsWorkflow.run,
        team,
        id=workflow_id,
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    command = SetSeverityLevels(
        actor=Actor(user_id=world.users["admin"].id),
        is_team_admin=True,
        levels=list(DEFAULT_LEVELS),
        at=datetime.now(UTC),
    )
    caplog.set_level(logging.ERROR, logger="asyncio")
    with pytest.raises(WorkflowAlreadyStartedError):
        await execute_update_with_start(
            client,
            TeamSettingsWorkflow.set_severity_levels,
            command,
            start=operation,
            workflow_id=workflow_id,
            rpc_timeout=timedelta(seconds=10),
        )
    del operation
    gc.collect()
    assert "never retrieved" not in caplog.text
