"""Fault injection, going down and coming back, ``wait_for`` and the ``/_standin/`` controls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mattermostautodriver.exceptions import TooManyRequests, UnknownMattermostError

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, unique


@pytest.fixture
async def fresh() -> AsyncIterator[tuple[StandIn, dict[str, Any]]]:
    """A stand-in of its own: faults and restarts must not leak into other tests."""
    instance = StandIn()
    await instance.start()
    world = instance.seed_demo(command_url="http://127.0.0.1:9/unused")
    yield instance, world
    await instance.stop()


async def test_429_answers_plain_text_with_retry_after(fresh: tuple[StandIn, dict[str, Any]], connect: Connect) -> None:
    standin, world = fresh
    standin.add_fault("POST", "/api/v4/posts", status=429, retry_after=7, times=1)
    town_square = world["channels"]["town-square"]["id"]
    bot = connect(standin, world["bot"]["token"])
    with pytest.raises(TooManyRequests) as limited:
        await bot.posts.create_post(channel_id=town_square, message="hi")
    assert limited.value.retry_after == 7
    assert limited.value.error_id is None  # the rate limiter's body is not a JSON error
    assert str(limited.value).strip() == "limit exceeded"
    assert (await bot.posts.create_post(channel_id=town_square, message="hi"))["message"] == "hi"  # times=1 cleared
    assert [r["status"] for r in standin.requests[-2:]] == [429, 201]


async def test_429_on_the_wire(fresh: tuple[StandIn, dict[str, Any]]) -> None:
    standin, world = fresh
    standin.add_fault("*", "/api/v4/users/{user_id}", status=429, retry_after=2)
    async with httpx.AsyncClient(base_url=standin.url) as http:
        response = await http.get("/api/v4/users/me", headers={"Authorization": f"Bearer {world['bot']['token']}"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "limit exceeded\n"


async def test_the_driver_retries_a_429_after_retry_after(
    fresh: tuple[StandIn, dict[str, Any]], connect: Connect
) -> None:
    standin, world = fresh
    standin.add_fault("GET", "/api/v4/users/me", status=429, retry_after=0, times=2)
    me = await connect(standin, world["bot"]["token"], max_retries=3).users.get_user("me")
    assert me["username"] == "incident-bot"
    assert [r["status"] for r in standin.requests if r["path"] == "/api/v4/users/me"] == [429, 429, 200]


async def test_5xx_faults_answer_json_errors_and_clear_after_times(
    fresh: tuple[StandIn, dict[str, Any]], connect: Connect
) -> None:
    standin, world = fresh
    channel_id = world["channels"]["off-topic"]["id"]
    standin.add_fault("POST", "/api/v4/channels/{channel_id}/members", status=503, times=2)
    bot = connect(standin, world["bot"]["token"])
    for _ in range(2):
        with pytest.raises(UnknownMattermostError) as unavailable:
            await bot.channels.add_channel_member(channel_id, user_id=world["users"]["bob"]["user"]["id"])
        assert unavailable.value.status_code == 503
        assert unavailable.value.error_id == "standin.fault.injected.app_error"
    member = await bot.channels.add_channel_member(channel_id, user_id=world["users"]["bob"]["user"]["id"])
    assert member["user_id"] == world["users"]["bob"]["user"]["id"]
    standin.add_fault(
        "GET", "/api/v4/system/ping", status=502, body='{"id": "proxy", "message": "bad gateway", "request_id": ""}'
    )
    with pytest.raises(UnknownMattermostError) as bad_gateway:
        await bot.system.get_ping()
    assert (bad_gateway.value.status_code, bad_gateway.value.error_id) == (502, "proxy")
    standin.clear_faults()
    assert (await bot.system.get_ping())["status"] == "OK"


async def test_a_fault_limited_to_a_channel_spares_the_others(
    fresh: tuple[StandIn, dict[str, Any]], connect: Connect
) -> None:
    standin, world = fresh
    town_square = world["channels"]["town-square"]["id"]
    off_topic = world["channels"]["off-topic"]["id"]
    standin.add_fault("*", "/api/v4/{any}", status=503, channel_id=off_topic)
    standin.add_fault("*", "/api/v4/channels/{channel_id}", status=503, channel_id=off_topic)
    bot = connect(standin, world["bot"]["token"])
    assert (await bot.posts.create_post(channel_id=town_square, message="here"))["message"] == "here"
    with pytest.raises(UnknownMattermostError) as refused:
        await bot.posts.create_post(channel_id=off_topic, message="not there")
    assert refused.value.status_code == 503
    with pytest.raises(UnknownMattermostError):
        await bot.channels.get_channel(off_topic)
    assert (await bot.channels.get_channel(town_square))["id"] == town_square
    assert [p["message"] for p in standin.posts(off_topic)] == []


async def test_delay_faults_slow_requests_down(fresh: tuple[StandIn, dict[str, Any]], connect: Connect) -> None:
    standin, world = fresh
    standin.add_fault("GET", "/api/v4/users/me", delay=0.3, times=1)
    bot = connect(standin, world["bot"]["token"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    slow = asyncio.create_task(bot.users.get_user("me"))
    assert (await bot.system.get_ping())["status"] == "OK"  # other requests are not held up
    assert not slow.done()
    assert (await slow)["username"] == "incident-bot"
    assert loop.time() - started >= 0.3


async def test_a_delayed_request_lands_after_its_client_gave_up(fresh: tuple[StandIn, dict[str, Any]]) -> None:
    standin, world = fresh
    town_square = world["channels"]["town-square"]["id"]
    standin.add_fault("POST", "/api/v4/posts", delay=0.5, times=1)
    async with httpx.AsyncClient(base_url=standin.url, timeout=0.1) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                "/api/v4/posts",
                json={"channel_id": town_square, "message": "late"},
                headers={"Authorization": f"Bearer {world['bot']['token']}"},
            )
    assert standin.faults_taken == [{"method": "POST", "path": "/api/v4/posts"}]
    assert standin.in_flight == 1
    await standin.wait_for(lambda: standin.in_flight == 0)
    assert [p["message"] for p in standin.posts(town_square)] == ["late"]
    assert standin.requests[-1] == {
        "method": "POST",
        "path": "/api/v4/posts",
        "status": 201,
        "user_id": world["bot"]["user"]["id"],
    }


async def test_stop_refuses_connections_and_start_serves_the_same_state(
    fresh: tuple[StandIn, dict[str, Any]], connect: Connect
) -> None:
    standin, world = fresh
    bot = connect(standin, world["bot"]["token"])
    channel = await bot.channels.create_channel(
        team_id=world["team"]["id"], name=unique("survives"), display_name="Survives", type="O"
    )
    url = standin.url
    await standin.stop()
    with pytest.raises(httpx.ConnectError):
        await bot.channels.get_channel(channel["id"])
    await standin.start()
    assert standin.url == url
    assert (await bot.channels.get_channel(channel["id"]))["name"] == channel["name"]


async def test_wait_for_wakes_on_changes_and_times_out_clearly(fresh: tuple[StandIn, dict[str, Any]]) -> None:
    standin, world = fresh
    bob_id = world["users"]["bob"]["user"]["id"]
    town_square = world["channels"]["town-square"]["id"]

    async def post_later() -> None:
        async with httpx.AsyncClient(base_url=standin.url) as http:
            await http.post(
                "/api/v4/posts",
                json={"channel_id": town_square, "message": "arrived"},
                headers={"Authorization": f"Bearer {world['users']['bob']['token']}"},
            )

    task = asyncio.create_task(post_later())
    await standin.wait_for(lambda: any(p["message"] == "arrived" for p in standin.posts(town_square)))
    await task
    assert standin.posts(town_square)[-1]["user_id"] == bob_id
    with pytest.raises(TimeoutError, match="never"):
        await standin.wait_for(lambda: bob_id == "never", timeout=0.05)


async def test_standin_controls_over_http(fresh: tuple[StandIn, dict[str, Any]], connect: Connect) -> None:
    standin, world = fresh
    town_square = world["channels"]["town-square"]["id"]
    await connect(standin, world["bot"]["token"]).posts.create_post(channel_id=town_square, message="seen")
    async with httpx.AsyncClient(base_url=standin.url) as http:
        state = (await http.get("/_standin/state")).json()
        posts = (await http.get(f"/_standin/channels/{town_square}/posts")).json()
        added = await http.post(
            "/_standin/faults", json={"method": "GET", "path": "/api/v4/system/ping", "status": 500}
        )
        faulted = await http.get("/api/v4/system/ping")
        listed = (await http.get("/_standin/state")).json()["faults"]
        cleared = await http.delete("/_standin/faults")
        recovered = await http.get("/api/v4/system/ping")
        invalid = await http.post("/_standin/faults", json={"method": "GET", "path": "/x"})
        ephemeral = await http.get("/_standin/ephemeral", params={"user_id": "n" * 26})
        dialogs = await http.get("/_standin/dialogs")
    assert state["teams"] == {"demo": world["team"]["id"]}
    assert state["users"]["incident-bot"] == world["bot"]["user"]["id"]
    assert [p["message"] for p in posts] == ["seen"]
    assert added.status_code == 201
    assert faulted.status_code == 500
    assert listed == [added.json()]
    assert cleared.json() == {"status": "OK"}
    assert recovered.status_code == 200
    assert invalid.status_code == 400
    assert ephemeral.json() == []
    assert dialogs.json() == []
    assert all(not r["path"].startswith("/_standin") for r in standin.requests)


async def test_a_caller_gone_before_its_body_arrived_is_no_failure(
    fresh: tuple[StandIn, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """A worker killed mid-request leaves a body half sent: the stand-in records nothing as
    failed (no traceback, no 500) and goes on serving."""
    standin, world = fresh
    host, port = standin.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/v4/posts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {world['bot']['token']}\r\n".encode()
        + b'Content-Length: 500\r\n\r\n{"channel_id": '
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    reader.feed_eof()

    async def answered() -> bool:
        return any(r["path"] == "/api/v4/posts" and r["method"] == "POST" for r in standin.requests)

    for _ in range(200):
        if await answered():
            break
        await asyncio.sleep(0.01)
    assert await answered()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    async with httpx.AsyncClient(base_url=standin.url) as http:
        assert (await http.get("/api/v4/system/ping")).status_code == 200
