"""Posts: creation rules, listing, edits, pins and ephemeral posts."""

from __future__ import annotations

from typing import Any

import pytest
from mattermostautodriver.exceptions import InvalidOrMissingParameters, NotEnoughPermissions, ResourceNotFound

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect, refused, unique


@pytest.fixture
def channel(standin: StandIn, world: dict[str, Any]) -> dict[str, Any]:
    """A fresh public channel the bot created (so it is a member)."""
    return standin.create_channel(world["team"]["id"], unique("posts"), "Posts", creator_id=world["bot"]["user"]["id"])


async def test_create_post_with_props_answers_201(
    standin: StandIn, world: dict[str, Any], connect: Connect, channel: dict[str, Any]
) -> None:
    bot = connect(standin, world["bot"]["token"])
    props = {"incident_id": "inc-1", "attachments": [{"title": "SEV2", "fields": [{"title": "a", "value": "b"}]}]}
    post = await bot.posts.create_post(channel_id=channel["id"], message="Incident declared", props=props)
    assert (post["message"], post["user_id"], post["channel_id"]) == (
        "Incident declared",
        world["bot"]["user"]["id"],
        channel["id"],
    )
    assert post["props"] == props
    assert len(post["id"]) == 26
    assert post["create_at"] == post["update_at"]
    assert standin.posts(channel["id"])[-1]["props"] == props
    fetched = await bot.posts.get_post(post["id"])
    assert fetched["message"] == "Incident declared"


async def test_message_length_is_counted_in_runes(
    standin: StandIn, world: dict[str, Any], connect: Connect, channel: dict[str, Any]
) -> None:
    bot = connect(standin, world["bot"]["token"])
    longest = await bot.posts.create_post(channel_id=channel["id"], message="é" * 16383)
    assert len(longest["message"]) == 16383
    with refused(InvalidOrMissingParameters, "model.post.is_valid.message_length.app_error"):
        await bot.posts.create_post(channel_id=channel["id"], message="é" * 16384)
    with pytest.raises(InvalidOrMissingParameters):
        await bot.posts.patch_post(longest["id"], message="x" * 16384)


async def test_posting_needs_channel_membership(standin: StandIn, world: dict[str, Any], connect: Connect) -> None:
    people = world["users"]
    elsewhere = standin.create_channel(
        world["team"]["id"], unique("nobot"), "No bot", creator_id=people["bob"]["user"]["id"]
    )
    with refused(NotEnoughPermissions, "api.context.permissions.app_error"):
        await connect(standin, world["bot"]["token"]).posts.create_post(channel_id=elsewhere["id"], message="hi")
    with pytest.raises(NotEnoughPermissions):  # a team member who did not join the public channel
        await connect(standin, people["carol"]["token"]).posts.create_post(channel_id=elsewhere["id"], message="hi")
    with pytest.raises(NotEnoughPermissions):  # an unknown channel answers 403 too, like the server
        await connect(standin, people["carol"]["token"]).posts.create_post(channel_id="n" * 26, message="hi")
    admin_post = await connect(standin, people["alice"]["token"]).posts.create_post(
        channel_id=elsewhere["id"], message="admins may"
    )
    assert admin_post["channel_id"] == elsewhere["id"]


async def test_replies_need_a_root_in_the_same_channel(
    standin: StandIn, world: dict[str, Any], connect: Connect, channel: dict[str, Any]
) -> None:
    bot = connect(standin, world["bot"]["token"])
    root = await bot.posts.create_post(channel_id=channel["id"], message="root")
    reply = await bot.posts.create_post(channel_id=channel["id"], message="reply", root_id=root["id"])
    assert reply["root_id"] == root["id"]
    assert (await bot.posts.get_post(root["id"]))["reply_count"] == 1
    with refused(InvalidOrMissingParameters, "api.post.create_post.root_id.app_error"):
        await bot.posts.create_post(channel_id=channel["id"], message="x", root_id="n" * 26)


async def test_listing_posts_pages_newest_first_with_cursors(
    standin: StandIn, world: dict[str, Any], connect: Connect, channel: dict[str, Any]
) -> None:
    bot = connect(standin, world["bot"]["token"])
    created = [await bot.posts.create_post(channel_id=channel["id"], message=f"m{i}") for i in range(5)]
    ids = [p["id"] for p in created]
    first = await bot.posts.get_posts_for_channel(channel["id"], page=0, per_page=2)
    assert first["order"] == [ids[4], ids[3]]
    assert set(first["posts"]) == {ids[4], ids[3]}
    assert (first["next_post_id"], first["prev_post_id"]) == ("", ids[2])
    second = await bot.posts.get_posts_for_channel(channel["id"], page=1, per_page=2)
    assert second["order"] == [ids[2], ids[1]]
    assert (second["next_post_id"], second["prev_post_id"]) == (ids[3], ids[0])
    everything = await bot.posts.get_posts_for_channel(channel["id"])
    assert everything["order"] == list(reversed(ids))
    after = await bot.posts.get_posts_for_channel(channel["id"], after=ids[1], per_page=2)
    assert after["order"] == [ids[3], ids[2]]
    before = await bot.posts.get_posts_for_channel(channel["id"], before=ids[3])
    assert before["order"] == [ids[2], ids[1], ids[0]]
    edited = await bot.posts.patch_post(ids[1], message="edited")
    since = await bot.posts.get_posts_for_channel(channel["id"], since=edited["update_at"] - 1)
    assert ids[1] in since["order"]
    assert (since["next_post_id"], since["prev_post_id"]) == ("", "")


