"""Every create endpoint answers 201, as the API reference says; reads answer 200."""

from __future__ import annotations

from typing import Any

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, unique


async def test_creates_answer_201(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    alice = connect(standin, world["users"]["alice"]["token"])
    team_id = world["team"]["id"]
    user = await alice.users.create_user(
        email=f"{unique('f')}@example.com", username=unique("frank"), password="longenough"
    )
    await alice.users.create_user_access_token(user["id"], description="status codes")
    team = await alice.teams.create_team(name=unique("status"), display_name="Status", type="O")
    await alice.teams.add_team_member(team["id"], user_id=user["id"])
    channel = await alice.channels.create_channel(team_id=team_id, name=unique("status"), display_name="S", type="O")
    await alice.channels.add_channel_member(channel["id"], user_id=world["users"]["bob"]["user"]["id"])
    await alice.posts.create_post(channel_id=channel["id"], message="201")
    await alice.posts.create_post_ephemeral(user_id=user["id"], post={"channel_id": channel["id"], "message": "e"})
    await alice.bots.create_bot(username=unique("statusbot"))
    await alice.commands.create_command(team_id=team_id, method="P", trigger=unique("status"), url="http://h/x")
    await alice.channels.get_channel(channel["id"])

    statuses = {(r["method"], r["path"]): r["status"] for r in standin.requests}
    assert statuses[("POST", "/api/v4/users")] == 201
    assert statuses[("POST", f"/api/v4/users/{user['id']}/tokens")] == 201
    assert statuses[("POST", "/api/v4/teams")] == 201
    assert statuses[("POST", f"/api/v4/teams/{team['id']}/members")] == 201
    assert statuses[("POST", "/api/v4/channels")] == 201
    assert statuses[("POST", f"/api/v4/channels/{channel['id']}/members")] == 201
    assert statuses[("POST", "/api/v4/posts")] == 201
    assert statuses[("POST", "/api/v4/posts/ephemeral")] == 201
    assert statuses[("POST", "/api/v4/bots")] == 201
    assert statuses[("POST", "/api/v4/commands")] == 201
    assert statuses[("GET", f"/api/v4/channels/{channel['id']}")] == 200
