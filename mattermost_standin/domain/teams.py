"""Teams and team membership.

Like the real server, creating a team creates its default channels (``town-square``
and ``off-topic``) and joining a team joins them (``JoinDefaultChannels``), so a
fresh team member can post in Town Square without further setup.
"""

from __future__ import annotations

from mattermost_standin import errors, validation
from mattermost_standin.domain import channels
from mattermost_standin.domain.users import get_user
from mattermost_standin.errors import AppError
from mattermost_standin.store import Record, State, Store, new_id, new_record

DEFAULT_CHANNELS = (("town-square", "Town Square"), ("off-topic", "Off-Topic"))


def create_team(store: Store, *, name: str, display_name: str, type: str = "O") -> Record:
    state = store.state
    now = store.now_ms()
    team: Record = {
        **new_record(now),
        "display_name": display_name.strip(),
        "name": name,
        "description": "",
        "email": "",
        "type": type,
        "company_name": "",
        "allowed_domains": "",
        "invite_id": new_id(),
        "allow_open_invite": False,
        "last_team_icon_update": 0,
        "scheme_id": None,
        "group_constrained": None,
        "policy_id": None,
        "cloud_limits_archived": False,
    }
    validation.check_team(team)
    if any(t["name"] == name for t in state.teams.values()):
        raise AppError(400, "app.team.save.existing.app_error", "A team with that name already exists.")
    state.teams[team["id"]] = team
    state.team_members[team["id"]] = {}
    for channel_name, channel_display_name in DEFAULT_CHANNELS:
        channels.create_channel(
            store, team_id=team["id"], name=channel_name, display_name=channel_display_name, type="O"
        )
    return team


def get_team(state: State, team_id: str) -> Record:
    return errors.require(state.teams.get(team_id), lambda: errors.team_not_found(team_id))


def get_team_by_name(state: State, name: str) -> Record:
    return errors.require(
        next((t for t in state.teams.values() if t["name"] == name), None),
        lambda: errors.not_found(
            "app.team.get_by_name.missing.app_error", "Unable to find the existing team.", name=name
        ),
    )


def team_member(state: State, team_id: str, user_id: str) -> Record | None:
    member = state.team_members.get(team_id, {}).get(user_id)
    return None if member is None or member["delete_at"] else member


def get_team_member(state: State, team_id: str, user_id: str) -> Record:
    return errors.require(team_member(state, team_id, user_id), lambda: errors.team_member_not_found(team_id, user_id))


def add_team_member(store: Store, team_id: str, user_id: str, *, admin: bool = False) -> Record:
    """Join a user to a team and its default channels; joining again returns the membership."""
    state = store.state
    get_team(state, team_id)
    get_user(state, user_id)
    existing = team_member(state, team_id, user_id)
    if existing is not None:
        return existing
    member: Record = {
        "team_id": team_id,
        "user_id": user_id,
        "roles": "team_user team_admin" if admin else "team_user",
        "delete_at": 0,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": admin,
        "explicit_roles": "",
        "create_at": store.now_ms(),
    }
    state.team_members[team_id][user_id] = member
    for channel_name, _ in DEFAULT_CHANNELS:
        channel = channels.find_channel_by_name(state, team_id, channel_name)
        if channel is not None and channel["type"] == "O":
            channels.add_channel_member(store, channel, user_id)
    return member
