"""``/api/v4/channels``: channels, members, and a channel's posts."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from mattermost_standin import permissions, validation, views
from mattermost_standin.domain import channels, posts
from mattermost_standin.errors import AppError, invalid_body_param, invalid_url_param, permission_denied
from mattermost_standin.routes import access
from mattermost_standin.routing import Call, Router, json_response, status_ok
from mattermost_standin.store import Record

router = Router()

_CREATE_PERMISSION = {"O": "create_public_channel", "P": "create_private_channel"}


@router.post("/api/v4/channels")
async def create_channel(call: Call) -> Response:
    """Checks, in the server's order: team id, display name, the creator's permission for the
    channel type in the team, then the model rules and the name's uniqueness."""
    state, me = call.state, call.user
    fields = await call.body_string_fields("channel", ("team_id", "name", "display_name", "type", "purpose", "header"))
    if not fields["team_id"]:
        raise invalid_body_param("team_id")
    if not fields["display_name"]:
        raise invalid_body_param("display_name")
    permission = _CREATE_PERMISSION.get(fields["type"])
    if permission is not None and not permissions.has_team_permission(state, me, fields["team_id"], permission):
        raise permission_denied(me["id"], permission)
    channel = channels.create_channel(call.store, creator_id=me["id"], **fields)
    return json_response(channel, 201)


@router.post("/api/v4/channels/direct")
async def create_direct_channel(call: Call) -> Response:
    """``createDirectChannel``: the two users' direct message channel, made or found (201 either way).

    In the server's order: the body is a list of two distinct user ids (one, the caller's own, is a
    channel with themselves), each a valid id; the caller needs ``create_direct_channel`` and, to
    open one they are not in, ``manage_system``; they must be able to see the other user; then
    the channel is found or made (``channels.get_or_create_direct_channel``).
    """
    state, me = call.state, call.user
    user_ids = await call.body_unique_strings()
    if user_ids == [me["id"]]:
        user_ids = [me["id"], me["id"]]
    if len(user_ids) != 2:
        raise invalid_body_param("user_ids")
    if not all(validation.is_valid_id(user_id) for user_id in user_ids):
        raise invalid_body_param("user_id")
    if not permissions.has_system_permission(state, me, "create_direct_channel"):
        raise permission_denied(me["id"], "create_direct_channel")
    if me["id"] not in user_ids and not permissions.has_system_permission(state, me, "manage_system"):
        raise permission_denied(me["id"], "manage_system")
    other_id = user_ids[1] if user_ids[0] == me["id"] else user_ids[0]
    if not permissions.can_see_user(state, me, other_id):
        raise permission_denied(me["id"], "view_members")
    return json_response(channels.get_or_create_direct_channel(call.store, user_ids[0], user_ids[1]), 201)


@router.get("/api/v4/channels/{channel_id}")
async def get_channel(call: Call) -> Response:
    return json_response(access.readable_channel(call, call.params["channel_id"]))


@router.get("/api/v4/teams/{team_id}/channels/name/{channel_name}")
async def get_channel_by_name(call: Call) -> Response:
    team_id, name = call.params["team_id"], call.params["channel_name"]
    channel = channels.get_channel_by_name(call.state, team_id, name)
    access.require_readable(call, channel, channels.channel_not_found_by_name(team_id, name))
    return json_response(channel)


@router.put("/api/v4/channels/{channel_id}/patch")
async def patch_channel(call: Call) -> Response:
    patch = await call.body_object("channel")
    channel = channels.get_channel(call.state, call.params["channel_id"])
    kind = "public" if channel["type"] == "O" else "private"
    access.require_permission(call, channel, f"manage_{kind}_channel_properties")
    return json_response(channels.patch_channel(call.store, channel, patch))


@router.get("/api/v4/channels/{channel_id}/members")
async def get_channel_members(call: Call) -> Response:
    channel = channels.get_channel(call.state, call.params["channel_id"])
    access.require_permission(call, channel, "read_channel")
    return json_response(call.page(list(call.state.channel_members[channel["id"]].values())))


def _requested_user_ids(body: dict[str, Any]) -> list[str]:
    if "user_ids" in body:
        user_ids = body["user_ids"]
        if not isinstance(user_ids, list) or not 1 <= len(user_ids) <= 1000:
            raise invalid_body_param("user_ids")
        if not all(validation.is_valid_id(u) for u in user_ids):
            raise invalid_body_param("user_id in user_ids")
        return list(user_ids)
    user_id = body.get("user_id")
    if not validation.is_valid_id(user_id):
        raise invalid_body_param("user_id or user_ids")
    return [user_id]


