"""The worker: runs every workflow and activity of this service.

`python worker.py` runs it alone (production: as many as you like). The dev runner and
the tests run the same worker through `running_worker`, so every setting (task queue,
Mattermost URL, token and request timeout, signing secret, public URL) reaches every
process the same way.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.incident import IncidentActivities
from activities.mattermost import Mattermost
from activities.stats import StatsActivities
from lifecycle import exit_process
from models import search_attributes
from settings import Settings, SettingsError, load_settings, require
from signing import Signer
from workflows.incident import IncidentWorkflow
from workflows.playbook import PlaybookWorkflow
from workflows.stats import IncidentStatsWorkflow

log = logging.getLogger("worker")

WORKFLOWS = [IncidentWorkflow, PlaybookWorkflow, IncidentStatsWorkflow]


async def connect(settings: Settings) -> Client:
    """A Temporal client that speaks our pydantic models."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register any of our search attributes the namespace lacks; returns the ones added.

    `temporal server start-dev --search-attribute` only applies to a new database, and a
    cluster is set up once, so every process that needs them checks at start.
    """
    existing = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in search_attributes.ALL
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


def build_worker(client: Client, settings: Settings, mattermost: Mattermost) -> Worker:
    activities = IncidentActivities(
        mattermost,
        signer=Signer(settings.signing_secret),
        action_url=f"{settings.api_public_url}/mattermost/action",
    )
    stats = StatsActivities(client, task_queue=settings.temporal_task_queue)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=[*activities.all(), *stats.all()],
    )


def mattermost_for(settings: Settings) -> Mattermost:
    """The worker's Mattermost gateway, with the configured request timeout."""
    return Mattermost(
        settings.mattermost_url, settings.mattermost_bot_token, timeout=settings.mattermost_request_timeout
    )


@asynccontextmanager
async def running_worker(client: Client, settings: Settings) -> AsyncIterator[Worker]:
    """The worker, polling until the block ends; then running activities finish and it stops."""
    mattermost = mattermost_for(settings)
    try:
        worker = build_worker(client, settings, mattermost)
        async with worker:
            yield worker
    finally:
        await mattermost.close()


async def run_worker(settings: Settings) -> None:
    require(settings, "temporal_address", "mattermost_url", "mattermost_bot_token", "signing_secret")
    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue %s on %s", settings.temporal_task_queue, settings.temporal_address)
    async with running_worker(client, settings):
        await stop.wait()
        log.info("shutting down: finishing running activities")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = 0
    try:
        asyncio.run(run_worker(load_settings()))
    except SettingsError as error:
        print(error, file=sys.stderr)
        code = 2
    exit_process(code)


if __name__ == "__main__":
    main()
