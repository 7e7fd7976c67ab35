"""Custom slash commands and the ``response_url`` hooks each execution creates."""

from __future__ import annotations

from typing import Any

from mattermost_standin import validation
from mattermost_standin.domain.teams import get_team
from mattermost_standin.domain.users import get_user
from mattermost_standin.errors import AppError
from mattermost_standin.store import Record, State, Store, new_id

# Built-in commands own their triggers; a custom command cannot take them.
BUILT_IN_TRIGGERS = frozenset(
    {
        "away",
        "code",
        "collapse",
        "dnd",
        "echo",
        "expand",
        "groupmsg",
        "header",
        "help",
        "invite",
        "join",
        "kick",
        "leave",
        "logout",
        "me",
        "msg",
        "mute",
        "offline",
        "online",
        "open",
        "purpose",
        "remove",
        "rename",
        "search",
        "settings",
        "shortcuts",
        "shrug",
        "status",
    }
)
# Fields a command's owner may change after registration.
EDITABLE_FIELDS = (
    "trigger",
    "url",
    "method",
    "username",
    "icon_url",
    "auto_complete",
    "auto_complete_desc",
    "auto_complete_hint",
    "display_name",
    "description",
)
# CommandWebhook lifetime and use limit (model.CommandWebhookLifetime, TryUse(…, 5)).
RESPONSE_URL_LIFETIME_MS = 30 * 60 * 1000
RESPONSE_URL_MAX_USES = 5


def _check_trigger_free(state: State, team_id: str, trigger: str, command_id: str) -> None:
    taken = trigger in BUILT_IN_TRIGGERS or any(
        c["team_id"] == team_id and c["trigger"] == trigger and c["id"] != command_id for c in state.commands.values()
    )
    if taken:
        raise AppError(
            400,
            "api.command.duplicate_trigger.app_error",
            "This trigger word is already in use. Please choose another word.",
        )


def _normalize(fields: dict[str, Any]) -> dict[str, Any]:
    """Coerce client-set fields to their types; ``model.Command`` would fail to decode otherwise."""
    normalized: dict[str, Any] = {}
    for key in EDITABLE_FIELDS:
        if key not in fields:
            continue
        value = fields[key]
        expected = bool if key == "auto_complete" else str
        if not isinstance(value, expected):
            raise AppError(
                400,
                "api.context.invalid_body_param.app_error",
                "Invalid or missing command in request body.",
                f"{key} must be a {expected.__name__}",
            )
        normalized[key] = str(value).lower() if key == "trigger" else value
    return normalized


def register_command(store: Store, *, team_id: str, creator_id: str, fields: dict[str, Any]) -> Record:
    """Save a custom command with a generated token; the trigger is lowercased."""
    state = store.state
    get_team(state, team_id)
    get_user(state, creator_id)
    now = store.now_ms()
    command: Record = {
        "id": new_id(),
        "token": new_id(),
        "create_at": now,
        "update_at": now,
        "delete_at": 0,
        "creator_id": creator_id,
        "team_id": team_id,
        "trigger": "",
        "method": "P",
        "username": "",
        "icon_url": "",
        "auto_complete": False,
        "auto_complete_desc": "",
        "auto_complete_hint": "",
        "display_name": "",
        "description": "",
        "url": "",
        "plugin_id": "",
    }
    command.update(_normalize(fields))
    validation.check_command(command)
    _check_trigger_free(state, team_id, command["trigger"], command["id"])
    state.commands[command["id"]] = command
    return command


def update_command(store: Store, command_id: str, fields: dict[str, Any]) -> Record:
    command = get_command(store.state, command_id)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable command fields: {sorted(unknown)}")
    updated = {**command, **_normalize(fields), "update_at": store.now_ms()}
    validation.check_command(updated)
    _check_trigger_free(store.state, updated["team_id"], updated["trigger"], command_id)
    command.update(updated)
    return command


def get_command(state: State, command_id: str) -> Record:
    command = state.commands.get(command_id)
    if command is None or command["delete_at"]:
        raise AppError(404, "store.sql_command.get.missing.app_error", "Command does not exist.", f"id={command_id}")
    return command


def team_commands(state: State, team_id: str) -> list[Record]:
    return [c for c in state.commands.values() if c["team_id"] == team_id and not c["delete_at"]]


def find_command(state: State, team_id: str, trigger: str) -> Record | None:
    return next((c for c in team_commands(state, team_id) if c["trigger"] == trigger), None)


def create_response_url_hook(store: Store, *, command_id: str, user_id: str, channel_id: str, root_id: str) -> Record:
    hook: Record = {
        "id": new_id(),
        "create_at": store.now_ms(),
        "command_id": command_id,
        "user_id": user_id,
        "channel_id": channel_id,
        "root_id": root_id,
        "use_count": 0,
    }
    store.state.command_webhooks[hook["id"]] = hook
    return hook


def use_response_url_hook(store: Store, hook_id: str) -> Record:
    """Count one use of a ``response_url``: 5 uses within 30 minutes, like ``CommandWebhook``."""
    hook = store.state.command_webhooks.get(hook_id)
    if hook is None or store.now_ms() - hook["create_at"] > RESPONSE_URL_LIFETIME_MS:
        raise AppError(404, "app.command_webhook.get.missing", "Unable to find the webhook.", f"hook_id={hook_id}")
    if hook["use_count"] >= RESPONSE_URL_MAX_USES:
        raise AppError(400, "app.command_webhook.try_use.invalid", "Invalid webhook.", f"hook_id={hook_id}")
    hook["use_count"] += 1
    return hook
