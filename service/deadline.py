"""A time limit for everything one request does, when its caller cannot wait long.

Mattermost shows a slash command's reply only if it arrives in time, and a person expects
it at once; the slash endpoint therefore sets a deadline, and every Temporal call made
on its behalf (`Services.rpc_timeout`) waits only for what is left of it, keeping a
reserve to find out and say why a call did not answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)
# Kept back from each Temporal call to diagnose a call that did not answer (describe the
# workflow) and still reply within the deadline.
DIAGNOSIS_RESERVE = 0.6
SHORTEST_CALL = 0.1


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    token = _deadline.set(asyncio.get_running_loop().time() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current request's deadline, or None when it has none."""
    end = _deadline.get()
    if end is None:
        return None
    return max(0.0, end - asyncio.get_running_loop().time())


def call_budget(configured: float) -> float:
    """How long one Temporal call may wait: the configured limit, or less near a deadline."""
    left = remaining()
    if left is None:
        return configured
    return max(SHORTEST_CALL, min(configured, left - DIAGNOSIS_RESERVE))


def diagnosis_budget(configured: float) -> float:
    """How long the call that finds out why another one did not answer may wait."""
    left = remaining()
    if left is None:
        return min(configured, 5.0)
    return max(SHORTEST_CALL, min(configured, left - 0.1, DIAGNOSIS_RESERVE))
