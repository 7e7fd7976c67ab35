"""The worker: runs every workflow and activity of this service.

`python worker.py` runs it alone (production: as many as you like); `python worker.py
--check` exits 0 when a worker on this host is polling (the container health check). The
dev runner and the tests run the same worker through `running_worker`, so every setting
(task queue, Mattermost URL, token and request timeout, signing secret, public URL)
reaches every process the same way.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueKind, TaskQueueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.attempts import EffectAttempts
from activities.command_outcome_activities import CommandOutcomeActivities
from activities.incident_activities import IncidentActivities
from activities.schedule_activities import ScheduleActivities
from activities.stats_activities import StatsActivities
from activities.webhook_activities import WebhookActivities
from activities.webhook_delivery import WebhookDelivery
from mattermost_client.gateway import Mattermost
from models import search_attributes
from models.webhooks import WebhookConfig
from process_exit import exit_process
from process_logging import configure_logging
from settings import Settings, SettingsError, load_settings, require
from signing import Signer
from temporal_connection import connect
from workflows.command_outcome_workflow import CommandOutcomeWorkflow
from workflows.incident_webhooks_workflow import IncidentWebhooksWorkflow
from workflows.incident_workflow import IncidentWorkflow
from workflows.integration_workflow import IntegrationWorkflow
from workflows.playbook_workflow import PlaybookWorkflow
from workflows.schedule_workflow import ScheduleWorkflow
from workflows.signed_out_sessions_workflow import SignedOutSessionsWorkflow
from workflows.stats_workflow import IncidentStatsWorkflow
from workflows.team_settings_workflow import TeamSettingsWorkflow
from workflows.webhook_subscriptions_workflow import WebhookSubscriptionsWorkflow

log = logging.getLogger("worker")

WORKFLOWS = [
    IncidentWorkflow,
    PlaybookWorkflow,
    IncidentStatsWorkflow,
    SignedOutSessionsWorkflow,
    CommandOutcomeWorkflow,
    IntegrationWorkflow,
    WebhookSubscriptionsWorkflow,
    IncidentWebhooksWorkflow,
    ScheduleWorkflow,
    TeamSettingsWorkflow,
]


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
        temporal=client,
    )
    stats = StatsActivities(
        client, task_queue=settings.temporal_task_queue, shard_capacity=settings.stats_shard_capacity
    )
    outcomes = CommandOutcomeActivities(client, mattermost)
    schedules = ScheduleActivities(mattermost)
    webhooks = WebhookActivities(client, task_queue=settings.temporal_task_queue, config=webhook_config(settings))
    delivery = WebhookDelivery(
        client,
        allowed_networks=settings.webhook_networks,
        attempt_timeout_seconds=settings.webhook_attempt_timeout_seconds,
    )
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=[
            *activities.all(),
            *stats.all(),
            *outcomes.all(),
            *webhooks.all(),
            *delivery.all(),
            *schedules.all(),
        ],
        interceptors=[EffectAttempts(request_timeout=mattermost.timeout)],
        max_cached_workflows=settings.worker_max_cached_workflows,
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=settings.worker_sticky_timeout_seconds),
    )


def webhook_config(settings: Settings) -> WebhookConfig:
    """The delivery knobs the incidents' webhooks workflows run with (from the settings)."""
    return WebhookConfig(
        give_up_seconds=settings.webhook_give_up_seconds,
        retry_initial_seconds=settings.webhook_retry_initial_seconds,
        retry_max_seconds=settings.webhook_retry_max_seconds,
        attempt_timeout_seconds=settings.webhook_attempt_timeout_seconds,
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


# A long poll lasts up to a minute, so a live worker's last poll can be that old.
POLL_FRESHNESS = timedelta(minutes=2)


async def polling_here(settings: Settings) -> list[str]:
    """What `python worker.py --check` reports missing: the task queue kinds no worker on this
    host has polled lately (empty: healthy). Worker identities are `<pid>@<hostname>`, and a
    container's hostname is its own, so this is the container health check of a worker.
    """
    require(settings, "temporal_address")
    client = await connect(settings)
    suffix = f"@{socket.gethostname()}"
    since = datetime.now(UTC) - POLL_FRESHNESS
    missing = []
    for kind, name in (
        (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "workflow"),
        (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, "activity"),
    ):
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=kind,
            )
        )
        if not any(
            poller.identity.endswith(suffix) and poller.last_access_time.ToDatetime(UTC) >= since
            for poller in described.pollers
        ):
            missing.append(name)
    return missing


async def check(settings: Settings) -> int:
    try:
        missing = await polling_here(settings)
    except RuntimeError as error:  # what the SDK raises when it cannot connect
        print(f"unhealthy: cannot reach Temporal at {settings.temporal_address}: {error}", file=sys.stderr)
        return 1
    if missing:
        print(
            f"unhealthy: no worker on {socket.gethostname()} polls {' or '.join(missing)} tasks "
            f"of {settings.temporal_task_queue}",
            file=sys.stderr,
        )
        return 1
    print("ok")
    return 0


def main() -> None:
    code = 0
    try:
        settings = load_settings()
        configure_logging(settings)
        if sys.argv[1:] == ["--check"]:
            code = asyncio.run(check(settings))
        else:
            asyncio.run(run_worker(settings))
    except SettingsError as error:
        print(error, file=sys.stderr)
        code = 2
    exit_process(code)


if __name__ == "__main__":
    main()
