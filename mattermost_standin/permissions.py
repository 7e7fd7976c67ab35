"""Roles and permission checks, resolved the way Mattermost resolves them.

A user's permissions in a context are the union of the permissions of their roles:
system roles (``user.roles``), plus team roles when the context is a team they
belong to, plus channel roles when the context is a channel they belong to. The
default role contents follow Mattermost's defaults for the permissions the project
touches; ``system_admin`` holds every permission, so admins may do everything.
Tests change role contents with ``StandIn.set_role_permissions`` or the roles API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mattermost_standin.store import State

SYSTEM_USER = "system_user"
SYSTEM_ADMIN = "system_admin"
TEAM_USER = "team_user"
TEAM_ADMIN = "team_admin"
CHANNEL_USER = "channel_user"
CHANNEL_ADMIN = "channel_admin"

_CHANNEL_USER = (
    "read_channel",
    "read_channel_content",
    "create_post",
    "edit_post",
    "delete_post",
    "use_slash_commands",
    "use_channel_mentions",
    "add_reaction",
    "remove_reaction",
    "upload_file",
    "manage_public_channel_members",
    "manage_private_channel_members",
    "manage_public_channel_properties",
    "manage_private_channel_properties",
    "delete_public_channel",
    "delete_private_channel",
)
_DEFAULTS: dict[str, tuple[str, tuple[str, ...]]] = {
    SYSTEM_USER: (
        "authentication.roles.global_user.name",
        (
            "create_team",
            "list_public_teams",
            "join_public_teams",
            "view_members",
            "create_direct_channel",
            "create_group_channel",
        ),
    ),
    TEAM_USER: (
        "authentication.roles.team_user.name",
        (
            "view_team",
            "list_team_channels",
            "join_public_channels",
            "read_public_channel",
            "create_public_channel",
            "create_private_channel",
            "invite_user",
            "add_user_to_team",
        ),
    ),
    TEAM_ADMIN: (
        "authentication.roles.team_admin.name",
        (
            "manage_team",
            "remove_user_from_team",
            "manage_team_roles",
            "manage_channel_roles",
            "manage_public_channel_members",
            "manage_private_channel_members",
            "manage_public_channel_properties",
            "manage_private_channel_properties",
            "manage_own_slash_commands",
            "manage_others_slash_commands",
            "delete_post",
            "delete_others_posts",
        ),
    ),
    CHANNEL_USER: ("authentication.roles.channel_user.name", _CHANNEL_USER),
    CHANNEL_ADMIN: (
        "authentication.roles.channel_admin.name",
        ("manage_channel_roles", "use_group_mentions"),
    ),
}
# Permissions no default role but system_admin holds.
_ADMIN_ONLY = (
    "manage_system",
    "manage_roles",
    "create_user",
    "edit_other_users",
    "create_post_public",
    "create_post_ephemeral",
    "edit_others_posts",
    "create_bot",
    "read_bots",
    "read_others_bots",
    "manage_bots",
    "manage_others_bots",
    "create_user_access_token",
    "read_user_access_token",
    "revoke_user_access_token",
)
_SCHEME_MANAGED = {TEAM_USER, TEAM_ADMIN, CHANNEL_USER, CHANNEL_ADMIN}


def default_roles(now_ms: int, new_id: Callable[[], str]) -> dict[str, dict[str, Any]]:
    """Fresh role records keyed by role name, as ``GET /roles/name/{name}`` returns them."""
    contents = {name: list(perms) for name, (_, perms) in _DEFAULTS.items()}
    everything = {p for perms in contents.values() for p in perms} | set(_ADMIN_ONLY)
    contents[SYSTEM_ADMIN] = sorted(everything)
    display = {name: display for name, (display, _) in _DEFAULTS.items()}
    display[SYSTEM_ADMIN] = "authentication.roles.global_admin.name"
    return {
        name: {
            "id": new_id(),
            "name": name,
            "display_name": display[name],
            "description": "",
            "create_at": now_ms,
            "update_at": now_ms,
            "delete_at": 0,
            "permissions": perms,
            "scheme_managed": name in _SCHEME_MANAGED,
            "built_in": True,
        }
        for name, perms in contents.items()
    }


def _roles_grant(state: State, role_names: Iterable[str], permission: str) -> bool:
    for name in role_names:
        role = state.roles.get(name)
        if role is not None and permission in role["permissions"]:
            return True
    return False


def _team_roles(state: State, user: dict[str, Any], team_id: str) -> list[str]:
    member = state.team_members.get(team_id, {}).get(user["id"])
    if member is None or member["delete_at"]:
        return []
    return str(member["roles"]).split()


def _channel_roles(state: State, user: dict[str, Any], channel_id: str) -> list[str]:
    member = state.channel_members.get(channel_id, {}).get(user["id"])
    return [] if member is None else str(member["roles"]).split()


def has_system_permission(state: State, user: dict[str, Any], permission: str) -> bool:
    return _roles_grant(state, str(user["roles"]).split(), permission)


def has_team_permission(state: State, user: dict[str, Any], team_id: str, permission: str) -> bool:
    roles = str(user["roles"]).split() + _team_roles(state, user, team_id)
    return _roles_grant(state, roles, permission)


def has_channel_permission(state: State, user: dict[str, Any], channel: dict[str, Any], permission: str) -> bool:
    roles = (
        str(user["roles"]).split()
        + _team_roles(state, user, channel["team_id"])
        + _channel_roles(state, user, channel["id"])
    )
    return _roles_grant(state, roles, permission)


def can_read_channel(state: State, user: dict[str, Any], channel: dict[str, Any]) -> bool:
    """Members read any channel; team members with ``read_public_channel`` read public ones."""
    if has_channel_permission(state, user, channel, "read_channel"):
        return True
    return channel["type"] == "O" and has_team_permission(state, user, channel["team_id"], "read_public_channel")


def can_see_private_channel(state: State, user: dict[str, Any], channel: dict[str, Any]) -> bool:
    """Whether a private channel exists for this user: members, team admins and system admins see it."""
    if user["id"] in state.channel_members.get(channel["id"], {}):
        return True
    return has_team_permission(state, user, channel["team_id"], "manage_team")


def can_see_user(state: State, viewer: dict[str, Any], other_id: str) -> bool:
    """``UserCanSeeOtherUser``: oneself, anyone with the system-wide ``view_members``, else only
    someone sharing a channel with the viewer.

    The server also lets the viewer see the members of a team where they hold ``view_members``;
    every team member is in the team's town square, so sharing a channel already covers them.
    """
    if viewer["id"] == other_id or has_system_permission(state, viewer, "view_members"):
        return True
    return any(viewer["id"] in members and other_id in members for members in state.channel_members.values())
