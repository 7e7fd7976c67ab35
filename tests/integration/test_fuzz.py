"""A repeatable schemathesis pass over every operation (`make fuzz` runs a long one)."""

from __future__ import annotations

import asyncio

from tests.fuzz import fuzz, known_values
from tests.harness import World

# Per operation, about 830 requests in all (half a minute here); `make fuzz` sends 200 per operation.
EXAMPLES = 25


async def test_generated_requests_get_no_server_error_and_match_the_document(world: World) -> None:
    known = await known_values(world)
    done = await asyncio.to_thread(
        fuzz, world.stack.api_url, world.alice.token, max_examples=EXAMPLES, derandomize=True, known=known
    )
    assert done.failures == [], "\n\n".join(done.failures)
    # Every operation the document has was called, each one that takes input as often as asked.
    document = (await world.api(None).get("/openapi.json")).json()
    operations = {
        f"{method.upper()} {path}": bool(op.get("parameters") or op.get("requestBody"))
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }
    assert set(done.requests) == set(operations)
    too_few = {op: n for op, n in done.requests.items() if operations[op] and n < EXAMPLES}
    assert too_few == {}, too_few
