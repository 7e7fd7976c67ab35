"""The whole system on this machine, built one way for `make dev`, the tests and the benchmarks.

A stack is Temporal, Mattermost, the worker and the API:

- Temporal is the server at `TEMPORAL_ADDRESS` when it is set; otherwise `temporal server
  start-dev` on `TEMPORAL_DEV_PORT`, in memory and headless, or (`persist`) in
  `TEMPORAL_DB_FILE` with its Web UI on `TEMPORAL_UI_PORT`.
- Mattermost is the server at `MATTERMOST_URL` when it is set (with its bot and slash
  tokens); otherwise the stand-in on `STANDIN_PORT`, in memory or (`persist`) in
  `STANDIN_DATA_FILE`, seeded with the demo team (`demo`, what `make dev` shows people) or
  bare (an admin, the bot and the backstage's OAuth app: tests and benchmarks add their
  own teams).
- The worker runs in this process unless `worker=False` (`make bench-scale` runs
  `python worker.py` processes instead, to measure them).
- The API is served in this process on `API_HOST:API_PORT`.

Everything started is stopped in reverse order when the stack stops, and whatever had
started is stopped if a later part fails to start.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

import payload_sealing
from api.app import create_app
from api.slash.slash_endpoint import AUTOCOMPLETE
from devstack.embedded_http import EmbeddedServer, free_port, serve
from devstack.temporal_dev_server import TemporalDevServer, prepare_namespace
from mattermost_standin import StandIn
from mattermost_standin.seed import OAUTH_APP_NAME
from settings import Settings, require
from temporal_connection import connect
from worker import running_worker

Record = dict[str, Any]
# Where `make dev` and the tests may send webhooks besides public addresses: this machine (a
# receiver on 127.0.0.1). Production allows no private address unless WEBHOOK_ALLOWED_NETWORKS says.
LOOPBACK_NETWORKS = "127.0.0.0/8,::1/128"


@dataclass(frozen=True)
class StackOptions:
    """What to run beyond what the settings decide (see the module's docstring)."""

    persist: bool = False
    demo: bool = False
    worker: bool = True
    log_dir: Path | None = None  # the Temporal dev server's log goes here (else nowhere)


@dataclass(frozen=True)
class StandInAccounts:
    """The stand-in and the accounts it was seeded with."""

    standin: StandIn
    admin: Record
    admin_token: str
    bot: Record
    bot_token: str
    demo: Record | None  # the demo world (`mattermost_standin.seed`), when seeded with it


@dataclass
class Stack:
    settings: Settings  # as the API and the worker got them: every address and token filled in
    temporal: Client
    temporal_server: TemporalDevServer | None  # None: the Temporal at TEMPORAL_ADDRESS
    accounts: StandInAccounts | None  # None: the Mattermost at MATTERMOST_URL
    api: EmbeddedServer
    _running: AsyncExitStack

    @property
    def api_url(self) -> str:
        return self.settings.api_public_url

    def _seeded(self) -> StandInAccounts:
        if self.accounts is None:
            raise RuntimeError(f"this stack uses the Mattermost at {self.settings.mattermost_url}, not a stand-in")
        return self.accounts

    @property
    def standin(self) -> StandIn:
        return self._seeded().standin

    @property
    def admin(self) -> Record:
        return self._seeded().admin

    @property
    def admin_token(self) -> str:
        return self._seeded().admin_token

    @property
    def bot(self) -> Record:
        return self._seeded().bot

    @property
    def bot_token(self) -> str:
        return self._seeded().bot_token

    def accept_slash_token(self, token: str) -> None:
        """What an operator does per team: add the team's command token to the configuration."""
        self.settings.mattermost_slash_token = ",".join([*self.settings.slash_tokens, token])

    async def stop(self) -> None:
        await self._running.aclose()


def process_environment(settings: Settings, **more: str) -> dict[str, str]:
    """The environment of a `python worker.py` or `python -m api` joining this stack as its own
    process: this one's environment without its own configuration, and the stack's addresses,
    tokens and secret (`more`: other settings, by their variables' names)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "MATTERMOST_", "API_"))},
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "MATTERMOST_URL": settings.mattermost_url,
        "MATTERMOST_BOT_TOKEN": settings.mattermost_bot_token,
        "SIGNING_SECRET": settings.signing_secret,
        "PUBLIC_URL": settings.api_public_url,
        "WEBHOOK_ALLOWED_NETWORKS": settings.webhook_allowed_networks,
        "WEBHOOK_RETRY_INITIAL_SECONDS": str(settings.webhook_retry_initial_seconds),
        "WEBHOOK_RETRY_MAX_SECONDS": str(settings.webhook_retry_max_seconds),
        "WEBHOOK_GIVE_UP_SECONDS": str(settings.webhook_give_up_seconds),
        **more,
    }


def stack_settings(**values: Any) -> Settings:
    """Settings of a throwaway stack (tests, benchmarks): explicit values only, never the
    developer's .env, free ports, and short timers so that waiting on them is quick."""
    defaults: dict[str, Any] = {
        "api_host": "127.0.0.1",
        "temporal_dev_port": free_port(),
        "standin_port": free_port(),
        "api_port": free_port(),
        "signing_secret": secrets.token_urlsafe(16),
        "reminder_min_seconds": 1,
        "activity_timeout_seconds": 5.0,
        "activity_max_retry_interval_seconds": 0.5,
        "auth_cache_seconds": 0.5,
        "temporal_rpc_timeout_seconds": 10.0,
        # Above the 2.5 s default: a busy CI machine must not turn slow replies into failures.
        # tests/integration/test_slash_outages.py checks the bound itself.
        "slash_reply_seconds": 5.0,
        "channel_access_recheck_seconds": 1.0,
        # Ended incidents' runs close at once, as most tests await them; the reopen window
        # has its own tests (test_incident_lifecycle.py).
        "reopen_window_seconds": 0.0,
        "temporal_ui_url": "http://localhost:8233",
        # Test receivers listen on 127.0.0.1 (tests/webhook_receiver.py).
        "webhook_allowed_networks": LOOPBACK_NETWORKS,
        # Webhook retries a receiver coming back sees within a second (production: 5 s doubling to an hour).
        "webhook_retry_initial_seconds": 0.2,
        "webhook_retry_max_seconds": 1.0,
    }
    defaults.update(values)
    return Settings(_env_file=None, **defaults)


async def start_stack(settings: Settings, options: StackOptions = StackOptions()) -> Stack:
    """Start every part; on a failure, stop what had started and raise."""
    running = AsyncExitStack()
    try:
        return await _start(settings, options, running)
    except BaseException:
        await running.aclose()
        raise


@asynccontextmanager
async def running_stack(settings: Settings, options: StackOptions = StackOptions()) -> AsyncIterator[Stack]:
    stack = await start_stack(settings, options)
    try:
        yield stack
    finally:
        await stack.stop()


async def _start(settings: Settings, options: StackOptions, running: AsyncExitStack) -> Stack:
    temporal, server = await _temporal(settings, options, running)
    if server is not None:
        settings = settings.model_copy(
            update={
                "temporal_address": server.address,
                "temporal_ui_url": settings.temporal_ui_url or server.ui_url or "",
            }
        )
    accounts: StandInAccounts | None = None
    if settings.mattermost_url:
        require(settings, "mattermost_bot_token", "mattermost_slash_token")
    else:
        accounts, settings = await _standin(settings, options, running)
    if options.worker:
        await running.enter_async_context(running_worker(temporal, settings))
    api = await serve(create_app(settings, temporal=temporal), host=settings.api_host, port=settings.api_port)
    running.push_async_callback(api.stop)
    return Stack(
        settings=settings, temporal=temporal, temporal_server=server, accounts=accounts, api=api, _running=running
    )


async def _temporal(
    settings: Settings, options: StackOptions, running: AsyncExitStack
) -> tuple[Client, TemporalDevServer | None]:
    if settings.temporal_address:
        client = await connect(settings)
        await prepare_namespace(client, settings.temporal_namespace, set_retention=False)
        return client, None
    server = TemporalDevServer(
        port=settings.temporal_dev_port,
        ui_port=settings.temporal_ui_port if options.persist else None,
        db_file=settings.temporal_db_file if options.persist else None,
        namespace=settings.temporal_namespace,
        log_file=options.log_dir / "temporal.log" if options.log_dir else None,
        data_converter=payload_sealing.data_converter(settings.signing_secret, settings.previous_signing_secrets),
    )
    running.push_async_callback(server.stop)
    return await server.start(), server


async def _standin(
    settings: Settings, options: StackOptions, running: AsyncExitStack
) -> tuple[StandInAccounts, Settings]:
    standin = StandIn(data_file=settings.standin_data_file if options.persist else None)
    await standin.start(host="127.0.0.1", port=settings.standin_port)
    running.push_async_callback(standin.stop)
    api_url = settings.api_public_url
    callback_url = f"{api_url}/backstage/oauth/callback"
    if options.demo:
        world = standin.seed_demo(command_url=f"{api_url}/mattermost/slash", oauth_callback_url=callback_url)
        standin.update_command(world["command"]["id"], url=f"{api_url}/mattermost/slash", **AUTOCOMPLETE)
        alice = world["users"]["alice"]
        accounts = StandInAccounts(
            standin, alice["user"], alice["token"], world["bot"]["user"], world["bot"]["token"], world
        )
        slash_token, oauth_app = str(world["command"]["token"]), world["oauth_app"]
    else:
        admin = standin.create_user("sysadmin", roles="system_admin system_user")
        bot, bot_token = standin.create_bot("incident-bot", display_name="Incident Bot", owner_id=admin["id"])
        accounts = StandInAccounts(standin, admin, standin.create_access_token(admin["id"]), bot, bot_token, None)
        # No team has the command yet: each team registered later adds its token (accept_slash_token).
        slash_token = secrets.token_hex(13)
        # The backstage's OAuth 2.0 app, registered as an admin does (Integrations > OAuth 2.0 Applications).
        oauth_app = standin.register_oauth_app(OAUTH_APP_NAME, callback_urls=[callback_url], creator_id=admin["id"])
    return accounts, settings.model_copy(
        update={
            "mattermost_url": standin.url,
            "mattermost_bot_token": accounts.bot_token,
            "mattermost_slash_token": slash_token,
            "mattermost_oauth_client_id": oauth_app["id"],
            "mattermost_oauth_client_secret": oauth_app["client_secret"],
        }
    )
