"""Side effects under Mattermost and process faults: every promise of docs/reliability.md.

Over 400 lines on purpose: one scenario per test, one file per promise list
(docs/reliability.md points here), sharing one fault-injecting stack.

These tests run on a stack of their own (Temporal dev server, stand-in, worker, API), so
the faults they inject never reach other tests' incidents, and nothing else posts while
they count requests. Each ends with exact counts: one channel, one pinned opening post,
every post once and in order within its lane, every acknowledged command applied once.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from activities.incident_activities import DEDUPE_PROP, STABLE_PROP
from models.effects import lane_of
from models.incident import EventType, IncidentConfig, IncidentState, IncidentStatus
from models.incident_commands import (
    AddItem,
    ChangeCommander,
    EndIncident,
    InviteMembers,
    PostStatusUpdate,
    SetItemState,
)
from models.stats import StatsWindow, stats_month, stats_workflow_id
from settings import Settings
from tests.harness import Stack, World, eventually, own_server, own_worker, running_stack, world_in
from tests.integration.incident_helpers import actor, fact, playbook, settled, start, state, update
from tests.integration.test_incident_durability import activity_started, worker_process
from workflows.incident_workflow import IncidentWorkflow
from workflows.stats_workflow import IncidentStatsWorkflow

OPENING = "#### :rotating_light: Incident: "


def fast(**values: Any) -> IncidentConfig:
    """Short timeouts and backoff, so faults resolve in test time."""
    config: dict[str, Any] = {
        "activity_timeout_seconds": 5.0,
        "activity_max_retry_interval_seconds": 0.5,
        "effect_give_up_seconds": 120.0,
        "reminder_min_seconds": 1,
    }
    config.update(values)
    return IncidentConfig(**config)


@pytest.fixture(scope="module")
async def faulty_stack() -> AsyncIterator[Stack]:
    """A stack of this module's own: its faults and killed workers touch no other test."""
    async with running_stack() as running:
        yield running


@pytest.fixture
async def world(faulty_stack: Stack) -> AsyncIterator[World]:
    async with world_in(faulty_stack) as created:
        yield created


# --------------------------------------------------------------------------- checks


def bot_posts(world: World, channel_id: str) -> list[dict[str, Any]]:
    return [p for p in world.standin.posts(channel_id) if DEDUPE_PROP in (p.get("props") or {})]


def checklist(post: dict[str, Any]) -> bool:
    """The live checklist post (which shows the last status update)."""
    return STABLE_PROP in post["props"]


def assert_once_in_order(world: World, channel_id: str) -> list[dict[str, Any]]:
    """Every effect's post is there once, in the order the effects were queued."""
    posts = bot_posts(world, channel_id)
    seqs = [int(p["props"][DEDUPE_PROP].rsplit(":", 1)[1]) for p in posts]
    assert len(seqs) == len(set(seqs)), f"a post was made twice: {seqs}"
    assert seqs == sorted(seqs), f"posts out of order: {seqs}"
    return posts


def assert_opened_once(world: World, current: IncidentState) -> None:
    """One channel, one opening post, pinned and remembered."""
    channels = [c for c in world.standin.channels(world.team_id) if c["display_name"] == current.name]
    assert len(channels) == 1
    assert channels[0]["id"] == current.channel_id
    openings = [p for p in world.standin.posts(current.channel_id or "") if p["message"].startswith(OPENING)]
    assert len(openings) == 1, f"{len(openings)} opening posts"
    assert openings[0]["is_pinned"] is True
    assert current.post_ids["opening"] == openings[0]["id"]


def status_posts(posts: list[dict[str, Any]], marker: str) -> list[str]:
    """The status updates among `posts` whose text has `marker`."""
    return [p["message"] for p in posts if p["message"].startswith("#### Status") and marker in p["message"]]


def assert_updates_once(world: World, current: IncidentState, marker: str, count: int) -> None:
    """The incident opened once, and its `count` status updates (all of them, each with `marker`)
    are on its timeline and posted once each, in order."""
    assert_opened_once(world, current)
    posts = assert_once_in_order(world, current.channel_id or "")
    assert len(status_posts(posts, marker)) == count
    assert len([e for e in current.timeline if e.type == EventType.STATUS_UPDATE]) == count


