"""What a person sees when the service or one incident is broken: always a reply (HTTP 200)
within `SLASH_REPLY_SECONDS`, saying which of the two it is."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from temporalio import workflow
from temporalio.worker import Worker

from api.app import create_app
from devstack.embedded_http import free_port, serve
from models.common import new_short_id
from service.unavailability import SERVICE_UNAVAILABLE
from tests.harness import World, eventually, own_server, stack_settings
from tests.integration import incident_helpers
from tests.integration.slash_helpers import slash_form

REPLY_SECONDS = 2.0


@workflow.defn(name="IncidentWorkflow", sandboxed=False)
class BrokenIncident:
    """An incident workflow whose code fails every workflow task, as a bad deployment would."""

    @workflow.run
    async def run(self, start: Any) -> None:
        raise RuntimeError("a bug in the workflow code")


async def timed_slash(url: str, form: dict[str, str]) -> tuple[httpx.Response, float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        began = asyncio.get_running_loop().time()
        response = await http.post("/mattermost/slash", data=form)
        return response, asyncio.get_running_loop().time() - began


async def test_slash_commands_answer_at_once_that_the_service_is_unavailable_while_temporal_is_down(
    world: World,
) -> None:
    async with own_server() as (temporal_server, client):
        stack = world.stack
        settings = stack_settings(
            temporal_address=temporal_server.address,
            mattermost_url=stack.settings.mattermost_url,
            mattermost_bot_token=stack.settings.mattermost_bot_token,
            mattermost_slash_token=world.command["token"],
            api_port=free_port(),
            slash_reply_seconds=REPLY_SECONDS,
        )
        api = await serve(create_app(settings, temporal=client), host=settings.api_host, port=settings.api_port)
        try:
            await temporal_server.stop()
            for number, text in enumerate(["info", "list", "check 1", "update all good", "playbooks", "start"]):
                form = slash_form(world, world.alice, text, channel=world.town_square, trigger_id=f"down-{number}")
                response, elapsed = await timed_slash(settings.api_public_url, form)
                assert response.status_code == 200, (text, response.text)
                assert elapsed < REPLY_SECONDS + 0.3, (text, elapsed)
                reply = response.json()
                assert reply["response_type"] == "ephemeral"
                assert reply["text"] == SERVICE_UNAVAILABLE, (text, reply["text"])
        finally:
            await api.stop()


async def test_an_incident_whose_workflow_fails_is_told_apart_from_an_outage(world: World) -> None:
    stack = world.stack
    queue = f"broken-{uuid.uuid4().hex[:8]}"
    worker = Worker(stack.temporal, task_queue=queue, workflows=[BrokenIncident])
    async with worker:
        incident_id = new_short_id()
        channel = world.standin.create_channel(world.team_id, f"inc-broken-{incident_id}", "Broken", type="O")
        world.standin.add_channel_member(channel["id"], world.alice.id)
        handle = await incident_helpers.start(
            world, task_queue=queue, id=incident_id, recorded_channel_id=channel["id"]
        )

        async def attempts() -> int:
            raw = (await handle.describe()).raw_description
            return raw.pending_workflow_task.attempt if raw.HasField("pending_workflow_task") else 0

        await eventually(attempts, lambda n: n > 1, what="the workflow task to fail and be retried")
        form = slash_form(world, world.alice, "info", channel=channel, trigger_id="broken-info")
        response, elapsed = await timed_slash(stack.api_url, form)
        assert response.status_code == 200, response.text
        assert elapsed < stack.settings.slash_reply_seconds + 0.3, elapsed
        text = response.json()["text"]
        assert text.startswith("This incident has a problem: its workflow is failing"), text
        assert f"incident id {incident_id}" in text
        assert "worker" not in text
        await handle.terminate("test over")
