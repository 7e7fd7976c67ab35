"""Posts, pins and ephemeral posts.

Stored posts keep their attachments' ``integration`` blocks (URL and private
context) because post actions need them; ``views.post_for_client`` strips them
from everything a client receives, as ``Post.EncodeJSON`` does.
"""

from __future__ import annotations

import copy
from typing import Any

from mattermost_standin import errors, validation
from mattermost_standin.errors import AppError
from mattermost_standin.store import Record, State, Store, new_id

# Props an integration's ``update`` cannot change (``model.PostActionRetainPropKeys``).
RETAINED_PROPS = ("from_webhook", "override_username", "override_icon_url")


def assign_action_ids(props: dict[str, Any]) -> None:
    """Give every attachment action without an id a fresh one (``Post.GenerateActionIds``)."""
    attachments = props.get("attachments")
    if not isinstance(attachments, list):
        return
    for attachment in attachments:
        actions = attachment.get("actions") if isinstance(attachment, dict) else None
        for action in actions if isinstance(actions, list) else []:
            if isinstance(action, dict) and not action.get("id"):
                action["id"] = new_id()


def new_post(
    store: Store,
    *,
    user_id: str,
    channel_id: str,
    message: str,
    props: dict[str, Any] | None = None,
    root_id: str = "",
    type: str = "",
) -> Record:
    """A post as its sender composes it (``model.Post``), not saved yet: ``create_post`` saves it in
    its channel, ``send_ephemeral`` shows it to one user."""
    now = store.now_ms()
    props = copy.deepcopy(props or {})
    assign_action_ids(props)
    return {
        "id": new_id(),
        "create_at": now,
        "update_at": now,
        "edit_at": 0,
        "delete_at": 0,
        "is_pinned": False,
        "user_id": user_id,
        "channel_id": channel_id,
        "root_id": root_id,
        "original_id": "",
        "message": message,
        "type": type,
        "props": props,
        "hashtags": "",
        "pending_post_id": "",
        "reply_count": 0,
        "last_reply_at": 0,
        "participants": None,
        "metadata": {},
    }


def create_post(store: Store, post: Record) -> Record:
    """Save a new post (``new_post``) in its channel, a reply in its thread (``CreatePost``)."""
    state = store.state
    channel = state.channels[post["channel_id"]]
    validation.check_post_message(post["message"], post["id"])
    if post["type"].startswith("system_"):
        raise errors.invalid_param("post.type")
    root_id = post["root_id"]
    if root_id:
        root = state.posts.get(root_id)
        if root is None or root["channel_id"] != channel["id"] or root["root_id"]:
            raise AppError(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
        root["reply_count"] += 1
        root["last_reply_at"] = post["create_at"]
    state.posts[post["id"]] = post
    channel["last_post_at"] = post["create_at"]
    channel["total_msg_count"] += 1
    if not root_id:
        channel["last_root_post_at"] = post["create_at"]
        channel["total_msg_count_root"] += 1
    return post


def get_post(state: State, post_id: str) -> Record:
    post = state.posts.get(post_id)
    if post is None or post["delete_at"]:
        raise errors.post_not_found(post_id)
    return post


def channel_posts(state: State, channel_id: str) -> list[Record]:
    """A channel's posts, oldest first."""
    return [p for p in state.posts.values() if p["channel_id"] == channel_id and not p["delete_at"]]


def patch_post(store: Store, post: Record, patch: dict[str, Any]) -> Record:
    """Apply ``PostPatch``: message, is_pinned and props (replaced whole) when given."""
    message = patch.get("message")
    if message is not None:
        if not isinstance(message, str):
            raise errors.invalid_body_param("post", "message must be a string")
        validation.check_post_message(message, post["id"])
    props = patch.get("props")
    if props is not None and not isinstance(props, dict):
        raise errors.invalid_body_param("post", "props must be an object")
    now = store.now_ms()
    if message is not None and message != post["message"]:
        post["message"] = message
        post["edit_at"] = now
    if props is not None:
        post["props"] = copy.deepcopy(props)
        assign_action_ids(post["props"])
    if isinstance(patch.get("is_pinned"), bool):
        post["is_pinned"] = patch["is_pinned"]
    post["update_at"] = now
    return post


def apply_integration_update(store: Store, post: Record, update: dict[str, Any]) -> Record:
    """Apply a post action's ``update`` (``App.UpdatePost`` from ``DoPostActionWithCookie``).

    The message is replaced (an update without one clears it); props are replaced
    when given, keeping the retained props of the original, else left as they were.
    Pinned state is kept.
    """
    message = update.get("message", "")
    if not isinstance(message, str):
        raise AppError(400, "api.post.do_action.action_integration.app_error", "Action integration error.")
    validation.check_post_message(message, post["id"])
    now = store.now_ms()
    props = update.get("props")
    if isinstance(props, dict):
        new_props = copy.deepcopy(props)
        for key in RETAINED_PROPS:
            new_props.pop(key, None)
            if key in post["props"]:
                new_props[key] = post["props"][key]
        assign_action_ids(new_props)
        post["props"] = new_props
    if message != post["message"]:
        post["message"] = message
        post["edit_at"] = now
    post["update_at"] = now
    return post


def delete_post(store: Store, post: Record) -> None:
    """Soft delete (``delete_at`` set): gone from reads, edits and actions, as on the server."""
    now = store.now_ms()
    post["delete_at"] = now
    post["update_at"] = now
    post["is_pinned"] = False


def set_pinned(store: Store, post: Record, pinned: bool) -> None:
    post["is_pinned"] = pinned
    post["update_at"] = store.now_ms()


def send_ephemeral(store: Store, recipient_id: str, post: Record) -> Record:
    """Record a new post (``new_post``) as ephemeral (``SendEphemeralPost``): never stored as a
    post, only shown to one user.

    Kept as ``{"user_id": recipient, "post": post}``, the shape of ``POST /posts/ephemeral``.
    """
    post["type"] = "system_ephemeral"
    record: Record = {"user_id": recipient_id, "post": post}
    store.state.ephemeral_posts.append(record)
    return post
