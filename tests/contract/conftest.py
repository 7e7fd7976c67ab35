"""Where the contract suite runs: the stand-in (always) and a real Mattermost (when configured).

Every test in this folder takes `target` and runs once per server, so the stand-in and a
real Mattermost are held to one definition of what this project relies on. The real server
is used only when its address and two tokens are given (`make test-mattermost`); otherwise
one skipped test says how to run them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from mattermostautodriver import AsyncTypedDriver

from mattermost_client.gateway import Mattermost, ServerAddress
from mattermost_standin import StandIn

SERVER_SETTINGS = ("MATTERMOST_URL", "MATTERMOST_BOT_TOKEN", "MATTERMOST_TEST_USER_TOKEN")
HOW_TO_RUN = (
    "contract suite against a real Mattermost: set MATTERMOST_URL, MATTERMOST_BOT_TOKEN and "
    "MATTERMOST_TEST_USER_TOKEN (a test user in a team with the bot; MATTERMOST_TEST_TEAM names the team) "
    "and run `make test-mattermost`"
)


@dataclass
class Target:
    """One Mattermost server, a team, the bot and a test user in it."""

    name: str
    url: str
    bot_token: str
    user_token: str
    team: dict[str, Any]
    gateway: Mattermost
    bot: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict)
    created_channels: list[str] = field(default_factory=list)
    _drivers: list[AsyncTypedDriver] = field(default_factory=list)

    @property
    def team_id(self) -> str:
        return str(self.team["id"])

    def driver(self, token: str) -> AsyncTypedDriver:
        """The client library the project uses, for what the gateway does not do (setup, checks)."""
        address = ServerAddress.parse(self.url)
        driver = AsyncTypedDriver(
            {
                "url": address.host,
                "scheme": address.scheme,
                "port": address.port,
                "token": token,
                "request_timeout": 15,
                "max_retries": 0,
            }
        )
        driver.client.token = token
        self._drivers.append(driver)
        return driver

    async def close(self) -> None:
        bot = self.driver(self.bot_token)
        for channel_id in self.created_channels:  # archive what the suite made on a real server
            with contextlib.suppress(Exception):
                await bot.channels.delete_channel(channel_id)
        for driver in self._drivers:
            await driver.close()
        await self.gateway.close()


async def _standin_target() -> AsyncIterator[Target]:
    standin = StandIn()
    await standin.start()
    try:
        admin = standin.create_user("contract-admin", roles="system_admin system_user")
        bot, bot_token = standin.create_bot("contract-bot", display_name="Contract Bot", owner_id=admin["id"])
        user = standin.create_user("contract-user", first_name="Casey")
        team = standin.create_team("contract", "Contract")
        for member in (bot, user):
            standin.add_team_member(team["id"], member["id"])
        target = Target(
            name="standin",
            url=standin.url,
            bot_token=bot_token,
            user_token=standin.create_access_token(user["id"]),
            team=team,
            gateway=Mattermost(standin.url, bot_token),
        )
        yield target
        await target.close()
    finally:
        await standin.stop()


async def _server_target() -> AsyncIterator[Target]:
    url = os.environ.get("MATTERMOST_URL", "").rstrip("/")
    bot_token = os.environ.get("MATTERMOST_BOT_TOKEN", "")
    user_token = os.environ.get("MATTERMOST_TEST_USER_TOKEN", "")
    target = Target(
        name="server", url=url, bot_token=bot_token, user_token=user_token, team={}, gateway=Mattermost(url, bot_token)
    )
    try:
        user_driver = target.driver(user_token)
        teams = await user_driver.teams.get_teams_for_user("me")
        wanted = os.environ.get("MATTERMOST_TEST_TEAM", "")
        bot = await target.gateway.bot_user()
        for team in teams:
            if (not wanted or team["name"] == wanted) and await target.gateway.team_member(team["id"], bot["id"]):
                target.team = team
                break
        if not target.team:
            pytest.fail(f"the test user and the bot share no team{f' named {wanted}' if wanted else ''}")
        yield target
    finally:
        await target.close()


def server_configured() -> bool:
    return all(os.environ.get(name) for name in SERVER_SETTINGS)


# Without a real server, its runs are not collected; test_contract.py says, in one skipped
# test, how to run them.
@pytest.fixture(scope="module", params=["standin", "server"] if server_configured() else ["standin"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    source = _standin_target() if request.param == "standin" else _server_target()
    async for prepared in source:
        prepared.bot = await prepared.gateway.bot_user()
        prepared.user = await prepared.gateway.user_for_token(prepared.user_token)
        yield prepared