def failures(current: IncidentState) -> list[str]:
    return [e.summary for e in current.timeline if e.type == EventType.EFFECT_FAILED]


async def drained(handle: WorkflowHandle[Any, Any], timeout: float = 30) -> IncidentState:
    return await eventually(
        lambda: state(handle), lambda s: s.channel_id is not None and not s.outbox, timeout=timeout, what="drained"
    )


def requests(world: World, method: str, path: str, since: int = 0) -> list[int]:
    """Statuses of the stand-in's answers to `method path` (from the `since`-th request on)."""
    log = world.standin.requests[since:]
    return [r["status"] for r in log if r["method"] == method and r["path"] == path]


async def pending_attempt(handle: WorkflowHandle[Any, Any], at_least: int) -> None:
    """Wait until the workflow's running activity has failed `at_least - 1` times."""

    async def attempt() -> int:
        description = await handle.describe()
        pending = description.raw_description.pending_activities
        return max((a.attempt for a in pending), default=0)

    await eventually(attempt, lambda n: n >= at_least, what=f"attempt {at_least}")


# --------------------------------------------------------------------------- posts and pins


@pytest.mark.parametrize(
    ("request_timeout", "delay"),
    [(2.0, 3.0), pytest.param(10.0, 12.0, marks=pytest.mark.slow)],
    ids=["2s-timeout", "10s-timeout"],
)
async def test_a_post_outliving_the_request_timeout_is_made_once(
    world: World, request_timeout: float, delay: float
) -> None:
    queue = f"slow-post-{uuid.uuid4().hex[:8]}"
    # The opening post lands `delay` seconds after it was sent, after the client gave up.
    world.standin.add_fault("POST", "/api/v4/posts", delay=delay, times=1)
    async with own_worker(
        world, world.stack.temporal, temporal_task_queue=queue, mattermost_request_timeout=request_timeout
    ):
        handle = await start(world, task_queue=queue, config=fast(activity_timeout_seconds=5 * request_timeout + 5))
        current = await drained(handle, timeout=60)
    # The slow request has been carried out, whenever that was: nothing can land any more.
    await world.standin.wait_for(lambda: world.standin.in_flight == 0, timeout=delay + 5)
    assert_opened_once(world, current)
    # The worker's client gave up after MATTERMOST_REQUEST_TIMEOUT and looked for the post once.
    assert requests(world, "GET", f"/api/v4/channels/{current.channel_id}/posts") == [200]
    assert_once_in_order(world, current.channel_id or "")
    assert failures(current) == []


@pytest.mark.slow
async def test_the_worker_process_uses_the_configured_request_timeout(world: World) -> None:
    queue = f"timeout-{uuid.uuid4().hex[:8]}"
    world.standin.add_fault("POST", "/api/v4/posts", delay=3.0, times=1)
    async with worker_process(world, queue, MATTERMOST_REQUEST_TIMEOUT="1.5"):
        handle = await start(world, task_queue=queue, config=fast(activity_timeout_seconds=15.0))
        current = await drained(handle, timeout=30)
    await world.standin.wait_for(lambda: world.standin.in_flight == 0)
    assert_opened_once(world, current)
    # The client gave up after 1.5 s (not the default 10 s), waited, and found the late post.
    assert requests(world, "GET", f"/api/v4/channels/{current.channel_id}/posts") == [200]


async def test_the_opening_post_is_pinned_when_the_pin_fails_once(world: World) -> None:
    world.standin.add_fault("POST", "/api/v4/posts/{post_id}/pin", status=500, times=1)
    handle = await start(world, config=fast())
    current = await drained(handle)
    assert_opened_once(world, current)
    assert requests(world, "POST", f"/api/v4/posts/{current.post_ids['opening']}/pin") == [500, 200]
    assert failures(current) == []


