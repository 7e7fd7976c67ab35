"""The bare Temporal floor: a trivial workflow's start, update and query, on the same server.

Every figure `make bench` reports is put beside these, measured in the same run against
the same Temporal server with a worker of its own, so a ratio says what our own code
costs on top of Temporal itself.
"""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class FloorWorkflow:
    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.count

    @workflow.update
    def bump(self, by: int) -> int:
        self.count += by
        return self.count

    @bump.validator
    def _check_bump(self, by: int) -> None:
        if by < 0:
            raise ValueError("only forward")

    @workflow.query
    def value(self) -> int:
        return self.count

    @workflow.signal
    def finish(self) -> None:
        self.done = True
