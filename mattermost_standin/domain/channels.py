"""Channels and their members."""

from __future__ import annotations

from typing import Any

from mattermost_standin import errors, validation
from mattermost_standin.domain.users import get_user
from mattermost_standin.errors import AppError
from mattermost_standin.store import Record, State, Store, new_record

DEFAULT_CHANNEL = "town-square"


def _new_channel(
    store: Store, *, team_id: str, name: str, display_name: str, type: str, creator_id: str, header: str, purpose: str
) -> Record:
    now = store.now_ms()
    return {
        **new_record(now),
        "team_id": team_id,
        "type": type,
        "display_name": display_name,
        "name": name,
        "header": header,
        "purpose": purpose,
        "last_post_at": 0,
        "total_msg_count": 0,
        "extra_update_at": 0,
        "creator_id": creator_id,
        "scheme_id": None,
        "props": None,
        "group_constrained": None,
        "shared": None,
        "total_msg_count_root": 0,
        "policy_id": None,
        "last_root_post_at": 0,
    }


def _insert(store: Store, channel: Record) -> None:
    store.state.channels[channel["id"]] = channel
    store.state.channel_members[channel["id"]] = {}


def create_channel(
    store: Store,
    *,
    team_id: str,
    name: str,
    display_name: str,
    type: str,
    creator_id: str = "",
    purpose: str = "",
    header: str = "",
) -> Record:
    """Save a channel; a creator becomes its first member, as channel admin.

    The name is taken as given: uppercase is rejected, not lowercased (``Channel.IsValid``).
    """
    state = store.state
    if team_id not in state.teams:
        raise errors.team_not_found(team_id)
    channel = _new_channel(
        store,
        team_id=team_id,
        name=name,
        display_name=display_name.strip(),
        type=type,
        creator_id=creator_id,
        header=header,
        purpose=purpose,
    )
    validation.check_channel(channel)
    if find_channel_by_name(state, team_id, name) is not None:
        raise AppError(
            400,
            "store.sql_channel.save_channel.exists.app_error",
            "A channel with that name already exists on the same team.",
            f"team_id={team_id}, name={name}",
        )
    _insert(store, channel)
    if creator_id:
        _save_member(store, channel, creator_id, admin=True)
    return channel


def direct_channel_name(user_id: str, other_user_id: str) -> str:
    """``model.GetDMNameFromIds``: the two ids, the smaller first, joined by ``__``."""
    return "__".join(sorted((user_id, other_user_id)))


def find_direct_channel(state: State, user_id: str, other_user_id: str) -> Record | None:
    """The two users' direct message channel (a channel of no team), if it was made."""
    return find_channel_by_name(state, "", direct_channel_name(user_id, other_user_id))


def get_or_create_direct_channel(store: Store, user_id: str, other_user_id: str) -> Record:
    """``GetOrCreateDirectChannel``: the two users' channel as it was made, else a new one.

    A new one is of no team, type ``D``, made by ``user_id``, without display name, header or
    purpose, and its members are the two users as plain channel users (one member when a user
    writes to themselves). A user that does not exist is refused with 400.
    """
    existing = find_direct_channel(store.state, user_id, other_user_id)
    if existing is not None:
        return existing
    if user_id not in store.state.users or other_user_id not in store.state.users:
        raise AppError(
            400,
            "api.channel.create_direct_channel.invalid_user.app_error",
            "Invalid user ID for direct channel creation.",
            f"No users found for ids: {user_id}. {other_user_id}",
        )
    channel = _new_channel(
        store,
        team_id="",
        name=direct_channel_name(user_id, other_user_id),
        display_name="",
        type="D",
        creator_id=user_id,
        header="",
        purpose="",
    )
    channel["shared"] = False  # CreateDirectChannel sets it: true only with a user of a remote cluster
    _insert(store, channel)
    for member_id in dict.fromkeys((user_id, other_user_id)):
        _save_member(store, channel, member_id, admin=False)
    return channel


def get_channel(state: State, channel_id: str) -> Record:
    return errors.require(state.channels.get(channel_id), lambda: errors.channel_not_found(channel_id))


def find_channel_by_name(state: State, team_id: str, name: str) -> Record | None:
    return next(
        (c for c in state.channels.values() if c["team_id"] == team_id and c["name"] == name),
        None,
    )