@pytest.mark.slow
async def test_the_opening_post_is_pinned_when_the_worker_dies_between_post_and_pin(world: World) -> None:
    queue = f"pin-kill-{uuid.uuid4().hex[:8]}"
    # The pin hangs (and then fails): the worker dies while the post is made but not pinned.
    world.standin.add_fault("POST", "/api/v4/posts/{post_id}/pin", delay=3.0, status=503, times=1)
    config = fast(activity_timeout_seconds=2.0)
    async with worker_process(world, queue) as first:
        handle = await start(world, name="Pin kill", task_queue=queue, config=config)
        await eventually(_pin_arrived(world), what="the pin request")
        first.send_signal(signal.SIGKILL)
        await first.wait()
    async with worker_process(world, queue):
        current = await drained(handle)
    assert_opened_once(world, current)
    assert_once_in_order(world, current.channel_id or "")


def _pin_arrived(world: World) -> Any:
    async def probe() -> bool:
        return any(r["path"].endswith("/pin") for r in world.standin.faults_taken)

    return probe


async def test_refused_pin_keeps_the_post_and_is_reported(world: World) -> None:
    world.standin.add_fault("POST", "/api/v4/posts/{post_id}/pin", status=403, times=1)
    handle = await start(world, config=fast())
    current = await drained(handle)
    openings = [p for p in world.standin.posts(current.channel_id or "") if p["message"].startswith(OPENING)]
    assert len(openings) == 1
    assert openings[0]["is_pinned"] is False
    assert current.post_ids["opening"] == openings[0]["id"]
    assert [f.split(":")[0] for f in failures(current)] == ["Could not pin the post"]


# --------------------------------------------------------------------------- unavailability


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v4/channels"),
        ("POST", "/api/v4/channels/{channel_id}/members"),
        ("POST", "/api/v4/posts"),
        ("POST", "/api/v4/posts/{post_id}/pin"),
    ],
    ids=["channel", "invites", "posts", "pins"],
)
@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, None), (429, 1)], ids=["500", "503", "429"])
async def test_unavailability_at_each_step_of_the_start_is_retried_to_one_result(
    world: World, method: str, path: str, status: int, retry_after: int | None
) -> None:
    world.standin.add_fault(method, path, status=status, retry_after=retry_after, times=2)
    handle = await start(world, invited=[fact(world.carol, member=False)], config=fast())
    current = await drained(handle)
    faulted = path.replace("{channel_id}", current.channel_id or "")
    faulted = faulted.replace("{post_id}", current.post_ids.get("opening", ""))
    assert world.standin.faults_taken[-2:] == [{"method": method, "path": faulted}] * 2
    assert_opened_once(world, current)
    assert_once_in_order(world, current.channel_id or "")
    assert {world.alice.id, world.carol.id} <= set(world.standin.channel_members(current.channel_id or ""))
    assert failures(current) == []


async def test_an_unavailable_reminder_is_posted_once(world: World) -> None:
    handle = await start(world, book=playbook(world, reminder_timer_default_seconds=1), config=fast())
    await drained(handle)
    before = len(world.standin.faults_taken)
    world.standin.add_fault("POST", "/api/v4/posts", status=503, times=2)
    await eventually(lambda: _taken(world), lambda n: n == before + 2, what="two refused reminder posts")
    await update(handle, EndIncident(actor=actor(world.alice)))
    final: IncidentState = await handle.result()
    # Reminders lose their buttons once the incident ends: count them by what they say.
    reminders = [
        p for p in bot_posts(world, final.channel_id or "") if "there has been no status update" in p["message"]
    ]
    sent = [e for e in final.timeline if e.type == EventType.REMINDER_SENT]
    assert len(sent) >= 1
    assert len(reminders) == len(sent)
    assert failures(final) == []
    assert_once_in_order(world, final.channel_id or "")


async def _taken(world: World) -> int:
    return len(world.standin.faults_taken)


# --------------------------------------------------------------------------- refusals


