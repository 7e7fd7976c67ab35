"""Users, bots and the personal access tokens that authenticate them."""

from __future__ import annotations

from typing import TypedDict, Unpack

from mattermost_standin import errors, validation
from mattermost_standin.errors import AppError
from mattermost_standin.store import Record, State, Store, new_id, new_record


class Profile(TypedDict, total=False):
    """The names a user goes by besides the username (``model.User``'s); empty when not given."""

    first_name: str
    last_name: str
    nickname: str


def create_user(
    store: Store,
    *,
    username: str,
    email: str,
    roles: str = "system_user",
    bot_description: str | None = None,
    **profile: Unpack[Profile],
) -> Record:
    """Save a user; ``bot_description`` set makes it a bot's user. Usernames and emails
    are lowercased like ``User.PreSave`` does, then validated and checked for uniqueness."""
    state = store.state
    username, email = username.strip().lower(), email.strip().lower()
    validation.check_username(username)
    validation.check_email(email)
    for role in roles.split():
        if role not in state.roles:
            raise AppError(400, "model.user.is_valid.roles.app_error", "Invalid roles.", f"role={role}")
    if find_user_by_username(state, username) is not None:
        raise AppError(400, "app.user.save.username_exists.app_error", "An account with that username already exists.")
    if any(u["email"] == email for u in state.users.values()):
        raise AppError(400, "app.user.save.email_exists.app_error", "An account with that email already exists.")
    now = store.now_ms()
    user: Record = {
        **new_record(now),
        "username": username,
        "auth_data": "",
        "auth_service": "",
        "email": email,
        "email_verified": True,
        "nickname": profile.get("nickname", ""),
        "first_name": profile.get("first_name", ""),
        "last_name": profile.get("last_name", ""),
        "position": "",
        "roles": roles,
        "props": {},
        "notify_props": {
            "channel": "true",
            "comments": "never",
            "desktop": "mention",
            "desktop_sound": "true",
            "email": "true",
            "first_name": "false",
            "mention_keys": "",
            "push": "mention",
            "push_status": "away",
        },
        "last_password_update": now,
        "last_picture_update": 0,
        "locale": "en",
        "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
        "disable_welcome_email": False,
        "is_bot": bot_description is not None,
    }
    if bot_description is not None:
        user["bot_description"] = bot_description
    state.users[user["id"]] = user
    return user


def get_user(state: State, user_id: str) -> Record:
    return errors.require(state.users.get(user_id), lambda: errors.user_not_found(f"user_id={user_id}"))


def find_user_by_username(state: State, username: str) -> Record | None:
    return next((u for u in state.users.values() if u["username"] == username), None)


def get_user_by_username(state: State, username: str) -> Record:
    user = find_user_by_username(state, username.lower())
    if user is None:
        raise errors.not_found(
            "app.user.get_by_username.app_error",
            "Unable to find an existing account matching your username for this team. "
            "This team may require an invite from the team owner to join.",
            username=username,
        )
    return user


def create_access_token(store: Store, user_id: str, description: str) -> Record:
    get_user(store.state, user_id)
    token: Record = {
        "id": new_id(),
        "token": new_id(),
        "user_id": user_id,
        "description": description,
        "is_active": True,
    }
    store.state.tokens[token["id"]] = token
    return token


def revoke_access_token(store: Store, token_id: str) -> None:
    """Revoking deletes the token and every session using it: it stops authenticating at once."""
    store.state.tokens.pop(token_id)


def get_access_token(state: State, token_id: str) -> Record:
    return errors.require(
        state.tokens.get(token_id),
        lambda: errors.not_found(
            "app.user_access_token.get_by_user.app_error",
            "Unable to get user access tokens by user.",
            token_id=token_id,
        ),
    )


def user_for_token(state: State, token: str, now_ms: float = 0) -> Record | None:
    """The user a bearer token authenticates (a personal access token, or an OAuth access token
    not expired at `now_ms`), or None when it is unknown, revoked or disabled."""
    for record in state.tokens.values():
        if record["token"] == token and record["is_active"]:
            return state.users.get(record["user_id"])
    session = state.oauth_sessions.get(token)
    if session is not None and session["expires_at"] >= now_ms:
        return state.users.get(session["user_id"])
    return None


def create_bot(
    store: Store,
    *,
    username: str,
    display_name: str,
    description: str,
    owner_id: str,
    roles: str = "system_user",
) -> Record:
    """Save a bot and its user (email ``<username>@localhost``, like the server).

    Bots are ``system_user`` unless an administrator gives them a role, as the System
    Console's bot account settings can (e.g. ``system_admin system_user``).
    """
    get_user(store.state, owner_id)
    user = create_user(
        store,
        username=username,
        email=f"{username.strip().lower()}@localhost",
        first_name=display_name,
        roles=roles,
        bot_description=description,
    )
    bot: Record = {
        "user_id": user["id"],
        "username": user["username"],
        "display_name": display_name,
        "description": description,
        "owner_id": owner_id,
        "create_at": user["create_at"],
        "update_at": user["update_at"],
        "delete_at": 0,
    }
    store.state.bots[user["id"]] = bot
    return bot


def get_bot(state: State, bot_user_id: str) -> Record:
    return errors.require(
        state.bots.get(bot_user_id),
        lambda: errors.not_found("store.sql_bot.get.missing.app_error", "Bot does not exist.", user_id=bot_user_id),
    )
