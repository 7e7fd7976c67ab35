"""The validation rules of Mattermost's models, with the error ids they answer.

The rules are the server's own (``model.Channel.IsValid``, ``IsValidUsername``,
``Team.IsValid``, ``Command.IsValid``, ``Dialog.IsValid``, ``Post.IsValid``), so
code that passes the stand-in passes the real server. Lengths the server counts in
runes are counted with ``len(str)``; lengths it counts in bytes (dialog fields)
are counted on the UTF-8 encoding.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard
from urllib.parse import urlparse

from mattermost_standin.errors import AppError

CHANNEL_NAME_MAX = 64
CHANNEL_DISPLAY_NAME_MAX_RUNES = 64
CHANNEL_HEADER_MAX_RUNES = 1024
CHANNEL_PURPOSE_MAX_RUNES = 250
POST_MESSAGE_MAX_RUNES = 16383

_CHANNEL_NAME = re.compile(r"^[a-z0-9]+([a-z\-\_0-9]+|(__)?)[a-z0-9]*$")
_TEAM_NAME = re.compile(r"^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$")
_USERNAME = re.compile(r"^[a-z0-9.\-_]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_GROUP_NAME = re.compile(r"^[a-f0-9]{40}$")
_RESERVED_USERNAMES = {"all", "channel", "here", "matterbot", "system"}
_RESERVED_TEAM_NAMES = {
    "admin",
    "api",
    "boards",
    "channel",
    "claim",
    "error",
    "files",
    "help",
    "landing",
    "login",
    "mfa",
    "oauth",
    "playbooks",
    "plug",
    "plugins",
    "post",
    "signup",
}


def is_valid_id(value: object) -> TypeGuard[str]:
    """``model.IsValidId``: 26 bytes, letters and digits only (any case: ids are lowercase, but the
    server refuses an uppercase one only when it finds nothing under it)."""
    return isinstance(value, str) and len(value.encode()) == 26 and all(c.isalpha() or c.isnumeric() for c in value)


def is_valid_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _name_refused(error_id: str, shortest: int, detail: str) -> AppError:
    """A channel or team name its model's pattern refuses."""
    return AppError(400, error_id, f"Name must be {shortest} or more lowercase alphanumeric characters.", detail)


def check_channel(channel: dict[str, Any]) -> None:
    """``model.Channel.IsValid`` for the fields a client controls, in the server's order."""
    detail = f"id={channel['id']}"
    if len(channel["display_name"]) > CHANNEL_DISPLAY_NAME_MAX_RUNES:
        raise AppError(400, "model.channel.is_valid.display_name.app_error", "Invalid display name.", detail)
    name = channel["name"]
    if _CHANNEL_NAME.fullmatch(name) is None or len(name) > CHANNEL_NAME_MAX:
        raise _name_refused(
            "model.channel.is_valid.1_or_more.app_error",
            1,
            f"{detail}, name must match {_CHANNEL_NAME.pattern} and be at most {CHANNEL_NAME_MAX} characters",
        )
    if channel["type"] not in ("O", "P"):
        raise AppError(400, "model.channel.is_valid.type.app_error", "Invalid type.", detail)
    if len(channel["header"]) > CHANNEL_HEADER_MAX_RUNES:
        raise AppError(400, "model.channel.is_valid.header.app_error", "Invalid header.", detail)
    if len(channel["purpose"]) > CHANNEL_PURPOSE_MAX_RUNES:
        raise AppError(400, "model.channel.is_valid.purpose.app_error", "Invalid purpose.", detail)
    parts = name.split("__")
    if _GROUP_NAME.fullmatch(name) or (len(parts) == 2 and all(is_valid_id(p) for p in parts)):
        raise AppError(
            400,
            "model.channel.is_valid.name.app_error",
            "Invalid channel name. User ids are not permitted in channel name for non-direct message channels.",
        )


def check_post_message(message: str, post_id: str) -> None:
    if len(message) > POST_MESSAGE_MAX_RUNES:
        raise AppError(
            400,
            "model.post.is_valid.message_length.app_error",
            "Post Message property is longer than the maximum permitted length.",
            f"id={post_id}, length={len(message)}, max={POST_MESSAGE_MAX_RUNES}",
        )


def is_valid_username(username: str) -> bool:
    return (
        3 <= len(username) <= 64
        and _USERNAME.fullmatch(username) is not None
        and username[0].isalpha()
        and username not in _RESERVED_USERNAMES
    )


def check_username(username: str) -> None:
    if not is_valid_username(username):
        raise AppError(
            400,
            "model.user.is_valid.username.app_error",
            "Username must begin with a letter, and contain between 3 to 22 lowercase characters made up "
            'of numbers, letters, and the symbols ".", "-", and "_".',
            f"username={username}",
        )


def check_email(email: str) -> None:
    if _EMAIL.fullmatch(email) is None:
        raise AppError(400, "model.user.is_valid.email.app_error", "Please enter a valid email address.")


def check_password(password: str) -> None:
    """The default password policy: at least 8 characters, nothing else required."""
    if len(password) < 8:
        raise AppError(400, "model.user.is_valid.pwd.app_error", "Your password must contain at least 8 characters.")


def check_team(team: dict[str, Any]) -> None:
    name, display_name, detail = team["name"], team["display_name"], f"id={team['id']}"
    if not 1 <= len(display_name) <= 64:
        raise AppError(400, "model.team.is_valid.name.app_error", "Invalid name.", detail)
    if not 2 <= len(name) <= 64:
        raise AppError(400, "model.team.is_valid.url.app_error", "Invalid URL Identifier.", detail)
    if name in _RESERVED_TEAM_NAMES:
        raise AppError(400, "model.team.is_valid.reserved.app_error", "This URL is unavailable. Please try another.")
    if _TEAM_NAME.fullmatch(name) is None:
        raise _name_refused("model.team.is_valid.characters.app_error", 2, detail)
    if team["type"] not in ("O", "I"):
        raise AppError(400, "model.team.is_valid.type.app_error", "Invalid type.", detail)