async def test_a_broadcast_channel_without_the_bot_is_on_the_timeline_and_told_in_the_incident_channel_once(
    world: World,
) -> None:
    standin = world.standin
    news = standin.create_channel(world.team_id, "incident-news", "Incident news", type="P")
    standin.add_channel_member(news["id"], world.stack.bot["id"])
    handle = await start(world, book=playbook(world, broadcast_channel_ids=[news["id"]]), config=fast())
    await settled(handle)
    assert len(bot_posts(world, news["id"])) == 1  # the start was broadcast
    # Someone removes the bot from the private broadcast channel; the next broadcasts are refused.
    standin.remove_channel_member(news["id"], world.stack.bot["id"])
    alice = actor(world.alice)
    await update(handle, PostStatusUpdate(actor=alice, message="Failing over"))
    await update(handle, PostStatusUpdate(actor=alice, message="Recovered"))
    current = await drained(handle)
    bot = f"@{world.stack.bot['username']}"
    assert failures(current) == [
        f"Could not post to ~incident-news: {bot} may not post in ~incident-news (not a member of the channel); "
        f"add {bot} to ~incident-news"
    ]
    assert current.failing_lanes[f"channel:{news['id']}"].failed == 2
    messages = [p["message"] for p in bot_posts(world, current.channel_id or "")]
    assert messages.count(failures(current)[0]) == 1
    assert any("Failing over" in m for m in messages)
    assert any("Recovered" in m for m in messages)
    assert len(bot_posts(world, news["id"])) == 1
    assert_once_in_order(world, current.channel_id or "")


async def test_a_channel_refusing_every_change_is_one_failure_and_once_it_works_again_one_recovery(
    world: World,
) -> None:
    standin = world.standin
    news = standin.create_channel(world.team_id, "incident-news", "Incident news", type="O")["id"]
    standin.add_channel_member(news, world.stack.bot["id"])
    handle = await start(world, book=playbook(world, broadcast_channel_ids=[news]), config=fast())
    ready = await drained(handle)
    assert len(bot_posts(world, news)) == 1  # the start was broadcast
    standin.add_fault("POST", "/api/v4/posts", status=403, channel_id=news)
    alice = actor(world.alice)
    for n in range(4):
        await update(handle, PostStatusUpdate(actor=alice, message=f"Refused {n}"))
    refused = await drained(handle)
    [failure] = failures(refused)
    assert failure.startswith("Could not post to ~incident-news: Mattermost refused to post a message")
    assert refused.failing_lanes[f"channel:{news}"].failed == 4
    here = [p["message"] for p in bot_posts(world, ready.channel_id or "")]
    assert here.count(failure) == 1, "the incident channel is told once"
    assert all(any(f"Refused {n}" in m for m in here) for n in range(4))

    standin.clear_faults()
    await update(handle, PostStatusUpdate(actor=alice, message="Works"))
    current = await drained(handle)
    assert failures(current) == [failure]
    assert [e.summary for e in current.timeline if e.type == EventType.EFFECT_RECOVERED] == [
        "Posting to ~incident-news works again; 4 actions there could not be carried out meanwhile"
    ]
    assert current.failing_lanes == {}
    started, works = [p["message"] for p in bot_posts(world, news)]  # the refused ones were skipped
    assert ("started by" in started, "Works" in works) == (True, True)
    assert_once_in_order(world, news)
    assert_once_in_order(world, ready.channel_id or "")


@pytest.mark.parametrize(
    ("method", "path", "status", "what"),
    [
        ("POST", "/api/v4/channels/{channel_id}/members", 403, "invite"),
        ("POST", "/api/v4/posts", 404, "post"),
        ("PUT", "/api/v4/channels/{channel_id}/patch", 403, "header"),
    ],
)
async def test_a_refusal_is_reported_once_and_skipped(
    world: World, method: str, path: str, status: int, what: str
) -> None:
    handle = await start(world, config=fast())
    ready = await drained(handle)
    world.standin.add_fault(method, path, status=status, times=1)
    alice = actor(world.alice)
    if what == "invite":
        dave = fact(world.dave, member=False)
        await update(handle, InviteMembers(actor=alice, users=[dave]))
    elif what == "post":
        await update(handle, PostStatusUpdate(actor=alice, message="Refused"))
    else:
        await update(handle, ChangeCommander(actor=alice, commander=fact(world.bob)))
    await update(handle, PostStatusUpdate(actor=alice, message="After"))
    current = await drained(handle)
    assert status in requests(world, method, path.replace("{channel_id}", ready.channel_id or ""))
    expected = {"invite": EventType.INVITE_FAILED, "post": EventType.EFFECT_FAILED, "header": EventType.EFFECT_FAILED}
    assert len([e for e in current.timeline if e.type == expected[what]]) == 1
    assert any("After" in p["message"] for p in bot_posts(world, current.channel_id or ""))
    assert_once_in_order(world, current.channel_id or "")