@router.post("/api/v4/channels/{channel_id}/members")
async def add_channel_members(call: Call) -> Response:
    """Add one (``user_id``) or several (``user_ids``) users, like ``addChannelMember``.

    A public channel lets a team member join themselves (``join_public_channels``);
    adding someone else needs ``manage_{public,private}_channel_members``. Existing
    members are returned as they are. ``user_id`` answers one member, ``user_ids`` a list;
    a request where every user failed answers the last failure.
    """
    state, me = call.state, call.user
    body = await call.body_object("channel_member")
    user_ids = _requested_user_ids(body)
    channel = channels.get_channel(state, call.params["channel_id"])
    kind = "public" if channel["type"] == "O" else "private"
    may_manage = permissions.has_channel_permission(state, me, channel, f"manage_{kind}_channel_members")
    if channel["type"] == "P" and not may_manage:
        access.require_permission(call, channel, "manage_private_channel_members")
    may_join = permissions.has_team_permission(state, me, channel["team_id"], "join_public_channels")
    added: list[Record] = []
    last_error: AppError | None = None
    for user_id in user_ids:
        existing = channels.channel_member(state, channel["id"], user_id)
        is_self = user_id == me["id"]
        if existing is None and not (may_manage or (is_self and may_join)):
            needed = "join_public_channels" if is_self else "manage_public_channel_members"
            last_error = permission_denied(me["id"], needed)
            continue
        try:
            added.append(existing or channels.add_channel_member(call.store, channel, user_id))
        except AppError as exc:
            last_error = exc
    if last_error is not None and not added:
        raise last_error
    single = "user_id" in body and len(added) == 1 and added[0]["user_id"] == body["user_id"]
    return json_response(added[0] if single else added, 201)


@router.get("/api/v4/channels/{channel_id}/members/{user_id}")
async def get_channel_member(call: Call) -> Response:
    channel = channels.get_channel(call.state, call.params["channel_id"])
    access.require_permission(call, channel, "read_channel")
    user_id = call.param_user_id()
    member = channels.channel_member(call.state, channel["id"], user_id)
    if member is None:
        raise channels.member_not_found(channel["id"], user_id)
    return json_response(member)


@router.delete("/api/v4/channels/{channel_id}/members/{user_id}")
async def remove_channel_member(call: Call) -> Response:
    """Anyone may leave; removing someone else needs ``manage_{public,private}_channel_members``."""
    channel = channels.get_channel(call.state, call.params["channel_id"])
    user_id = call.param_user_id()
    if user_id != call.user["id"]:
        kind = "public" if channel["type"] == "O" else "private"
        access.require_permission(call, channel, f"manage_{kind}_channel_members")
    channels.remove_channel_member(call.store, channel, user_id)
    return status_ok()


def _page_around(call: Call, ordered: list[Record], anchor_id: str, *, newer: bool) -> list[Record]:
    """Posts just after (``newer``) or before ``anchor_id``, newest first, paged from the anchor."""
    index = next((i for i, p in enumerate(ordered) if p["id"] == anchor_id), None)
    if index is None:
        return []
    per_page = call.query_int("per_page", 60, 200)
    start = call.query_int("page", 0) * per_page
    if newer:
        return list(reversed(ordered[index + 1 :][start : start + per_page]))
    return list(reversed(ordered[:index]))[start : start + per_page]


@router.get("/api/v4/channels/{channel_id}/posts")
async def get_posts_for_channel(call: Call) -> Response:
    """A page of posts, newest first; ``since`` answers every post changed after that time instead."""
    state = call.state
    channel = access.readable_channel(call, call.params["channel_id"])
    ordered = posts.channel_posts(state, channel["id"])
    query = call.request.query_params
    since = call.query_int("since", 0)
    for anchor in ("before", "after"):
        if query.get(anchor) and not validation.is_valid_id(query[anchor]):
            raise invalid_url_param(anchor)
    if since:
        changed = [p for p in reversed(ordered) if p["update_at"] > since][:1000]
        return json_response(views.post_list(state, changed))
    if query.get("after"):
        page = _page_around(call, ordered, query["after"], newer=True)
    elif query.get("before"):
        page = _page_around(call, ordered, query["before"], newer=False)
    else:
        page = call.page(list(reversed(ordered)))
    return json_response(views.post_list(state, page, ordered))


@router.get("/api/v4/channels/{channel_id}/pinned")
async def get_pinned_posts(call: Call) -> Response:
    channel = access.readable_channel(call, call.params["channel_id"])
    pinned = [p for p in reversed(posts.channel_posts(call.state, channel["id"])) if p["is_pinned"]]
    return json_response(views.post_list(call.state, pinned))