async def test_patch_post(standin: StandIn, world: dict[str, Any], connect: Connect, channel: dict[str, Any]) -> None:
    bot = connect(standin, world["bot"]["token"])
    post = await bot.posts.create_post(channel_id=channel["id"], message="status: open", props={"a": 1})
    patched = await bot.posts.patch_post(post["id"], message="status: resolved", props={"b": 2})
    assert (patched["message"], patched["props"]) == ("status: resolved", {"b": 2})
    assert patched["edit_at"] > 0
    standin.add_channel_member(channel["id"], world["users"]["carol"]["user"]["id"])
    with pytest.raises(NotEnoughPermissions):  # editing someone else's post
        await connect(standin, world["users"]["carol"]["token"]).posts.patch_post(post["id"], message="mine now")
    with refused(ResourceNotFound, "app.post.get.app_error"):
        await bot.posts.get_post("n" * 26)


async def test_pin_and_unpin(
    standin: StandIn, world: dict[str, Any], connect: Connect, channel: dict[str, Any]
) -> None:
    bot = connect(standin, world["bot"]["token"])
    first = await bot.posts.create_post(channel_id=channel["id"], message="first")
    second = await bot.posts.create_post(channel_id=channel["id"], message="second")
    assert await bot.posts.pin_post(first["id"]) == {"status": "OK"}
    await bot.posts.pin_post(second["id"])
    pinned = await bot.channels.get_pinned_posts(channel["id"])
    assert pinned["order"] == [second["id"], first["id"]]
    assert pinned["posts"][first["id"]]["is_pinned"] is True
    await bot.posts.unpin_post(second["id"])
    assert (await bot.channels.get_pinned_posts(channel["id"]))["order"] == [first["id"]]
    assert (await bot.posts.get_post(second["id"]))["is_pinned"] is False


async def test_ephemeral_posts_need_the_permission(
    standin: StandIn, world: dict[str, Any], connect: Connect, channel: dict[str, Any]
) -> None:
    carol_id = world["users"]["carol"]["user"]["id"]
    post = {"channel_id": channel["id"], "message": "only you can see this", "props": {"k": "v"}}
    with refused(NotEnoughPermissions, "api.context.permissions.app_error"):
        await connect(standin, world["bot"]["token"]).posts.create_post_ephemeral(user_id=carol_id, post=post)
    sent = await connect(standin, world["users"]["alice"]["token"]).posts.create_post_ephemeral(
        user_id=carol_id, post=post
    )
    assert sent["type"] == "system_ephemeral"
    assert sent["message"] == "only you can see this"
    [recorded] = standin.ephemeral_posts(user_id=carol_id, channel_id=channel["id"])
    assert recorded["user_id"] == carol_id
    assert recorded["post"]["props"] == {"k": "v"}
    assert recorded["post"]["user_id"] == world["users"]["alice"]["user"]["id"]
    assert all(p["message"] != "only you can see this" for p in standin.posts(channel["id"]))


async def test_delete_post_hides_it_from_reads_edits_and_pins(
    standin: StandIn, world: dict[str, Any], connect: Connect, channel: dict[str, Any]
) -> None:
    bot = connect(standin, world["bot"]["token"])
    post = await bot.posts.create_post(channel_id=channel["id"], message="the live checklist")
    await bot.posts.pin_post(post["id"])
    with pytest.raises(NotEnoughPermissions):  # someone else's post needs delete_others_posts
        await connect(standin, world["users"]["carol"]["token"]).posts.delete_post(post["id"])
    assert (await bot.posts.delete_post(post["id"]))["status"] == "OK"
    assert post["id"] not in [p["id"] for p in standin.posts(channel["id"])]
    with pytest.raises(ResourceNotFound):
        await bot.posts.get_post(post["id"])
    # An edit or a pin of a deleted post is refused as one the bot may not touch (403), as
    # `patchPost` and `pinPost` do; a read or a delete of it is 404.
    with refused(NotEnoughPermissions, "api.context.permissions.app_error"):
        await bot.posts.patch_post(post["id"], message="edited")
    with refused(NotEnoughPermissions, "api.context.permissions.app_error"):
        await bot.posts.pin_post(post["id"])
    with pytest.raises(NotEnoughPermissions):
        await bot.posts.patch_post("n" * 26, message="never posted")
    with refused(ResourceNotFound, "app.post.get.app_error"):
        await bot.posts.delete_post(post["id"])


async def test_in_a_private_channel_an_admin_deletes_any_post_and_outsiders_are_refused_not_told_it_is_missing(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    bot = connect(standin, world["bot"]["token"])
    private = standin.create_channel(
        world["team"]["id"], unique("private"), "Private", type="P", creator_id=world["bot"]["user"]["id"]
    )
    post = await bot.posts.create_post(channel_id=private["id"], message="the live checklist")
    # Carol cannot see the channel; edits, pins and deletes check a permission, which she lacks: 403.
    carol = connect(standin, world["users"]["carol"]["token"])
    with pytest.raises(NotEnoughPermissions):
        await carol.posts.patch_post(post["id"], message="mine now")
    with pytest.raises(NotEnoughPermissions):
        await carol.posts.pin_post(post["id"])
    with pytest.raises(NotEnoughPermissions):
        await carol.posts.delete_post(post["id"])
    # Alice, a system admin who is not in the channel, may delete the bot's post.
    alice = connect(standin, world["users"]["alice"]["token"])
    assert world["users"]["alice"]["user"]["id"] not in standin.channel_members(private["id"])
    assert (await alice.posts.delete_post(post["id"]))["status"] == "OK"
    assert standin.posts(private["id"]) == []
