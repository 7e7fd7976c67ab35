"""Fixtures for the stand-in's contract tests.

Clients talk to the stand-in over real HTTP through mattermostautodriver's
``AsyncTypedDriver``, as the project does. Integrations (slash command handlers,
button and dialog endpoints) are played by ``Receiver``, a small app served with
uvicorn in the test loop that records every request and answers what a test says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from mattermostautodriver import AsyncTypedDriver

from mattermost_standin import StandIn
from mattermost_standin.serve import BackgroundServer
from tests.standin.standin_support import Connect, Receiver, make_driver


@pytest.fixture(scope="module")
async def receiver_server() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = BackgroundServer(receiver)
    receiver.port = await server.start("127.0.0.1", 0)
    yield receiver
    await server.stop()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Iterator[Receiver]:
    receiver_server.reset()
    yield receiver_server
    receiver_server.reset()


@pytest.fixture(scope="module")
async def standin() -> AsyncIterator[StandIn]:
    """One stand-in per module; tests keep apart by using fresh names (``unique``)."""
    instance = StandIn()
    await instance.start()
    yield instance
    await instance.stop()


@pytest.fixture(scope="module")
def world(standin: StandIn) -> dict[str, Any]:
    """The demo world: team ``demo``, alice (admin), bob, carol, dave, ``incident-bot``."""
    return standin.seed_demo(command_url="http://127.0.0.1:9/unused")


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``connect(standin, token, max_retries=0)`` builds a driver; all are closed afterwards."""
    made: list[AsyncTypedDriver] = []

    def build(standin: StandIn, token: str, *, max_retries: int = 0) -> AsyncTypedDriver:
        driver = make_driver(standin, token, max_retries=max_retries)
        made.append(driver)
        return driver

    yield build
    for driver in made:
        await driver.close()
