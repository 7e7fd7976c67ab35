"""Direct messages: ``POST /channels/direct`` as ``createDirectChannel`` answers it, and posting and
reading in a direct channel (only its two members may)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import httpx
import pytest
from mattermostautodriver.exceptions import NotEnoughPermissions

from mattermost_standin import StandIn
from mattermost_standin.store import new_id
from tests.standin.standin_support import Connect, refused

PARSE_ERROR = "api.payload.parse.error"
INVALID_BODY = "api.context.invalid_body_param.app_error"
INVALID_USER = "api.channel.create_direct_channel.invalid_user.app_error"
PERMISSIONS = "api.context.permissions.app_error"


@pytest.fixture
def ids(world: dict[str, Any]) -> dict[str, str]:
    """Usernames (and ``bot``) to their user ids."""
    people = {name: person["user"]["id"] for name, person in world["users"].items()}
    return {**people, "bot": world["bot"]["user"]["id"]}


@pytest.fixture
def tokens(world: dict[str, Any]) -> dict[str, str]:
    return {**{name: person["token"] for name, person in world["users"].items()}, "bot": world["bot"]["token"]}


async def open_direct(standin: StandIn, token: str, user_ids: list[str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=standin.url) as http:
        return await http.post("/api/v4/channels/direct", json=user_ids, headers={"Authorization": f"Bearer {token}"})


def dm_name(user_a: str, user_b: str) -> str:
    return "__".join(sorted((user_a, user_b)))


async def test_the_bot_opens_a_direct_channel_with_a_user(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str]
) -> None:
    response = await open_direct(standin, tokens["bot"], [ids["bot"], ids["bob"]])
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    channel = response.json()
    assert channel["type"] == "D"
    assert channel["team_id"] == ""
    assert channel["name"] == dm_name(ids["bot"], ids["bob"])
    assert (channel["display_name"], channel["header"], channel["purpose"]) == ("", "", "")
    assert channel["creator_id"] == ids["bot"], "the first id of the body, as GetOrCreateDirectChannel has it"
    assert sorted(standin.channel_members(channel["id"])) == sorted([ids["bot"], ids["bob"]])
    found = standin.direct_channel(ids["bob"], ids["bot"])
    assert found is not None
    assert found["id"] == channel["id"]


async def test_members_are_plain_channel_users(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str], connect: Connect
) -> None:
    channel = (await open_direct(standin, tokens["carol"], [ids["carol"], ids["dave"]])).json()
    members = await connect(standin, tokens["dave"]).channels.get_channel_members(channel["id"])
    assert {m["user_id"] for m in members} == {ids["carol"], ids["dave"]}
    assert {(m["roles"], m["scheme_user"], m["scheme_admin"]) for m in members} == {("channel_user", True, False)}


async def test_opening_it_again_answers_the_same_channel_in_either_order(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str]
) -> None:
    first = await open_direct(standin, tokens["bob"], [ids["bob"], ids["carol"]])
    again = await open_direct(standin, tokens["carol"], [ids["bob"], ids["carol"]])
    reversed_ = await open_direct(standin, tokens["bob"], [ids["carol"], ids["bob"]])
    assert [r.status_code for r in (first, again, reversed_)] == [201, 201, 201]
    assert first.json()["id"] == again.json()["id"] == reversed_.json()["id"]
    assert reversed_.json()["creator_id"] == ids["bob"], "the channel as it was made"


@pytest.mark.parametrize("body", ["me", "me twice"])
async def test_a_user_may_open_a_direct_channel_with_themselves(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str], body: str
) -> None:
    user_ids = [ids["dave"]] if body == "me" else [ids["dave"], ids["dave"]]
    response = await open_direct(standin, tokens["dave"], user_ids)
    assert response.status_code == 201
    assert response.json()["name"] == f"{ids['dave']}__{ids['dave']}"
    assert standin.channel_members(response.json()["id"]) == [ids["dave"]]


@pytest.mark.parametrize(
    ("body", "error_id"),
    [
        ('{"user_ids": []}', PARSE_ERROR),
        ("[", PARSE_ERROR),
        ("", PARSE_ERROR),
        ("[1, 2]", PARSE_ERROR),
        ("null", INVALID_BODY),
        ("[]", INVALID_BODY),
        ('["{other}"]', INVALID_BODY),
        ('["{me}", "{other}", "{third}"]', INVALID_BODY),
        ('["{other}", "{other}"]', INVALID_BODY),  # duplicates are dropped before counting
        ('["{me}", "not-an-id"]', INVALID_BODY),
    ],
)
async def test_malformed_requests_are_refused(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str], body: str, error_id: str
) -> None:
    raw = body.replace("{me}", ids["bob"]).replace("{other}", ids["carol"]).replace("{third}", ids["dave"])
    async with httpx.AsyncClient(base_url=standin.url) as http:
        response = await http.post(
            "/api/v4/channels/direct", content=raw.encode(), headers={"Authorization": f"Bearer {tokens['bob']}"}
        )
    assert response.status_code == 400
    assert response.json()["id"] == error_id


async def test_only_a_system_admin_opens_a_direct_channel_for_others(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str]
) -> None:
    refused = await open_direct(standin, tokens["bob"], [ids["carol"], ids["dave"]])
    assert refused.status_code == 403
    assert refused.json()["id"] == PERMISSIONS
    assert "permission=manage_system" in refused.json()["detailed_error"]
    bot_refused = await open_direct(standin, tokens["bot"], [ids["carol"], ids["dave"]])
    assert bot_refused.status_code == 403
    allowed = await open_direct(standin, tokens["alice"], [ids["carol"], ids["dave"]])
    assert allowed.status_code == 201
    assert sorted(standin.channel_members(allowed.json()["id"])) == sorted([ids["carol"], ids["dave"]])


async def test_a_user_that_does_not_exist_is_refused(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str]
) -> None:
    response = await open_direct(standin, tokens["bot"], [ids["bot"], new_id()])
    assert response.status_code == 400
    assert response.json()["id"] == INVALID_USER


async def test_no_token_is_401(standin: StandIn, ids: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=standin.url) as http:
        response = await http.post("/api/v4/channels/direct", json=[ids["bob"], ids["carol"]])
    assert response.status_code == 401


EditRole = Callable[..., Awaitable[None]]


@pytest.fixture
async def edit_role(standin: StandIn, tokens: dict[str, str], connect: Connect) -> AsyncIterator[EditRole]:
    """``await edit_role(name, remove=[...], add=[...])``; every edited role is restored afterwards."""
    admin = connect(standin, tokens["alice"])
    originals: dict[str, list[str]] = {}

    async def edit(name: str, *, remove: Iterable[str] = (), add: Iterable[str] = ()) -> None:
        granted = (await admin.roles.get_role_by_name(name))["permissions"]
        originals.setdefault(name, granted)
        standin.set_role_permissions(name, [p for p in granted if p not in set(remove)] + list(add))

    yield edit
    for name, granted in originals.items():
        standin.set_role_permissions(name, granted)


async def test_without_create_direct_channel_it_is_refused(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str], edit_role: EditRole
) -> None:
    await edit_role("system_user", remove=["create_direct_channel"])
    response = await open_direct(standin, tokens["bob"], [ids["bob"], ids["carol"]])
    assert response.status_code == 403
    assert "permission=create_direct_channel" in response.json()["detailed_error"]


async def test_without_view_members_only_people_one_shares_a_channel_with_are_reachable(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str], edit_role: EditRole
) -> None:
    """``UserCanSeeOtherUser``: without the system-wide ``view_members``, the other user must share a
    channel with the caller (or a team where the caller holds ``view_members``, whose town square
    they share anyway)."""
    loner = standin.create_user(f"loner-{new_id()[:8]}")
    await edit_role("system_user", remove=["view_members"])
    unseen = await open_direct(standin, tokens["bob"], [ids["bob"], loner["id"]])
    assert unseen.status_code == 403
    assert "permission=view_members" in unseen.json()["detailed_error"]
    in_town_square = await open_direct(standin, tokens["bob"], [ids["bob"], ids["carol"]])
    assert in_town_square.status_code == 201


async def test_its_two_members_post_and_read_and_others_get_403(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str], connect: Connect
) -> None:
    bot, bob, carol = (connect(standin, tokens[name]) for name in ("bot", "bob", "carol"))
    channel = (await open_direct(standin, tokens["bot"], [ids["bot"], ids["bob"]])).json()
    post = await bot.posts.create_post(channel_id=channel["id"], message="Your command finished", props={"k": "v"})
    reply = await bob.posts.create_post(channel_id=channel["id"], message="thanks")
    listed = await bob.posts.get_posts_for_channel(channel["id"])
    assert listed["order"][:2] == [reply["id"], post["id"]]
    assert listed["posts"][post["id"]]["props"] == {"k": "v"}
    assert (await bob.channels.get_channel(channel["id"]))["type"] == "D"
    assert (await bot.posts.get_post(reply["id"]))["message"] == "thanks"
    assert [p["message"] for p in standin.posts(channel["id"])] == ["Your command finished", "thanks"]
    refused_calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: carol.channels.get_channel(channel["id"]),
        lambda: carol.posts.get_posts_for_channel(channel["id"]),
        lambda: carol.posts.get_post(post["id"]),
        lambda: carol.posts.create_post(channel_id=channel["id"], message="let me in"),
    ]
    for refused_call in refused_calls:
        with refused(NotEnoughPermissions, PERMISSIONS):
            await refused_call()


async def test_a_users_channels_in_a_team_include_their_direct_channels(
    standin: StandIn, world: dict[str, Any], ids: dict[str, str], tokens: dict[str, str], connect: Connect
) -> None:
    """``GetChannelsForTeamForUser`` lists the channels of no team (direct and group messages) too."""
    channel = (await open_direct(standin, tokens["dave"], [ids["dave"], ids["bot"]])).json()
    dave = await connect(standin, tokens["dave"]).channels.get_channels_for_team_for_user("me", world["team"]["id"])
    assert channel["id"] in {c["id"] for c in dave}
    carol = await connect(standin, tokens["carol"]).channels.get_channels_for_team_for_user("me", world["team"]["id"])
    assert channel["id"] not in {c["id"] for c in carol}


async def test_the_inspection_lists_direct_channels(
    standin: StandIn, ids: dict[str, str], tokens: dict[str, str]
) -> None:
    channel = (await open_direct(standin, tokens["bob"], [ids["bob"], ids["dave"]])).json()
    async with httpx.AsyncClient(base_url=standin.url) as http:
        listed = (await http.get("/_standin/state")).json()["channels"]
    assert listed[f"direct/{dm_name(ids['bob'], ids['dave'])}"] == channel["id"]
    assert standin.direct_channel(ids["bob"], new_id()) is None