async def test_channel_creation_refused_with_404_fails_the_start_once(world: World) -> None:
    since = len(world.standin.requests)
    world.standin.add_fault("POST", "/api/v4/channels", status=404, times=1)
    handle = await start(world, name="Never opened", config=fast())
    result: IncidentState = await handle.result()
    assert result.status == IncidentStatus.FAILED
    assert requests(world, "POST", "/api/v4/channels", since) == [404]
    assert not [c for c in world.standin.channels(world.team_id) if c["display_name"] == "Never opened"]


async def test_a_refused_reminder_is_reported_and_the_rhythm_goes_on(world: World) -> None:
    handle = await start(world, book=playbook(world, reminder_timer_default_seconds=1), config=fast())
    await drained(handle)
    world.standin.add_fault("POST", "/api/v4/posts", status=403, times=1)
    current = await eventually(
        lambda: state(handle),
        lambda s: len([e for e in s.timeline if e.type == EventType.REMINDER_SENT]) >= 2 and not s.outbox,
        what="two reminders",
    )
    await update(handle, EndIncident(actor=actor(world.alice)))
    final: IncidentState = await handle.result()
    reminders = [p for p in bot_posts(world, current.channel_id or "") if "status update" in p["message"].lower()]
    assert len(failures(final)) == 1
    assert failures(final)[0].startswith("Could not post to the incident channel")
    assert len(reminders) >= 1
    assert_once_in_order(world, final.channel_id or "")


# --------------------------------------------------------------------------- lanes and recovery


async def test_a_failing_header_holds_back_nothing_and_is_given_up_after_the_bound(world: World) -> None:
    handle = await start(world, config=fast(effect_give_up_seconds=6.0))
    ready = await drained(handle)
    patch = f"/api/v4/channels/{ready.channel_id}/patch"
    world.standin.add_fault("PUT", patch, status=500)  # this channel's header, for good
    await update(handle, EndIncident(actor=actor(world.alice)))

    async def resolved() -> int:
        month = stats_month(ready.started_at)
        shard = world.stack.temporal.get_workflow_handle_for(
            IncidentStatsWorkflow.run, stats_workflow_id(world.team_id, month)
        )
        return len((await shard.query(IncidentStatsWorkflow.slice, StatsWindow())).resolved)

    # Statistics and the channel's posts are not held behind the header.
    await eventually(resolved, lambda n: n == 1, timeout=4, what="the ended incident in the statistics")
    posts = [p["message"] for p in bot_posts(world, ready.channel_id or "")]
    assert any("ended the incident" in m for m in posts)
    assert (await state(handle)).outbox, "the header is still being retried"
    final: IncidentState = await handle.result()
    assert [f.split(":")[0] for f in failures(final)] == ["Could not update the channel header"]
    assert "did not accept it within 6s" in failures(final)[0]
    # Retried with backoff until the bound, then given up: the workflow completed without it.
    assert len(requests(world, "PUT", patch)) >= 3
    assert set(requests(world, "PUT", patch)) == {500}


