"""Teams of people on a stack's stand-in, and ways to act as them (tests and benchmarks).

`make_world` gives a caller its own team with its own people (alice, bob, carol, dave in
the team, mallory outside it), channels and registered `/incident` command, so callers
sharing a stack never see each other's data. `eventually` is how they wait on
Temporal-side state: by polling a condition, never by sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from mattermostautodriver import AsyncTypedDriver

from devstack.stack import Stack
from mattermost_standin import StandIn

T = TypeVar("T")
_counter = itertools.count(1)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool] = bool,
    *,
    timeout: float = 15.0,  # noqa: ASYNC109 - a bound on the polling, with `what` in its failure
    what: str = "condition",
) -> T:
    """Poll `probe` until `accept(result)`; how callers wait on Temporal-side state."""
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
    """One caller's team and people, and ways to act as them."""

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
        """The Mattermost requests this world caused after `before` (an index into the stand-in's
        log): every request made as a person, and the bot's requests naming this world's team,
        channels or people. The stand-in is shared, so other worlds' incidents may still be
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

    async def create_playbook(
        self, user: User, title: str, *, steps: Sequence[str] = ("One",), **fields: Any
    ) -> dict[str, Any]:
        """A playbook (one stage of `steps`, unless `fields` give its checklists) made through
        the REST API as `user`, once `user` sees it listed (visibility lags behind)."""
        api = self.api(user)
        stage = {"title": "Only", "items": [{"title": step} for step in steps]}
        made = await api.post(
            "/api/v1/playbooks", json={"team_id": self.team_id, "title": title, "checklists": [stage], **fields}
        )
        if made.status_code != 201:
            raise AssertionError(f"the playbook was not made: {made.status_code} {made.text}")
        playbook: dict[str, Any] = made.json()

        async def listed() -> list[str]:
            page = await api.get("/api/v1/playbooks", params={"team_id": self.team_id, "per_page": 200})
            return [p["id"] for p in page.json()["items"]]

        await eventually(listed, lambda ids: playbook["id"] in ids, what=f"playbook {title!r} to be listed")
        return playbook

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


def slash_form(world: World, user: User, text: str, *, channel: dict[str, Any], trigger_id: str) -> dict[str, str]:
    """The form Mattermost posts for `/incident <text>` typed by `user` in `channel`."""
    return {
        "token": world.command["token"],
        "team_id": world.team_id,
        "team_domain": world.team["name"],
        "channel_id": channel["id"],
        "channel_name": channel["name"],
        "user_id": user.id,
        "user_name": user.username,
        "command": "/incident",
        "text": text,
        "trigger_id": trigger_id,
        "response_url": f"{world.standin.url}/hooks/commands/none",
    }
