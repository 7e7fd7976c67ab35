"""``/api/v4/posts``: posts, edits, pins and ephemeral posts."""

from __future__ import annotations

from fastapi.responses import Response

from mattermost_standin import errors, permissions, views
from mattermost_standin.domain import posts
from mattermost_standin.errors import invalid_body_param, permission_denied
from mattermost_standin.routes import access
from mattermost_standin.routing import Call, Router, json_response, status_ok
from mattermost_standin.store import Record

router = Router()


def may_post(call: Call, channel: Record | None) -> bool:
    """``create_post`` in the channel, which its members hold. Non-members may post only
    with ``create_post_public`` in a public channel's team, which by default only
    admins hold: a bot, like anyone else, must be a member to post."""
    if channel is None:
        return False
    state, me = call.state, call.user
    if permissions.has_channel_permission(state, me, channel, "create_post"):
        return True
    return channel["type"] == "O" and permissions.has_team_permission(
        state, me, channel["team_id"], "create_post_public"
    )


@router.post("/api/v4/posts")
async def create_post(call: Call) -> Response:
    body = await call.body_object("post")
    channel_id, message, root_id = body.get("channel_id"), body.get("message", ""), body.get("root_id", "")
    props = body.get("props") or {}
    if not isinstance(message, str) or not isinstance(root_id, str) or not isinstance(props, dict):
        raise invalid_body_param("post")
    # The permission check comes first, so an unknown channel answers 403 as on the server.
    channel = call.state.channels.get(channel_id) if isinstance(channel_id, str) else None
    if channel is None or not may_post(call, channel):
        raise permission_denied(call.user["id"], "create_post")
    post = posts.new_post(
        call.store, user_id=call.user["id"], channel_id=channel["id"], message=message, props=props, root_id=root_id
    )
    posts.create_post(call.store, post)
    return json_response(views.post_for_client(post), 201)


@router.post("/api/v4/posts/ephemeral")
async def create_ephemeral_post(call: Call) -> Response:
    """Needs ``create_post_ephemeral``, which by default only system admins hold."""
    body = await call.body_object("body")
    user_id, post = body.get("user_id"), body.get("post")
    if not isinstance(user_id, str) or not user_id:
        raise errors.invalid_param("user_id")
    if not isinstance(post, dict):
        raise errors.invalid_param("post")
    channel_id, message, props = post.get("channel_id", ""), post.get("message", ""), post.get("props") or {}
    if not isinstance(channel_id, str) or not isinstance(message, str) or not isinstance(props, dict):
        raise invalid_body_param("body")
    if not permissions.has_system_permission(call.state, call.user, "create_post_ephemeral"):
        raise permission_denied(call.user["id"], "create_post_ephemeral")
    post = posts.new_post(call.store, user_id=call.user["id"], channel_id=channel_id, message=message, props=props)
    posts.send_ephemeral(call.store, user_id, post)
    return json_response(views.post_for_client(post), 201)


def _readable_post(call: Call) -> Record:
    post_id = call.params["post_id"]
    post = posts.get_post(call.state, post_id)
    access.require_readable(call, call.state.channels[post["channel_id"]], errors.post_not_found(post_id))
    return post


@router.get("/api/v4/posts/{post_id}")
async def get_post(call: Call) -> Response:
    post = _readable_post(call)
    view = views.post_for_client(post)
    view["reply_count"] = views.thread_reply_count(call.state, post)
    return json_response(view)


def _post_or_refused(call: Call, permission: str) -> Record:
    """The post of a route that refuses a deleted or missing post as one the user may not touch.

    ``patchPost`` and ``saveIsPinnedPost`` read the post with ``GetSinglePost(..., false)`` and
    answer any failure with a permission error (403), not the 404 a read gets.
    """
    post = call.state.posts.get(call.params["post_id"])
    if post is None or post["delete_at"]:
        raise permission_denied(call.user["id"], permission)
    return post


def _require_channel_permission(call: Call, post: Record, permission: str) -> None:
    """``SessionHasPermissionToChannel``: 403 without it, even in a private channel the user cannot see."""
    if not permissions.has_channel_permission(
        call.state, call.user, call.state.channels[post["channel_id"]], permission
    ):
        raise permission_denied(call.user["id"], permission)


@router.put("/api/v4/posts/{post_id}/patch")
async def patch_post(call: Call) -> Response:
    """Editing one's own post needs ``edit_post``; someone else's, ``edit_others_posts``."""
    patch = await call.body_object("post")
    post = _post_or_refused(call, "edit_post")
    _require_channel_permission(call, post, "edit_post" if post["user_id"] == call.user["id"] else "edit_others_posts")
    return json_response(views.post_for_client(posts.patch_post(call.store, post, patch)))


@router.delete("/api/v4/posts/{post_id}")
async def delete_post(call: Call) -> Response:
    """A soft delete: one's own post needs ``delete_post``, someone else's ``delete_others_posts``
    (a system admin holds both everywhere). A deleted or missing post is 404 here."""
    post = posts.get_post(call.state, call.params["post_id"])
    _require_channel_permission(
        call, post, "delete_post" if post["user_id"] == call.user["id"] else "delete_others_posts"
    )
    posts.delete_post(call.store, post)
    return status_ok()


async def _set_pinned(call: Call, pinned: bool) -> Response:
    """Needs the right to read the channel (``read_channel_content``)."""
    post = _post_or_refused(call, "read_channel_content")
    if not permissions.can_read_channel(call.state, call.user, call.state.channels[post["channel_id"]]):
        raise permission_denied(call.user["id"], "read_channel_content")
    posts.set_pinned(call.store, post, pinned)
    return status_ok()


@router.post("/api/v4/posts/{post_id}/pin")
async def pin_post(call: Call) -> Response:
    return await _set_pinned(call, True)


@router.post("/api/v4/posts/{post_id}/unpin")
async def unpin_post(call: Call) -> Response:
    return await _set_pinned(call, False)
