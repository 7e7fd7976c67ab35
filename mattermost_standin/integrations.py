"""Calls to integrations, made exactly as Mattermost makes them, and their replies applied.

Over 400 lines on purpose: the three outbound flows share one request/reply discipline
(tokens, timeouts, late replies), which splitting would spread over files.

Three flows reach out of the server: a custom slash command (form POST with the
command's token), a post action button (JSON POST with the action's private
context) and an interactive dialog submission (JSON POST, no token). Each sends
the payload the real server sends, waits at most the integration timeout
(``ServiceSettings.OutgoingIntegrationRequestsTimeout``, 30 s by default) and turns
the integration's reply into posts, ephemeral posts or an answer to the client.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from mattermost_standin import permissions, validation
from mattermost_standin.domain import channels, commands, posts, teams, triggers, users
from mattermost_standin.errors import AppError, invalid_body_param, invalid_param, permission_denied
from mattermost_standin.routing import Context
from mattermost_standin.store import Record, State


class Outgoing:
    """The HTTP client towards integrations, created in the serving loop and closed on stop."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def send(self, method: str, url: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return await self._client.request(method, url, content=content, headers=headers)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass(frozen=True)
class CommandArgs:
    """Where a command ran and for whom: where its replies go."""

    user_id: str
    channel_id: str
    team_id: str
    root_id: str
    trigger: str


# ``\B@[[:alnum:]][[:alnum:]\.\-_:]*`` and ``\B~[a-zA-Z0-9\-_]+`` of the server (ASCII classes).
_AT_MENTION = re.compile(r"\B@[A-Za-z0-9][A-Za-z0-9.\-_:]*")
_CHANNEL_MENTION = re.compile(r"\B~[a-zA-Z0-9\-_]+")
_RESPONSE_FIELDS: dict[str, Any] = {
    "response_type": "",
    "text": "",
    "username": "",
    "channel_id": "",
    "icon_url": "",
    "type": "",
    "props": None,
    "goto_location": "",
    "trigger_id": "",
    "skip_slack_parsing": False,
    "attachments": None,
    "extra_responses": None,
}


def split_command(command: str) -> tuple[str, str]:
    """The trigger word and the text after the first whitespace character (``ExecuteCommand``)."""
    for index, char in enumerate(command):
        if char.isspace():
            return command[:index], command[index + 1 :]
    return command, ""


def _user_mentions(state: State, text: str, team_id: str) -> list[tuple[str, str]]:
    """``@name`` mentions of team members; trailing ``.-_`` is trimmed until a user matches."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for match in _AT_MENTION.findall(text):
        name = match[1:].lower()
        if name in seen or not validation.is_valid_username(name.split(":")[0]):
            continue
        seen.add(name)
        candidate, user = name, users.find_user_by_username(state, name)
        while user is None and candidate and candidate[-1] in ".-_":
            candidate = candidate[:-1]
            user = users.find_user_by_username(state, candidate)
        if user is not None and teams.team_member(state, team_id, user["id"]) is not None:
            found.append((candidate, user["id"]))
    return found


def _channel_mentions(state: State, text: str, team_id: str) -> list[tuple[str, str]]:
    """``~name`` mentions of the team's public channels."""
    found: list[tuple[str, str]] = []
    for match in dict.fromkeys(_CHANNEL_MENTION.findall(text)):
        channel = channels.find_channel_by_name(state, team_id, match[1:])
        if channel is not None and channel["type"] == "O":
            found.append((match[1:], channel["id"]))
    return found


def _command_response(data: object) -> Record:
    """A ``CommandResponse`` with every field; a field of the wrong type fails like Go's decoder."""
    if not isinstance(data, dict):
        raise ValueError("a command response must be a JSON object")
    reply = {key: data.get(key, default) for key, default in _RESPONSE_FIELDS.items()}
    for key, default in _RESPONSE_FIELDS.items():
        value = reply[key]
        if value is None:
            reply[key] = default
        elif isinstance(default, str | bool) and not isinstance(value, type(default)):
            raise ValueError(f"{key} must be a {type(default).__name__}")
    if reply["props"] is not None and not isinstance(reply["props"], dict):
        raise ValueError("props must be an object")
    if reply["attachments"] is not None and not isinstance(reply["attachments"], list):
        raise ValueError("attachments must be an array")
    extra = reply["extra_responses"]
    if extra is not None:
        if not isinstance(extra, list):
            raise ValueError("extra_responses must be an array")
        reply["extra_responses"] = [_command_response(item) for item in extra]
    return reply


