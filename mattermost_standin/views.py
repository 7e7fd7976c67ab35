"""What a client receives for a stored record: copies, with private fields removed.

Every view is a deep copy, so callers (tests included) can never mutate the
stand-in's state through a returned dict.
"""

from __future__ import annotations

import copy
from typing import Any

from mattermost_standin import permissions
from mattermost_standin.store import Record, State


def user_for(state: State, user: Record, viewer: Record | None) -> Record:
    """The user as ``viewer`` may see it: notification settings only for themselves or an admin."""
    view = copy.deepcopy(user)
    is_admin = viewer is not None and permissions.has_system_permission(state, viewer, "manage_system")
    if viewer is None or (viewer["id"] != user["id"] and not is_admin):
        view.pop("notify_props", None)
        view["last_password_update"] = 0
    return view


def team_for(state: State, team: Record, viewer: Record | None) -> Record:
    """The team as ``viewer`` may see it: its invite id and email only for those who manage it."""
    view = copy.deepcopy(team)
    if viewer is None or not permissions.has_team_permission(state, viewer, team["id"], "manage_team"):
        view["email"] = ""
        view["invite_id"] = ""
    return view


def post_for_client(post: Record) -> Record:
    """The post without its actions' ``integration`` (URL and private context), as ``Post.EncodeJSON``."""
    view = copy.deepcopy(post)
    attachments = view["props"].get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        actions = attachment.get("actions") if isinstance(attachment, dict) else None
        for action in actions if isinstance(actions, list) else []:
            if isinstance(action, dict):
                action.pop("integration", None)
    return view


def thread_reply_count(state: State, post: Record) -> int:
    root = state.posts.get(post["root_id"]) if post["root_id"] else post
    return 0 if root is None else int(root["reply_count"])


def post_list(state: State, posts: list[Record], channel_posts: list[Record] | None = None) -> Record:
    """A ``PostList`` of ``posts`` (newest first); with ``channel_posts`` (oldest first), the
    cursors of a page: ``next_post_id`` is the channel's post just newer than the page,
    ``prev_post_id`` the one just older, like ``AddCursorIdsForPostList``.
    """
    order = [p["id"] for p in posts]
    next_post_id = prev_post_id = ""
    if order and channel_posts is not None:
        positions = {p["id"]: i for i, p in enumerate(channel_posts)}
        newest, oldest = positions[order[0]], positions[order[-1]]
        if newest + 1 < len(channel_posts):
            next_post_id = channel_posts[newest + 1]["id"]
        if oldest > 0:
            prev_post_id = channel_posts[oldest - 1]["id"]
    rendered: dict[str, Any] = {}
    for post in posts:
        view = post_for_client(post)
        view["reply_count"] = thread_reply_count(state, post)
        rendered[post["id"]] = view
    return {"order": order, "posts": rendered, "next_post_id": next_post_id, "prev_post_id": prev_post_id}


_COMMAND_PRIVATE_FIELDS = ("token", "creator_id", "method", "url", "username", "icon_url")


def command_for(command: Record, *, sanitized: bool) -> Record:
    """The command; sanitized (no token, URL or creator) for users who may not manage it."""
    view = copy.deepcopy(command)
    if sanitized:
        for key in _COMMAND_PRIVATE_FIELDS:
            view[key] = ""
    return view