def check_command(command: dict[str, Any]) -> None:
    """``model.Command.IsValid`` for the fields a client sets."""
    detail = f"id={command['id']}"
    trigger = command["trigger"]
    if not 1 <= len(trigger) <= 128 or trigger.startswith("/") or " " in trigger:
        raise AppError(400, "model.command.is_valid.trigger.app_error", "Invalid trigger.", detail)
    url = command["url"]
    if not 1 <= len(url) <= 1024:
        raise AppError(400, "model.command.is_valid.url.app_error", "Invalid URL.", detail)
    if not is_valid_http_url(url):
        raise AppError(400, "model.command.is_valid.url_http.app_error", "Invalid URL. Must be a valid URL.", detail)
    if command["method"] not in ("P", "G"):
        raise AppError(400, "model.command.is_valid.method.app_error", "Invalid method.", detail)
    if len(command["display_name"]) > 64:
        raise AppError(400, "model.command.is_valid.display_name.app_error", "Invalid title.", detail)
    if len(command["description"]) > 128:
        raise AppError(400, "model.command.is_valid.description.app_error", "Invalid description.", detail)


_TEXT_SUBTYPES = {"", "text", "email", "number", "tel", "url", "password"}
_ELEMENT_TYPES = {"text", "textarea", "select", "bool", "radio", "date", "datetime", "action_button"}


def _nbytes(value: object) -> int:
    return len(value.encode()) if isinstance(value, str) else 0


def _str_field(element: dict[str, Any], key: str) -> str:
    value = element.get(key, "")
    return value if isinstance(value, str) else ""


def _option_values(element: dict[str, Any]) -> set[str]:
    options = element.get("options") or []
    return {str(o.get("value")) for o in options if isinstance(o, dict)}


def _element_problems(element: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for key, limit in (("display_name", 24), ("name", 300)):
        if not _str_field(element, key):
            problems.append(f"{key} cannot be empty")
        elif _nbytes(element[key]) > limit:
            problems.append(f"{key} cannot be longer than {limit} characters")
    if _nbytes(element.get("help_text")) > 150:
        problems.append("help_text cannot be longer than 150 characters")
    min_length, max_length = element.get("min_length", 0), element.get("max_length", 0)
    if not isinstance(min_length, int) or not isinstance(max_length, int):
        problems.append("min_length and max_length must be integers")
    elif min_length < 0 or min_length > max_length:
        problems.append(f"min_length {min_length} must be between 0 and max_length {max_length}")
    kind = element.get("type")
    if element.get("multiselect") and kind != "select":
        problems.append("multiselect can only be used with select elements")
    default, placeholder = _str_field(element, "default"), _str_field(element, "placeholder")
    if kind not in _ELEMENT_TYPES:
        problems.append(f"invalid element type {kind!r}")
    elif kind in ("text", "textarea"):
        limit = 150 if kind == "text" else 3000
        if _nbytes(default) > limit or _nbytes(placeholder) > limit:
            problems.append(f"default and placeholder cannot be longer than {limit} characters")
        if _str_field(element, "subtype") not in _TEXT_SUBTYPES:
            problems.append(f"invalid subtype {element.get('subtype')!r}")
    elif kind == "select":
        source = _str_field(element, "data_source")
        if source not in ("", "users", "channels", "dynamic"):
            problems.append(f"invalid data source {source!r}")
        elif source == "dynamic" and not is_valid_http_url(_str_field(element, "data_source_url")):
            problems.append("dynamic data_source requires a valid data_source_url")
        elif source == "" and default and not set(default.replace(" ", "").split(",")) <= _option_values(element):
            problems.append(f"default value {default!r} doesn't exist in options")
    elif kind == "bool" and default not in ("", "true", "false"):
        problems.append("invalid default of bool")
    elif kind == "radio" and default and default not in _option_values(element):
        problems.append(f"default value {default!r} doesn't exist in options")
    elif kind == "action_button":
        button = element.get("action_button")
        if not isinstance(button, dict) or not is_valid_http_url(str(button.get("url", ""))):
            problems.append("action_button requires a valid url")
    return problems


def dialog_problems(dialog: object) -> list[str]:
    """Everything ``Dialog.IsValid`` finds wrong with a dialog; empty when it is valid."""
    if not isinstance(dialog, dict):
        return ["dialog must be an object"]
    problems: list[str] = []
    title = dialog.get("title")
    if not isinstance(title, str) or not title or _nbytes(title) > 24:
        problems.append(f"invalid dialog title {title!r}: 1 to 24 characters")
    for key in ("callback_id", "introduction_text", "submit_label", "state"):
        if key in dialog and not isinstance(dialog[key], str):
            problems.append(f"{key} must be a string")
    icon_url = dialog.get("icon_url", "")
    if icon_url and not (isinstance(icon_url, str) and is_valid_http_url(icon_url)):
        problems.append("invalid icon url")
    elements = dialog.get("elements")
    if not isinstance(elements, list):
        return [*problems, "elements must be a list"]
    seen: set[str] = set()
    for index, element in enumerate(elements):
        if not isinstance(element, dict):
            problems.append(f"element {index} must be an object")
            continue
        name = _str_field(element, "name")
        if name in seen:
            problems.append(f"duplicate dialog element {name!r}")
        seen.add(name)
        problems.extend(f"{name or index!r} field is not valid: {p}" for p in _element_problems(element))
    return problems