def parse_command_response(content_type: str, body: bytes) -> Record:
    """JSON bodies are decoded; any other content type is the reply's text.

    As ``CommandResponseFromHTTPBody``.
    """
    if content_type.split(";")[0].strip() == "application/json":
        try:
            return _command_response(json.loads(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"invalid command response: {exc}") from None
    return _command_response({"text": body.decode("utf-8", errors="replace")})


def _command_error(error_id: str, message: str, detail: str = "") -> AppError:
    return AppError(500, f"api.command.execute_command.{error_id}.app_error", message, detail)


def _post_command_reply(context: Context, args: CommandArgs, reply: Record) -> None:
    """One reply (``HandleCommandResponsePost``): ``in_channel`` posts as the user, else ephemeral."""
    state = context.state
    channel_id = args.channel_id
    if reply["channel_id"]:
        if channels.channel_member(state, reply["channel_id"], args.user_id) is None:
            raise AppError(
                403,
                "api.command.command_post.forbidden.app_error",
                "Specified user is not a member of specified channel.",
            )
        channel_id = reply["channel_id"]
    props = copy.deepcopy(reply["props"] or {})
    props["from_webhook"] = "true"
    if reply["attachments"] is not None:
        props["attachments"] = copy.deepcopy(reply["attachments"])
    if reply["type"].startswith("system_"):
        raise invalid_param("post.type")
    post = posts.new_post(
        context.store,
        user_id=args.user_id,
        channel_id=channel_id,
        message=reply["text"],
        props=props,
        root_id=args.root_id,
        type=reply["type"],
    )
    if reply["response_type"] == "in_channel":
        posts.create_post(context.store, post)
    elif reply["response_type"] in ("", "ephemeral") and (reply["text"] or reply["attachments"] is not None):
        posts.send_ephemeral(context.store, args.user_id, post)


def apply_command_reply(context: Context, args: CommandArgs, reply: Record) -> None:
    """Post a reply and its ``extra_responses``; any failure answers ``create_post_failed`` (500)."""
    failed = False
    for each in [reply, *(reply["extra_responses"] or [])]:
        try:
            _post_command_reply(context, args, each)
        except AppError:
            failed = True
    if failed:
        raise _command_error(
            "create_post_failed",
            f"Command '{args.trigger}' failed to post response. Please contact your System Administrator.",
        )


def _show_failure(context: Context, args: CommandArgs, error: AppError) -> None:
    """The webapp shows a failed command to its user as an ephemeral message in the channel."""
    post = posts.new_post(
        context.store, user_id=args.user_id, channel_id=args.channel_id, message=error.message, root_id=args.root_id
    )
    posts.send_ephemeral(context.store, args.user_id, post)


def _command_form(
    context: Context, command: Record, args: CommandArgs, text: str, trigger_id: str, response_url: str
) -> str:
    state = context.state
    channel = state.channels[args.channel_id]
    fields = [
        ("token", command["token"]),
        ("team_id", command["team_id"]),
        ("team_domain", state.teams[command["team_id"]]["name"]),
        ("channel_id", args.channel_id),
        ("channel_name", channel["name"]),
        ("user_id", args.user_id),
        ("user_name", state.users[args.user_id]["username"]),
        ("command", "/" + args.trigger),
        ("text", text),
        ("trigger_id", trigger_id),
        ("root_id", args.root_id),
        ("response_url", response_url),
    ]
    for names_key, ids_key, mentions in (
        ("user_mentions", "user_mentions_ids", _user_mentions(state, text, command["team_id"])),
        ("channel_mentions", "channel_mentions_ids", _channel_mentions(state, text, command["team_id"])),
    ):
        fields += [(names_key, name) for name, _ in mentions] + [(ids_key, mid) for _, mid in mentions]
    # Go's url.Values.Encode: keys sorted, a repeated key's values in order.
    return urlencode(sorted(fields, key=lambda field: field[0]))


async def execute_command(context: Context, user: Record, channel: Record, command_text: str, root_id: str) -> Record:
    """Run ``/trigger text`` as ``user`` in ``channel`` and answer the ``CommandResponse``."""
    state = context.state
    word, text = split_command(command_text)
    word = word.lower()
    if not word.startswith("/"):
        raise AppError(400, "api.command.execute_command.format.app_error", f"Command {word} does not start with '/'.")
    args = CommandArgs(user["id"], channel["id"], channel["team_id"], root_id, word[1:])
    client_trigger_id, trigger_id = triggers.issue(
        context.store, user["id"], channel_id=channel["id"], team_id=args.team_id
    )
    command = commands.find_command(state, args.team_id, args.trigger)
    if command is None:
        raise AppError(
            404,
            "api.command.execute_command.not_found.app_error",
            f"Command with a trigger of '{args.trigger}' not found. To send a message beginning with \"/\", "
            "try adding an empty space at the beginning of the message.",
        )
    hook = commands.create_response_url_hook(
        context.store, command_id=command["id"], user_id=user["id"], channel_id=channel["id"], root_id=root_id
    )
    form = _command_form(context, command, args, text, trigger_id, f"{context.site_url()}/hooks/commands/{hook['id']}")
    headers = {"Accept": "application/json", "Authorization": f"Token {command['token']}"}
    url = command["url"]
    if command["method"] == "G":
        url += ("&" if "?" in url else "?") + form
        body = b""
    else:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = form.encode()
    failed = f"Command with a trigger of '{args.trigger}' failed."
    try:
        response = await context.outgoing.send(
            "GET" if command["method"] == "G" else "POST", url, content=body, headers=headers
        )
    except httpx.HTTPError as exc:
        error = _command_error("failed", failed, f"{type(exc).__name__}: {exc}")
        _show_failure(context, args, error)
        raise error from None
    if response.status_code != 200:
        error = _command_error(
            "failed_resp",
            f"Command with a trigger of '{args.trigger}' returned response {response.status_code}.",
            response.text,
        )
        _show_failure(context, args, error)
        raise error
    try:
        reply = parse_command_response(response.headers.get("content-type", ""), response.content)
    except ValueError as exc:
        error = _command_error("failed", failed, str(exc))
        _show_failure(context, args, error)
        raise error from None
    reply["trigger_id"] = client_trigger_id
    apply_command_reply(context, args, reply)
    return reply


def reply_to_response_url(context: Context, hook_id: str, content_type: str, body: bytes) -> None:
    """A reply posted to a command's ``response_url``, handled like the command's own reply."""
    try:
        reply = parse_command_response(content_type, body)
    except ValueError as exc:
        raise AppError(
            400,
            "web.command_webhook.parse.app_error",
            "Unable to parse incoming data for command webhook.",
            str(exc),
        ) from None
    hook = commands.use_response_url_hook(context.store, hook_id)
    command = commands.get_command(context.state, hook["command_id"])
    args = CommandArgs(hook["user_id"], hook["channel_id"], command["team_id"], hook["root_id"], command["trigger"])
    apply_command_reply(context, args, reply)


def _action_error(detail: str, status: int = 400) -> AppError:
    return AppError(status, "api.post.do_action.action_integration.app_error", "Action integration error.", detail)


async def _post_json(context: Context, url: str, payload: Record) -> httpx.Response:
    """POST JSON to an integration (``DoActionRequest``); unreachable integrations answer 400."""
    if not validation.is_valid_http_url(url):
        raise _action_error(f"invalid url {url!r}")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    content = json.dumps(payload, separators=(",", ":")).encode()
    try:
        return await context.outgoing.send("POST", url, content=content, headers=headers)
    except httpx.HTTPError as exc:
        raise _action_error(f"err={type(exc).__name__}: {exc}") from None


def _find_action(post: Record, action_id: str) -> Record | None:
    attachments = post["props"].get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        actions = attachment.get("actions") if isinstance(attachment, dict) else None
        for action in actions if isinstance(actions, list) else []:
            if isinstance(action, dict) and action.get("id") == action_id:
                return action
    return None


async def do_post_action(context: Context, user: Record, post: Record, action_id: str, selected_option: str) -> Record:
    """Click a button (or pick a menu option): call the integration, then apply its ``update``
    and ``ephemeral_text`` (``DoPostActionWithCookie``). Answers ``{status, trigger_id}``."""
    state = context.state
    action = _find_action(post, action_id)
    if action is None or not isinstance(action.get("integration"), dict):
        raise AppError(404, "api.post.do_action.action_id.app_error", "Invalid action id.", f"action={action_id}")
    integration = action["integration"]
    channel = state.channels[post["channel_id"]]
    team = state.teams.get(channel["team_id"])  # None for a direct message channel
    client_trigger_id, trigger_id = triggers.issue(
        context.store, user["id"], channel_id=channel["id"], team_id=channel["team_id"]
    )
    action_context = copy.deepcopy(integration.get("context")) or {}
    data_source = ""
    if action.get("type") == "select" and selected_option:
        action_context["selected_option"] = selected_option
        data_source = str(action.get("data_source", ""))
    request: Record = {
        "user_id": user["id"],
        "user_name": user["username"],
        "channel_id": channel["id"],
        "channel_name": channel["name"],
        "team_id": channel["team_id"],
        "team_domain": team["name"] if team is not None else "",
        "post_id": post["id"],
        "trigger_id": trigger_id,
        "type": str(action.get("type", "")),
        "data_source": data_source,
    }
    if action_context:
        request["context"] = action_context
    response = await _post_json(context, str(integration.get("url", "")), request)
    if response.status_code != 200:
        # The upstream status survives where a client can act on it (rate limit, unavailable).
        upstream = response.status_code
        status = upstream if upstream in (429, 503) else 502 if upstream >= 500 else 400
        raise _action_error(f"status={upstream}", status)
    try:
        reply = json.loads(response.content) if response.content else {}
    except ValueError as exc:
        raise _action_error(str(exc)) from None
    if not isinstance(reply, dict):
        raise _action_error("the integration's reply must be a JSON object")
    if isinstance(reply.get("update"), dict):
        posts.apply_integration_update(context.store, post, reply["update"])
    ephemeral_text = reply.get("ephemeral_text")
    if isinstance(ephemeral_text, str) and ephemeral_text:
        retained = {k: post["props"][k] for k in posts.RETAINED_PROPS if k in post["props"]}
        ephemeral = posts.new_post(
            context.store,
            user_id=user["id"],
            channel_id=channel["id"],
            message=ephemeral_text,
            props=retained,
            root_id=post["root_id"] or post["id"],
        )
        posts.send_ephemeral(context.store, user["id"], ephemeral)
    return {"status": "OK", "trigger_id": client_trigger_id}


def open_dialog(context: Context, body: Record) -> None:
    """Validate the trigger id and the dialog, then record the dialog as shown to the trigger's user."""
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise invalid_body_param("url")
    trigger_id = body.get("trigger_id")
    if not isinstance(trigger_id, str):
        raise invalid_body_param("trigger_id")
    client_id, user_id = triggers.verify(context.store, trigger_id, context.integration_timeout)
    problems = validation.dialog_problems(body.get("dialog"))
    if problems:
        raise invalid_body_param("dialog", "; ".join(problems))
    where = context.state.trigger_contexts.get(client_id, {})
    context.state.dialogs.append(
        {
            "trigger_id": trigger_id,
            "url": url,
            "dialog": copy.deepcopy(body["dialog"]),
            "user_id": user_id,
            "channel_id": where.get("channel_id", ""),
            "team_id": where.get("team_id", ""),
            "opened_at": context.store.now_ms(),
            "submitted": False,
        }
    )


def _string(body: Record, key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise invalid_body_param("dialog", f"{key} must be a string")
    return value


async def submit_dialog(context: Context, user: Record, body: Record) -> Record:
    """Forward a submission to the dialog's URL and answer the integration's ``{error, errors}``.

    The user is the session's and the team the channel's, whatever the body says.
    """
    state = context.state
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise invalid_body_param("url")
    channel = state.channels.get(_string(body, "channel_id"))
    if channel is None or not permissions.has_channel_permission(state, user, channel, "read_channel"):
        raise permission_denied(user["id"], "read_channel")
    if not permissions.has_team_permission(state, user, channel["team_id"], "view_team"):
        raise permission_denied(user["id"], "view_team")
    callback_id, dialog_state = _string(body, "callback_id"), _string(body, "state")
    cancelled = body.get("cancelled") is True
    payload: Record = {
        "type": "dialog_submission",
        "callback_id": callback_id,
        "state": dialog_state,
        "user_id": user["id"],
        "channel_id": channel["id"],
        "team_id": channel["team_id"],
        "submission": body.get("submission"),
        "cancelled": cancelled,
    }
    response = await _post_json(context, url, payload)
    if response.status_code != 200:
        raise _action_error(f"status={response.status_code}")
    try:
        reply = json.loads(response.content) if response.content else {}
    except ValueError:
        reply = {}  # the server ignores a reply it cannot decode: an empty reply is success
    answer = {k: reply[k] for k in ("error", "errors", "type", "form") if isinstance(reply, dict) and reply.get(k)}
    if not answer.get("error") and not answer.get("errors"):
        for dialog in reversed(state.dialogs):
            if (
                dialog["user_id"] == user["id"]
                and dialog["url"] == url
                and dialog["dialog"].get("callback_id", "") == callback_id
                and not dialog["submitted"]
            ):
                dialog.update(submitted=True, cancelled=cancelled, submission=copy.deepcopy(body.get("submission")))
                break
    return answer
