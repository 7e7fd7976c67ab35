"""Poison-input guard: hostile slash command texts for every `/incident` subcommand, and
hostile bodies and positions for every incident action route, through the real stack.

For each generated input: no 5xx (a slash command is always HTTP 200); no workflow task
failure anywhere in the incident's history; and a refused input changes nothing (no
update was accepted, so the history has not grown).

Hypothesis drives the inputs from a worker thread with a blocking HTTP client, while the
stack (API, stand-in, worker) keeps running on the test's event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType

from api.slash.slash_endpoint import registry
from models.incident import incident_workflow_id
from tests.fuzz import through_the_stack
from tests.harness import World, eventually
from tests.integration.slash_helpers import SUBCOMMANDS as EVERY_SUBCOMMAND
from tests.integration.slash_helpers import Started, outage, slash_form, state

pytestmark = pytest.mark.property

T = TypeVar("T")
# Per subcommand and per route: about 3 minutes for the whole file on a 2-core machine.
EXAMPLES = 50

SUBCOMMANDS = [*EVERY_SUBCOMMAND, "help"]

HOSTILE_WORDS = [
    "²",
    "³",
    "\u0661",
    "٣",
    "0",
    "-1",
    "1",
    "2",
    "3",
    "99",
    "9" * 30,
    "9" * 5000,
    "1e3",
    "0x10",
    "@../x",
    "@../../channels/" + "a" * 26,
    "@../../etc/passwd",
    "@bo\x00b",
    "@",
    "@none",
    "@" + "a" * 70,
    "~../x",
    "~town-square",
    "~",
    '"',
    '""',
    "'",
    "next",
    "prev",
    "--force",
    "off",
    "1h",
    "4h",
    "99999d",
    "14:30",
    "24:00",
    "none",
    "region",
    "eu-west",
    "impact",
    "investigating",
    "resolved",
    "🔥",
    "\u202e",
    "\x00",
    "%00",
    "a" * 3000,
]


def words(world: World) -> st.SearchStrategy[str]:
    people = [f"@{u.username}" for u in world.users.values()]
    return st.one_of(
        st.sampled_from(HOSTILE_WORDS + people),
        st.text(max_size=20),
        st.integers(min_value=-(10**6), max_value=10**6).map(str),
    )


def slash_texts(world: World, subcommand: str) -> st.SearchStrategy[str]:
    def build(args: list[str], quote: bool, tail: str) -> str:
        joined = " ".join(f'"{a}"' if quote and " " in a else a for a in args)
        return f"{subcommand} {joined}{tail}".strip()

    tails = st.sampled_from(["", "", " \n second line", " " + "x" * 5000, ' "unclosed', "\x00"])
    return st.builds(build, st.lists(words(world), max_size=4), st.booleans(), tails)


def hostile_values(world: World) -> st.SearchStrategy[Any]:
    ids = [u.id for u in world.users.values()] + [world.town_square["id"], world.channels["off-topic"]["id"]]
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.integers(min_value=-3, max_value=5),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([*HOSTILE_WORDS, *ids, "next", "prev", "done", "open", "in_progress", "identified"]),
        st.text(max_size=40),
    )
    return st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5), scalars, max_size=2))


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # relative to the incident; {stage} and {item} are filled in
    fields: tuple[str, ...]


ROUTES = [
    Route("POST", "commander", ("user_id",)),
    Route("POST", "stage", ("direction", "stage", "force")),
    Route("POST", "status-updates", ("message", "status")),
    Route("POST", "members", ("user_ids",)),
    Route("POST", "reminder", ("seconds",)),
    Route("POST", "reminder/snooze", ("seconds",)),
    Route("POST", "announcements", ("channel_ids",)),
    Route("POST", "checklists/{stage}/items", ("title", "description", "command", "position")),
    Route("PUT", "checklists/{stage}/items/{item}", ("title", "description", "command")),
    Route("DELETE", "checklists/{stage}/items/{item}", ()),
    Route("PUT", "checklists/{stage}/items/{item}/state", ("state",)),
    Route("PUT", "checklists/{stage}/items/{item}/assignee", ("assignee_id",)),
    Route("PUT", "checklists/{stage}/items/{item}/due", ("due",)),
    Route("POST", "checklists/{stage}/items/{item}/move", ("to_position",)),
    Route("POST", "checklists/{stage}/items/{item}/run", ()),
    # Custom fields: the incident's playbook declares these (`POISON_FIELDS`); any name is tried too.
    Route("PUT", "fields/region", ("value",)),
    Route("PUT", "fields/impact", ("value",)),
    Route("PUT", "fields/owner", ("value",)),
    Route("PUT", "fields/{item}", ("value",)),
]
POISON_FIELDS = [
    {"name": "region", "type": "select", "options": ["eu-west", "us-east"]},
    {"name": "impact", "type": "number", "min": 0, "max": 100},
    {"name": "owner", "type": "user"},
    {"name": "notes", "type": "text", "max_length": 50},
]

POSITIONS = st.one_of(
    st.integers(min_value=0, max_value=2).map(str),
    st.integers(min_value=-2, max_value=4).map(str),
    st.integers(min_value=10**18, max_value=10**40).map(str),
    st.sampled_from(["²", "%C2%B2", "1e3", "abc", "-0", "0x1", "%00", "1.5"]),
)


def plausible(world: World) -> dict[str, st.SearchStrategy[Any]]:
    """Values a field could well take, so that some hostile requests get past validation."""
    people = st.sampled_from([u.id for u in world.users.values()])
    channels = st.sampled_from([world.town_square["id"], world.channels["off-topic"]["id"]])
    text = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(HOSTILE_WORDS))
    return {
        "user_id": people,
        "assignee_id": st.one_of(st.none(), people),
        "user_ids": st.lists(people, min_size=1, max_size=3),
        "channel_ids": st.lists(channels, min_size=1, max_size=2),
        "direction": st.sampled_from(["next", "prev"]),
        "stage": st.integers(min_value=0, max_value=3),
        "force": st.booleans(),
        "message": text,
        "status": st.sampled_from(["investigating", "identified", "monitoring", "resolved"]),
        "seconds": st.sampled_from([0, 3600, 7200, 14400]),
        "title": text,
        "description": text,
        "command": st.sampled_from(["", "/incident info", "/nope", "/incident end"]),
        "position": st.integers(min_value=0, max_value=3),
        "to_position": st.integers(min_value=0, max_value=3),
        "state": st.sampled_from(["open", "in_progress", "done"]),
        "due": st.one_of(st.none(), st.sampled_from(["30m", "1s", "30d", "14:30", "0:00", "23:59", "none", "NONE"])),
        "value": st.one_of(
            st.none(),
            st.sampled_from(["eu-west", "US-EAST", "none", "", "42", "100.5", "-0", "@alice", "alice", "@nobody"]),
            text,
        ),
    }


def rest_requests(world: World, route: Route) -> st.SearchStrategy[tuple[Route, str, str, Any]]:
    values = hostile_values(world)
    likely = plausible(world)

    def body_for(route: Route) -> st.SearchStrategy[Any]:
        valid = {name: likely[name] for name in route.fields}
        fields = {name: st.one_of(likely[name], values) for name in route.fields}
        # Intervals of every size, the ones that once overflowed `now + interval` included.
        if route.path in ("reminder", "reminder/snooze"):
            fields["seconds"] = st.one_of(
                st.integers(min_value=-5, max_value=10**6),
                st.sampled_from([7 * 86400, 7 * 86400 + 1, 2**31, 10**12, 10**19, 10**400]),
                values.filter(_not_int),
            )
        plain = st.fixed_dictionaries(valid)
        return st.one_of(
            plain,
            plain,
            plain,
            st.fixed_dictionaries(fields),
            st.fixed_dictionaries({}, optional=fields),
            values,
        )

    return st.tuples(st.just(route), POSITIONS, POSITIONS, body_for(route))


def _not_int(value: Any) -> bool:
    return not isinstance(value, int) or isinstance(value, bool)


class Guard:
    """Runs checks from the Hypothesis thread against the stack on the test's event loop."""

    def __init__(self, world: World, incident: Started, loop: asyncio.AbstractEventLoop) -> None:
        self.world = world
        self.incident = incident
        self.loop = loop
        self.handle = world.stack.temporal.get_workflow_handle(incident_workflow_id(incident.id))
        self.http = httpx.Client(base_url=world.stack.api_url, timeout=60)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    async def _events(self) -> list[Any]:
        history = await self.handle.fetch_history()
        return list(history.events)

    async def _settled_length(self) -> int:
        """The history's length once the incident has carried out every pending effect."""

        async def probe() -> tuple[int, int, bool]:
            before = len(await self._events())
            drained = not (await state(self.world, self.incident.id)).outbox
            return before, len(await self._events()), drained

        before, _, _ = await eventually(
            probe, lambda r: r[0] == r[1] and r[2], timeout=30, what="the incident to settle"
        )
        return before

    def settled_length(self) -> int:
        return self.run(self._settled_length())

    def check_after(self, before: int, refused: bool, what: str) -> None:
        events = self.run(self._events())
        failed = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        assert not failed, f"{what}: the workflow task failed: {failed[0]}"
        accepted = [
            e for e in events[before:] if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        if refused or not accepted:
            assert len(events) == before, f"{what}: refused, yet the history grew by {len(events) - before} events"

    def slash(self, text: str) -> None:
        before = self.settled_length()
        channel = {"id": self.incident.channel_id, "name": self.incident.channel_name}
        form = slash_form(self.world, self.world.alice, text, channel=channel, trigger_id=uuid.uuid4().hex)
        response = self.http.post("/mattermost/slash", data=form)
        assert response.status_code == 200, (text[:100], response.status_code, response.text[:500])
        reply = response.json()
        assert isinstance(reply.get("text"), str), reply
        self.check_after(before, refused=False, what=repr(text[:100]))

    def rest(self, route: Route, stage: str, item: str, body: Any, *, same_run: bool = True) -> None:
        before = self.settled_length()
        path = f"/api/v1/incidents/{self.incident.id}/" + route.path.format(stage=stage, item=item)
        response = self.http.request(
            route.method, path, json=body, headers={"Authorization": f"Bearer {self.world.alice.token}"}
        )
        what = f"{route.method} {path} {str(body)[:200]}"
        assert response.status_code < 500, (what, response.status_code, response.text[:500])
        if same_run:
            self.check_after(before, refused=response.status_code >= 400, what=what)


async def assert_no_workflow_task_failed(world: World, incident: Started, *, incident_runs: int = 1) -> None:
    """Every run of every workflow of the world's team (incidents, including those a hostile
    `start` opened and the runs a restart began, and the team's statistics) has no failed
    workflow task in its history."""
    team = world.team_id
    query = f"IncidentTeamId = '{team}' OR WorkflowId STARTS_WITH 'incident-stats-{team}'"

    async def runs() -> list[tuple[str, str]]:
        return [(e.id, e.run_id) async for e in world.stack.temporal.list_workflows(query)]

    # Lists come from Temporal's visibility, a moment behind: the incident's runs are there once it caught up.
    own = incident_workflow_id(incident.id)
    listed = await eventually(
        runs, lambda found: [w for w, _ in found].count(own) >= incident_runs, what="the incident's runs listed"
    )
    failed = []
    for workflow_id, run_id in listed:
        handle = world.stack.temporal.get_workflow_handle(workflow_id, run_id=run_id)
        failed += [
            f"{workflow_id} {run_id}: {e.workflow_task_failed_event_attributes.failure.message}"
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        ]
    assert failed == [], failed


def test_every_subcommand_is_listed() -> None:
    assert set(SUBCOMMANDS) == {*registry._commands, "help"}


HYPOTHESIS = through_the_stack(EXAMPLES, derandomize=True)


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
async def test_hostile_slash_commands_never_fail_and_refusals_change_nothing(world: World, subcommand: str) -> None:
    incident = await outage(world, **({"fields": POISON_FIELDS} if subcommand == "field" else {}))
    guard = Guard(world, incident, asyncio.get_running_loop())

    @HYPOTHESIS
    @given(text=slash_texts(world, subcommand))
    def check(text: str) -> None:
        guard.slash(text)

    try:
        await asyncio.to_thread(check)
    finally:
        guard.http.close()
    await assert_no_workflow_task_failed(world, incident)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_hostile_rest_actions_never_fail_and_refusals_change_nothing(world: World, route: Route) -> None:
    incident = await outage(world, **({"fields": POISON_FIELDS} if route.path.startswith("fields/") else {}))
    guard = Guard(world, incident, asyncio.get_running_loop())

    @HYPOTHESIS
    @given(request=rest_requests(world, route))
    def check(request: tuple[Route, str, str, Any]) -> None:
        guard.rest(*request)

    try:
        await asyncio.to_thread(check)
    finally:
        guard.http.close()
    await assert_no_workflow_task_failed(world, incident)


async def test_end_and_restart_ignore_any_body(world: World) -> None:
    incident = await outage(world)
    guard = Guard(world, incident, asyncio.get_running_loop())
    try:
        # Ending and restarting take no body; whatever is sent is ignored. Restarting starts
        # a new run, so each run's history is looked at afterwards.
        for action in ("end", "restart"):
            for body in ({"x": "\x00" * 100}, [1, 2], "9" * 5000):
                await asyncio.to_thread(guard.rest, Route("POST", action, ()), "0", "0", body, same_run=False)
    finally:
        guard.http.close()
    await assert_no_workflow_task_failed(world, incident, incident_runs=2)