async def test_an_unavailable_broadcast_channel_holds_back_only_itself(world: World) -> None:
    standin = world.standin
    off_topic = world.channels["off-topic"]["id"]
    news = standin.create_channel(world.team_id, "incident-news", "Incident news", type="O")["id"]
    standin.add_channel_member(news, world.stack.bot["id"])
    handle = await start(world, book=playbook(world, broadcast_channel_ids=[news, off_topic]), config=fast())
    ready = await drained(handle)
    standin.add_fault("POST", "/api/v4/posts", status=503, channel_id=news)
    alice = actor(world.alice)
    for n in range(3):
        await update(handle, PostStatusUpdate(actor=alice, message=f"Lane {n}"))

    def lane_posts(channel_id: str) -> int:
        return len([p for p in bot_posts(world, channel_id) if "Lane " in p["message"] and not checklist(p)])

    await standin.wait_for(lambda: lane_posts(ready.channel_id or "") == 3 and lane_posts(off_topic) == 3)
    failing_lane = f"channel:{news}"

    def lanes(current: IncidentState) -> list[str]:
        return [lane_of(p.effect, ready.channel_id) for p in current.outbox]

    # Everything else is done (a statistics report may still be under way); the three
    # broadcasts to the failing channel wait in its lane.
    held = await eventually(lambda: state(handle), lambda s: set(lanes(s)) <= {failing_lane, "stats"})
    assert lanes(held).count(failing_lane) == 3
    assert lane_posts(news) == 0
    standin.clear_faults()
    current = await drained(handle)
    for channel_id in (ready.channel_id or "", off_topic, news):
        posts = assert_once_in_order(world, channel_id)
        lane = [p["message"].split("Lane ")[1][0] for p in posts if "Lane " in p["message"] and not checklist(p)]
        assert lane == ["0", "1", "2"]
    assert failures(current) == []


async def test_429_with_retry_after_is_honoured_and_posts_stay_once_in_order(world: World) -> None:
    handle = await start(world, config=fast())
    ready = await drained(handle)
    since = len(world.standin.requests)
    world.standin.add_fault("POST", "/api/v4/posts", status=429, retry_after=1, times=3)
    alice = actor(world.alice)
    loop = asyncio.get_running_loop()
    began = loop.time()
    for n in range(5):
        await update(handle, PostStatusUpdate(actor=alice, message=f"Update {n}"))
    current = await drained(handle)
    took = loop.time() - began
    assert took >= 3.0, f"three Retry-After: 1 answers must take 3 s, took {took:.1f}s"
    assert requests(world, "POST", "/api/v4/posts", since) == [429, 429, 429] + [201] * 5
    posts = assert_once_in_order(world, ready.channel_id or "")
    updates = status_posts(posts, "Update ")
    assert len(updates) == 5
    assert [u.split("Update ")[1][0] for u in updates] == ["0", "1", "2", "3", "4"]
    assert len([e for e in current.timeline if e.type == EventType.STATUS_UPDATE]) == 5


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (429, 1)], ids=["500", "429"])
async def test_checklist_edits_under_unavailability_end_with_one_post_showing_the_final_state(
    world: World, status: int, retry_after: int | None
) -> None:
    handle = await start(world, book=playbook(world), config=fast())
    ready = await drained(handle)
    opening = ready.post_ids["opening"]
    patch = f"/api/v4/posts/{opening}/patch"
    since = len(world.standin.requests)
    world.standin.add_fault("PUT", "/api/v4/posts/{post_id}/patch", status=status, retry_after=retry_after, times=3)
    alice = actor(world.alice)
    await update(handle, SetItemState(actor=alice, stage=0, item=0, state="done"))
    await update(handle, AddItem(actor=alice, stage=1, title="Step 1"))
    # More changes while the edit is being retried.
    await world.standin.wait_for(lambda: len(requests(world, "PUT", patch, since)) >= 1)
    for n in (2, 3, 4):
        await update(handle, AddItem(actor=alice, stage=1, title=f"Step {n}"))
    await update(handle, SetItemState(actor=alice, stage=0, item=1, state="done"))
    current = await drained(handle)
    answers = requests(world, "PUT", patch, since)
    assert answers[:3] == [status] * 3
    assert set(answers[3:]) == {200}
    [post] = [p for p in world.standin.posts(ready.channel_id or "") if checklist(p)]
    assert post["id"] == opening
    assert "1. [x] Page DBA" in post["message"]
    assert "2. [x] Logs" in post["message"]
    assert all(f"Step {n}" in post["message"] for n in (1, 2, 3, 4))
    assert_opened_once(world, current)
    assert_once_in_order(world, ready.channel_id or "")
    assert failures(current) == []


