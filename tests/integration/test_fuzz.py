"""A short, repeatable schemathesis pass over every operation (`make fuzz` runs a long one)."""

from __future__ import annotations

import asyncio

from tests.fuzz import fuzz, known_values
from tests.harness import World


async def test_generated_requests_get_no_server_error_and_match_the_document(world: World) -> None:
    known = await known_values(world)
    failures = await asyncio.to_thread(
        fuzz, world.stack.api_url, world.alice.token, max_examples=10, derandomize=True, known=known
    )
    assert failures == [], "\n\n".join(failures)
