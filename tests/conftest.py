"""Root test configuration: the real stack as fixtures, and a crash-proof exit.

temporalio's Rust core can abort the interpreter while it finalizes, after every test
has passed (see docs/temporal.md, sdk-python issue 300). The run's verdict is pytest's
exit status, so we remember it and leave with `os._exit` once pytest has written its
summary and reports, before finalization can crash.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

import pytest

from tests.harness import Stack, World, running_stack, world_in

_exit_status: int | None = None
# The fast tier: what needs no Temporal server (`make test-fast`, `-m fast`); the rest is
# marked `temporal`. A fast test that asks for the stack fails (see `world`).
FAST = (
    "tests/unit/",
    "tests/standin/",
    "tests/contract/",
    "tests/test_replay.py",
    "tests/test_rebuild.py",
    "tests/test_dry_run.py",
    "tests/deploy/test_compose.py",
    "tests/deploy/test_lock.py",
    "tests/integration/test_alertmanager_harness.py",  # the real Alertmanager, no Temporal
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.relative_to(config.rootpath).as_posix()
        item.add_marker(pytest.mark.fast if where.startswith(FAST) else pytest.mark.temporal)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _exit_status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack() as running:
        yield running


@pytest.fixture
async def world(request: pytest.FixtureRequest, stack: Stack) -> AsyncIterator[World]:
    assert request.node.get_closest_marker("fast") is None, "the fast tier runs without a Temporal server"
    async with world_in(stack) as created:
        yield created
