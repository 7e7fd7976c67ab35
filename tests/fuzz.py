"""Schemathesis against `/openapi.json`: generated requests (valid and invalid) to every
operation, as a real user, checking that none answers a server error, an undocumented
status, or a body that breaks its documented schema.

`make fuzz` runs it long against a stack it starts itself; `tests/integration/test_fuzz.py`
runs a short, derandomized pass inside `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS: list[Any] = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def through_the_stack(max_examples: int, *, derandomize: bool) -> hypothesis.settings:
    """Hypothesis settings for examples sent through the running stack: no deadline and every
    health check off (an example waits on HTTP and Temporal), no example database, no
    reproduction blob in the report."""
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def with_known(case: Any, known: dict[str, str]) -> None:
    """Put real ids (the caller's team, an incident, a playbook) where the case has random
    ones, so requests reach past "not found" into the code behind it."""
    for where in (case.path_parameters, case.query):
        if isinstance(where, dict):
            for name in where:
                if name in known:
                    where[name] = known[name]
    if isinstance(case.body, dict) and "team_id" in case.body and "team_id" in known:
        case.body["team_id"] = known["team_id"]


@dataclass
class Fuzzed:
    """What a pass did: the requests sent per operation ("GET /path"), and every failure found."""

    requests: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def fuzz(
    base_url: str, token: str, *, max_examples: int, derandomize: bool, known: dict[str, str] | None = None
) -> Fuzzed:
    """Blocking: run it off the event loop that serves the API. `known` maps parameter names
    (team_id, incident_id, playbook_id, channel_id) to real values, used in about half of the
    requests."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    done = Fuzzed()
    failures = done.failures
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the document has an invalid operation: {result.err()}")
            continue
        operation = result.ok()
        cases = st.one_of(
            operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
        )

        @through_the_stack(max_examples, derandomize=derandomize)
        @given(case=cases, real=st.booleans())
        def check(case: Any, real: bool) -> None:
            if real and known:
                with_known(case, known)
            response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            done.requests[f"{case.method.upper()} {case.path}"] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as error:  # one operation failed; go on with the others
            failures.append(f"{operation.label}: {str(error)[:2000]}")
    return done


async def known_values(world: Any) -> dict[str, str]:
    """A playbook and an incident of `world`'s alice, whose ids the requests may use."""
    from tests.integration.slash_helpers import outage

    incident = await outage(world)
    playbooks = await world.api(world.alice).get("/api/v1/playbooks", params={"team_id": world.team_id})
    return {
        "team_id": world.team_id,
        "incident_id": incident.id,
        "channel_id": incident.channel_id,
        "playbook_id": playbooks.json()["items"][0]["id"],
    }


async def _main(max_examples: int) -> int:
    from tests.harness import make_world, start_stack

    # Thousands of refused requests are expected; their warnings would bury the summary.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("mattermostautodriver").setLevel(logging.CRITICAL)

    stack = await start_stack()
    try:
        world = make_world(stack)
        known = await known_values(world)
        done = await asyncio.to_thread(
            fuzz, stack.api_url, world.alice.token, max_examples=max_examples, derandomize=False, known=known
        )
        await world.close()
    finally:
        await stack.stop()
    for failure in done.failures:
        print(failure, "\n")
    print(f"schemathesis: {done.requests.total()} requests to {len(done.requests)} operations")
    print(f"schemathesis: {len(done.failures)} operation(s) failed")
    return 1 if done.failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=200, help="examples per operation")
    status = asyncio.run(_main(parser.parse_args().examples))
    sys.stdout.flush()
    # temporalio's runtime can crash at interpreter exit (docs: sdk-python issue 300).
    os._exit(status)


if __name__ == "__main__":
    main()