def channel_not_found_by_name(team_id: str, name: str) -> AppError:
    return errors.not_found(
        "app.channel.get_by_name.missing.app_error", "Channel does not exist.", teamId=team_id, name=name
    )


def get_channel_by_name(state: State, team_id: str, name: str) -> Record:
    return errors.require(find_channel_by_name(state, team_id, name), lambda: channel_not_found_by_name(team_id, name))


def channel_member(state: State, channel_id: str, user_id: str) -> Record | None:
    return state.channel_members.get(channel_id, {}).get(user_id)


def member_not_found(channel_id: str, user_id: str) -> AppError:
    return errors.not_found(
        "app.channel.get_member.missing.app_error",
        "No channel member found for that user ID and channel ID.",
        channel_id=channel_id,
        user_id=user_id,
    )


def _save_member(store: Store, channel: Record, user_id: str, *, admin: bool) -> Record:
    now = store.now_ms()
    member: Record = {
        "channel_id": channel["id"],
        "user_id": user_id,
        "roles": "channel_user channel_admin" if admin else "channel_user",
        "last_viewed_at": 0,
        "msg_count": 0,
        "mention_count": 0,
        "mention_count_root": 0,
        "urgent_mention_count": 0,
        "msg_count_root": 0,
        "notify_props": {
            "desktop": "default",
            "email": "default",
            "ignore_channel_mentions": "default",
            "mark_unread": "all",
            "push": "default",
        },
        "last_update_at": now,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": admin,
        "explicit_roles": "",
    }
    store.state.channel_members[channel["id"]][user_id] = member
    return member


def add_channel_member(store: Store, channel: Record, user_id: str) -> Record:
    """Add a user; adding a member again returns the existing membership, like the server.

    Only members of the channel's team can join it (``AddUserToChannel``).
    """
    state = store.state
    existing = channel_member(state, channel["id"], user_id)
    if existing is not None:
        return existing
    get_user(state, user_id)
    team_member = state.team_members.get(channel["team_id"], {}).get(user_id)
    if team_member is None:
        raise errors.team_member_not_found(channel["team_id"], user_id)
    if team_member["delete_at"]:
        raise AppError(
            400,
            "api.channel.add_user.to.channel.failed.deleted.app_error",
            "Failed to add user to channel because they have been removed from the team.",
        )
    return _save_member(store, channel, user_id, admin=False)


def remove_channel_member(store: Store, channel: Record, user_id: str) -> None:
    if channel["name"] == DEFAULT_CHANNEL:
        raise AppError(
            400,
            "api.channel.remove.default.app_error",
            f"Unable to remove user from the default channel {DEFAULT_CHANNEL}.",
        )
    if channel_member(store.state, channel["id"], user_id) is None:
        raise member_not_found(channel["id"], user_id)
    del store.state.channel_members[channel["id"]][user_id]


_PATCHABLE = ("name", "display_name", "purpose", "header")


def patch_channel(store: Store, channel: Record, patch: dict[str, Any]) -> Record:
    """Apply ``ChannelPatch``: only the fields given change, then the model rules apply."""
    changes = {key: patch[key] for key in _PATCHABLE if patch.get(key) is not None}
    if not changes:
        raise AppError(
            400,
            "api.channel.patch_update_channel.no_changes.app_error",
            "No changes were provided to the channel.",
        )
    for key, value in changes.items():
        if not isinstance(value, str):
            raise errors.invalid_body_param("channel", f"{key} must be a string")
    if channel["name"] == DEFAULT_CHANNEL and changes.get("name", DEFAULT_CHANNEL) != DEFAULT_CHANNEL:
        raise AppError(
            400,
            "api.channel.update_channel.tried.app_error",
            f"Tried to perform an invalid update of the default channel {DEFAULT_CHANNEL}.",
        )
    updated = {**channel, **changes}
    if "display_name" in changes:
        updated["display_name"] = changes["display_name"].strip()
    validation.check_channel(updated)
    other = find_channel_by_name(store.state, channel["team_id"], updated["name"])
    if other is not None and other["id"] != channel["id"]:
        raise AppError(
            400,
            "store.sql_channel.save_channel.exists.app_error",
            "A channel with that name already exists on the same team.",
        )
    updated["update_at"] = store.now_ms()
    channel.update(updated)
    return channel