@pytest.mark.slow
async def test_after_a_503_burst_the_backlog_drains_within_seconds(world: World) -> None:
    # Production backoff: the default ceiling (ACTIVITY_MAX_RETRY_INTERVAL_SECONDS), not the tests' short one.
    ceiling = Settings.model_fields["activity_max_retry_interval_seconds"].default
    handle = await start(world, config=fast(activity_max_retry_interval_seconds=ceiling))
    ready = await drained(handle)
    world.standin.add_fault("POST", "/api/v4/posts", status=503)
    alice = actor(world.alice)
    for n in range(8):
        await update(handle, PostStatusUpdate(actor=alice, message=f"Burst {n}"))
    await pending_attempt(handle, 5)  # backed off to the ceiling
    world.standin.clear_faults()
    loop = asyncio.get_running_loop()
    recovered = loop.time()
    current = await drained(handle)
    took = loop.time() - recovered
    assert took < ceiling + 3.0, f"the backlog took {took:.1f}s to drain after recovery"
    posts = assert_once_in_order(world, ready.channel_id or "")
    assert len(status_posts(posts, "Burst ")) == 8
    assert failures(current) == []


async def test_mattermost_down_during_start_opens_once_when_it_is_back(world: World) -> None:
    standin = world.standin
    await standin.stop()
    try:
        handle = await start(world, name="Down at start", config=fast())
        await pending_attempt(handle, 3)
    finally:
        await standin.start()
    current = await drained(handle)
    assert_opened_once(world, current)
    assert_once_in_order(world, current.channel_id or "")
    assert failures(current) == []


async def test_mattermost_down_mid_incident_loses_and_repeats_nothing(world: World) -> None:
    standin = world.standin
    handle = await start(world, config=fast())
    ready = await drained(handle)
    alice = actor(world.alice)
    await standin.stop()
    try:
        for n in range(3):
            await update(handle, PostStatusUpdate(actor=alice, message=f"Dark {n}"))
        await pending_attempt(handle, 3)
    finally:
        await standin.start()
    current = await drained(handle)
    posts = assert_once_in_order(world, ready.channel_id or "")
    assert len(status_posts(posts, "Dark ")) == 3
    assert_opened_once(world, current)


# --------------------------------------------------------------------------- processes


@pytest.mark.slow
async def test_worker_killed_mid_burst_applies_and_posts_everything_once(world: World) -> None:
    queue = f"burst-{uuid.uuid4().hex[:8]}"
    alice = actor(world.alice)
    async with worker_process(world, queue) as first:
        handle = await start(world, name="Burst kill", task_queue=queue, config=fast(activity_timeout_seconds=2.0))
        await drained(handle)
        world.standin.add_fault("POST", "/api/v4/posts", delay=0.3)  # slow enough to be caught mid-burst
        for n in range(12):
            await update(handle, PostStatusUpdate(actor=alice, message=f"Kill {n}"))
        await activity_started(handle, "post_message", occurrence=4)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    world.standin.clear_faults()
    async with worker_process(world, queue):
        current = await drained(handle)
    assert_updates_once(world, current, "Kill ", 12)


@pytest.mark.slow
async def test_temporal_stopped_and_restarted_loses_and_repeats_nothing(world: World, tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    alice = actor(world.alice)
    async with own_server(db_file=db) as (_, client), own_worker(world, client):
        handle = await start(world, client=client, name="Server restart", config=fast())
        await drained(handle)
        world.standin.add_fault("POST", "/api/v4/posts", delay=0.2)
        for n in range(6):
            await update(handle, PostStatusUpdate(actor=alice, message=f"Gap {n}"))
    world.standin.clear_faults()
    async with own_server(db_file=db) as (_, client), own_worker(world, client):
        back = client.get_workflow_handle_for(IncidentWorkflow.run, handle.id)
        current = await drained(back)
    assert_updates_once(world, current, "Gap ", 6)
