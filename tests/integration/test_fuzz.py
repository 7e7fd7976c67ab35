"""A short, repeatable schemathesis pass over every operation (`make fuzz` runs a long one)."""

from __future__ import annotations

import asyncio

from tests.fuzz import fuzz
from tests.harness import World


async def test_generated_requests_get_no_server_error_and_match_the_document(world: World) -> None:
    failures = await asyncio.to_thread(fuzz, world.stack.api_url, world.alice.token, max_examples=8, derandomize=True)
    assert failures == [], "\n\n".join(failures)
