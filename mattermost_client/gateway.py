"""The one gateway to Mattermost's REST API v4, through `mattermostautodriver`.

Activities use it with the bot token to change things; the API uses it to resolve
bearer tokens and to gather the facts the access rules need (team and channel
membership, roles). Errors come out as `MattermostFailure` with Mattermost's error id,
the HTTP status and whether retrying could help.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from mattermostautodriver import AsyncTypedDriver
from mattermostautodriver.exceptions import InvalidMattermostError, MattermostError, TooManyRequests

log = logging.getLogger(__name__)

T = TypeVar("T")


def _not_the_drivers_refusals(record: logging.LogRecord) -> bool:
    """The driver logs every refused request at ERROR, under its websocket logger's name, before
    raising; the gateway turns the exception into a `MattermostFailure` and logs it under its own
    name, at the level its meaning deserves (a user that does not exist is no error)."""
    return record.funcName != "_check_response"


logging.getLogger("mattermostautodriver.websocket").addFilter(_not_the_drivers_refusals)

CHANNEL_EXISTS = "store.sql_channel.save_channel.exists.app_error"
MEMBER_MISSING = "app.channel.get_member.missing.app_error"
# What Mattermost allows in ids, usernames and channel names. Anything else cannot exist,
# and must never be put into a request path: `@../../channels/<id>` would otherwise make
# the bot fetch another API route. Matched whole (`fullmatch`: `$` also matches before a
# trailing newline) and ASCII only.
USERNAME = re.compile(r"[a-z0-9.\-_]{1,64}", re.ASCII)
CHANNEL_NAME = re.compile(r"[a-z0-9\-_]{1,64}", re.ASCII)
ID = re.compile(r"[a-z0-9]{26}", re.ASCII)
# Tokens travel in a header: printable ASCII only (httpx refuses anything else).
TOKEN = re.compile(r"[\x21-\x7e]{1,256}", re.ASCII)
# A command's response URL, as Mattermost makes it: /hooks/commands/<26-character id>.
RESPONSE_PATH = re.compile(r"/hooks/commands/[a-z0-9]{26}", re.ASCII)
# How far back a retried post looks for the copy an earlier attempt may have made.
DEDUPE_SCAN_POSTS = 200


@dataclass(frozen=True)
class ChannelMembership:
    """Whether a user is in a channel (None: the bot cannot tell), and their roles there."""

    is_member: bool | None
    roles: tuple[str, ...] = ()


class MattermostFailure(Exception):
    """A Mattermost call failed; `retryable` says whether trying again may help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        error_id: str | None = None,
        retry_after: float | None = None,
        may_have_landed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_id = error_id
        self.retry_after = retry_after
        # The request reached Mattermost but no answer came back (timeout, dropped connection,
        # gateway error): it may still be carried out, later.
        self.may_have_landed = may_have_landed or status in (502, 504)

    @property
    def retryable(self) -> bool:
        # No response (down, timeout), rate limited, or a server-side error.
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def not_found(self) -> bool:
        return self.status == 404


@dataclass(frozen=True)
class ServerAddress:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        parts = urlsplit(url)
        if parts.path not in ("", "/"):
            raise ValueError("MATTERMOST_URL must be the server's root URL, without a path")
        scheme = parts.scheme or "http"
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme=scheme, host=parts.hostname or "localhost", port=port)


async def _call(operation: Callable[[], Awaitable[T]], what: str) -> T:
    """Run one driver call and translate its exceptions."""
    try:
        return await operation()
    except TooManyRequests as error:
        raise MattermostFailure(f"Mattermost rate-limited {what}", status=429, retry_after=error.retry_after) from None
    except MattermostError as error:
        # Expected answers for lookups (404: no such user, not a member); callers decide what
        # a refusal means and report it, so it is only a debug line here.
        log.debug("Mattermost answered %s to %s: %s", error.status_code, what, error)
        raise MattermostFailure(
            f"Mattermost refused to {what}: {error}", status=error.status_code, error_id=error.error_id
        ) from None
    except InvalidMattermostError as error:
        raise MattermostFailure(
            f"Mattermost answered {error.status_code} to {what}", status=error.status_code
        ) from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise MattermostFailure(
            f"Mattermost is unreachable ({type(error).__name__}) while trying to {what}", status=None
        ) from None
    except httpx.TransportError as error:
        raise MattermostFailure(
            f"Mattermost did not answer ({type(error).__name__}) while trying to {what}",
            status=None,
            may_have_landed=True,
        ) from None


def _no_such(what: str) -> MattermostFailure:
    return MattermostFailure(f"Mattermost has no {what}", status=404)


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    """`value` when it can be a Mattermost name or id; otherwise the same "not found" failure
    Mattermost would give, without sending anything."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _no_such(what)
    return value


def _valid(pattern: re.Pattern[str], value: str) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


class Mattermost:
    """Typed operations on one Mattermost server.

    One instance per process: it owns a shared HTTP connection pool. The bot driver acts
    as the bot; `as_user(token)` gives a driver acting as a person (for `/users/me`).
    """

    def __init__(self, url: str, bot_token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._address = ServerAddress.parse(self.url)
        self.timeout = timeout
        self._transport = httpx.AsyncHTTPTransport(retries=0)
        self._bot = self._driver(bot_token)
        self._bot_id: str | None = None

    def _driver(self, token: str) -> AsyncTypedDriver:
        driver = AsyncTypedDriver(
            {
                "url": self._address.host,
                "scheme": self._address.scheme,
                "port": self._address.port,
                "token": token,
                "request_timeout": self.timeout,
                "verify": True,
                # Temporal retries activities with backoff; the API must answer promptly.
                "max_retries": 0,
                "transport": self._transport,
            }
        )
        # The driver only sends the token after login(); set it directly instead of a round trip.
        driver.client.token = token
        return driver

    async def close(self) -> None:
        await self._transport.aclose()

    # ------------------------------------------------------------------ identity

    async def user_for_token(self, token: str) -> dict[str, Any]:
        """`GET /users/me` with the caller's own token."""
        if not _valid(TOKEN, token):
            raise MattermostFailure("Mattermost does not accept this token", status=401)
        driver = self._driver(token)
        return await _call(lambda: driver.users.get_user("me"), "identify the caller")

    async def teams_for_token(self, token: str) -> list[dict[str, Any]]:
        """`GET /users/me/teams` with the caller's own token: the teams they belong to."""
        if not _valid(TOKEN, token):
            raise MattermostFailure("Mattermost does not accept this token", status=401)
        driver = self._driver(token)
        teams: list[dict[str, Any]] = await _call(lambda: driver.teams.get_teams_for_user("me"), "list your teams")
        return teams

    async def logout(self, token: str) -> None:
        """`POST /users/logout` with the caller's own token: Mattermost ends that session."""
        if not _valid(TOKEN, token):
            return
        driver = self._driver(token)
        await _call(lambda: driver.users.logout(), "sign you out")

    async def bot_user(self) -> dict[str, Any]:
        return await _call(lambda: self._bot.users.get_user("me"), "identify the bot")

    async def _own_id(self) -> str:
        """The bot's user id, asked once: a token always stands for the same user."""
        if self._bot_id is None:
            self._bot_id = str((await self.bot_user())["id"])
        return self._bot_id

    async def ping(self) -> dict[str, Any]:
        return await _call(lambda: self._bot.system.get_ping(), "answer a ping")

    async def check_ready(self) -> None:
        """What the service needs of Mattermost, read-only: the bot's token is accepted
        (`users/me`), and the team, channel and post routes answer, on a channel of the
        bot's own. Raises `MattermostFailure` naming what failed."""
        bot = await self.bot_user()
        teams = await _call(lambda: self._bot.teams.get_teams_for_user(bot["id"]), "list the bot's teams")
        if not teams:
            return
        team_id = teams[0]["id"]
        channels = await _call(
            lambda: self._bot.channels.get_channels_for_team_for_user(bot["id"], team_id), "list the bot's channels"
        )
        if channels:
            channel_id = channels[0]["id"]
            await _call(lambda: self._bot.posts.get_posts_for_channel(channel_id, per_page=1), "read a channel's posts")

    # ------------------------------------------------------------------ users and teams

    async def get_user(self, user_id: str) -> dict[str, Any]:
        _checked(ID, user_id, f"user {user_id!r}")
        return await _call(lambda: self._bot.users.get_user(user_id), f"look up user {user_id}")

    async def get_user_by_username(self, username: str) -> dict[str, Any]:
        _checked(USERNAME, username, f"user @{username!r}")
        return await _call(lambda: self._bot.users.get_user_by_username(username), f"look up user @{username}")

    async def get_users_by_ids(self, user_ids: Iterable[str]) -> list[dict[str, Any]]:
        # An id that cannot exist is left out, as Mattermost leaves out ids it does not know.
        ids = [user_id for user_id in dict.fromkeys(user_ids) if _valid(ID, user_id)]
        if not ids:
            return []
        return await _call(lambda: self._bot.users.get_users_by_ids(options=ids), "look up users")

    async def get_team(self, team_id: str) -> dict[str, Any]:
        _checked(ID, team_id, f"team {team_id!r}")
        return await _call(lambda: self._bot.teams.get_team(team_id), f"look up team {team_id}")

    async def team_member(self, team_id: str, user_id: str) -> dict[str, Any] | None:
        """The membership (with roles), or None when the user is not in the team."""
        if not _valid(ID, team_id) or not _valid(ID, user_id):
            return None
        try:
            member: dict[str, Any] = await _call(
                lambda: self._bot.teams.get_team_member(team_id, user_id), "look up a team member"
            )
        except MattermostFailure as failure:
            if failure.status in (403, 404):
                return None
            raise
        return None if member.get("delete_at") else member

    async def users_in_team(self, team_id: str, *, per_page: int = 200) -> list[dict[str, Any]]:
        """`GET /users?in_team=`: the team's first `per_page` active users, by username."""
        _checked(ID, team_id, f"team {team_id!r}")
        users: list[dict[str, Any]] = await _call(
            lambda: self._bot.users.get_users(in_team=team_id, active=True, per_page=per_page, page=0),
            "list the team's people",
        )
        return users

    async def role_permissions(self, role_names: Iterable[str]) -> set[str]:
        names = sorted({name for name in role_names if name})
        if not names:
            return set()
        roles = await _call(lambda: self._bot.roles.get_roles_by_names(options=names), "read roles")
        return {permission for role in roles for permission in role.get("permissions", [])}

    # ------------------------------------------------------------------ channels

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        _checked(ID, channel_id, f"channel {channel_id!r}")
        return await _call(lambda: self._bot.channels.get_channel(channel_id), "look up a channel")

    async def get_channel_by_name(self, team_id: str, name: str) -> dict[str, Any]:
        _checked(ID, team_id, f"team {team_id!r}")
        _checked(CHANNEL_NAME, name, f"channel ~{name}")
        return await _call(lambda: self._bot.channels.get_channel_by_name(team_id, name), f"look up channel ~{name}")

    async def channels_for_token(self, token: str, team_id: str) -> list[dict[str, Any]]:
        """`GET /users/me/teams/{team_id}/channels` with the person's own token: the team's
        channels they are in (direct and group messages included)."""
        _checked(ID, team_id, f"team {team_id!r}")
        if not _valid(TOKEN, token):
            raise MattermostFailure("Mattermost does not accept this token", status=401)
        driver = self._driver(token)
        channels: list[dict[str, Any]] = await _call(
            lambda: driver.channels.get_channels_for_team_for_user("me", team_id), "list your channels"
        )
        return channels

    async def is_channel_member(self, channel_id: str, user_id: str) -> bool:
        if not _valid(ID, channel_id) or not _valid(ID, user_id):
            return False
        try:
            await _call(lambda: self._bot.channels.get_channel_member(channel_id, user_id), "check channel membership")
        except MattermostFailure as failure:
            if failure.status in (403, 404):
                return False
            raise
        return True

    async def channel_membership(self, channel_id: str, user_id: str) -> ChannelMembership:
        """Whether the user is in the channel (None when the bot cannot tell: it cannot see the
        channel), and their roles there."""
        if not ID.fullmatch(channel_id) or not ID.fullmatch(user_id):
            return ChannelMembership(is_member=False)
        try:
            member: dict[str, Any] = await _call(
                lambda: self._bot.channels.get_channel_member(channel_id, user_id), "check channel membership"
            )
        except MattermostFailure as failure:
            if failure.error_id == MEMBER_MISSING:
                return ChannelMembership(is_member=False)
            if failure.status in (403, 404):
                return ChannelMembership(is_member=None)
            raise
        return ChannelMembership(is_member=True, roles=tuple(str(member.get("roles", "")).split()))

    async def create_channel(
        self, *, team_id: str, name: str, display_name: str, purpose: str, header: str, public: bool
    ) -> dict[str, Any]:
        """Create the channel, or return the one an earlier attempt created with this name."""
        _checked(ID, team_id, f"team {team_id!r}")
        try:
            return await _call(
                lambda: self._bot.channels.create_channel(
                    team_id=team_id,
                    name=name,
                    display_name=display_name,
                    purpose=purpose,
                    header=header,
                    type="O" if public else "P",
                ),
                f"create channel ~{name}",
            )
        except MattermostFailure as failure:
            if failure.error_id != CHANNEL_EXISTS:
                raise
            return await self.get_channel_by_name(team_id, name)

    async def add_channel_member(self, channel_id: str, user_id: str) -> None:
        _checked(ID, channel_id, f"channel {channel_id!r}")
        _checked(ID, user_id, f"user {user_id!r}")
        await _call(
            lambda: self._bot.channels.add_channel_member(channel_id, user_id=user_id),
            "add a member to the channel",
        )

    async def set_channel_header(self, channel_id: str, header: str) -> None:
        _checked(ID, channel_id, f"channel {channel_id!r}")
        await _call(lambda: self._bot.channels.patch_channel(channel_id, header=header), "update the channel header")

    # ------------------------------------------------------------------ posts

    async def create_post(self, *, channel_id: str, message: str, props: dict[str, Any]) -> dict[str, Any]:
        _checked(ID, channel_id, f"channel {channel_id!r}")
        return await _call(
            lambda: self._bot.posts.create_post(channel_id=channel_id, message=message, props=props),
            "post a message",
        )

    async def direct_message(
        self, user_id: str, message: str, *, props: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Post to the bot's direct message channel with the user; answers the post.

        `POST /channels/direct` makes the channel the first time and answers the same one after, so
        a retry never makes a second channel; the post is like any other (a retry that must not post
        twice carries a dedupe key in `props` and looks for it with `find_post_with_prop`). A user
        that does not exist is refused (400); an id Mattermost could not have made fails as "not
        found" without a request.
        """
        channel_id = await self.direct_channel(user_id)
        return await self.create_post(channel_id=channel_id, message=message, props=props or {})

    async def direct_channel(self, user_id: str) -> str:
        """The id of the bot's direct message channel with the user (made the first time, the same after)."""
        _checked(ID, user_id, f"user {user_id!r}")
        bot_id = await self._own_id()
        channel = await _call(
            lambda: self._bot.channels.create_direct_channel(options=[bot_id, user_id]),
            f"open a direct message channel with user {user_id}",
        )
        return str(channel["id"])

    async def find_post_with_prop(self, channel_id: str, key: str, value: str) -> dict[str, Any] | None:
        """A recent bot post carrying `props[key] == value` (the dedupe key of a retried post)."""
        _checked(ID, channel_id, f"channel {channel_id!r}")
        page = await _call(
            lambda: self._bot.posts.get_posts_for_channel(channel_id, per_page=DEDUPE_SCAN_POSTS),
            "read recent posts",
        )
        for post in page.get("posts", {}).values():
            if (post.get("props") or {}).get(key) == value:
                found: dict[str, Any] = post
                return found
        return None

    async def get_post(self, post_id: str) -> dict[str, Any]:
        _checked(ID, post_id, f"post {post_id!r}")
        return await _call(lambda: self._bot.posts.get_post(post_id), "read a post")

    async def patch_post(self, post_id: str, *, message: str, props: dict[str, Any]) -> dict[str, Any]:
        """`PUT /posts/{post_id}/patch`: replace the message and the props (whole) in place."""
        _checked(ID, post_id, f"post {post_id!r}")
        patched: dict[str, Any] = await _call(
            lambda: self._bot.client.put(
                f"/api/v4/posts/{post_id}/patch", options={"message": message, "props": props}
            ),
            "edit a post",
        )
        return patched

    async def pin_post(self, post_id: str) -> None:
        _checked(ID, post_id, f"post {post_id!r}")
        await _call(lambda: self._bot.posts.pin_post(post_id), "pin a post")

    async def respond_to_command(self, response_url: str, payload: dict[str, Any]) -> None:
        """Reply through a slash command's `response_url`.

        Only the path is used: the reply goes to the configured server, never to a host named
        in a request, and the site URL Mattermost advertises may not be reachable from here.
        """
        path = urlsplit(response_url).path
        # Exactly Mattermost's form: a path such as /hooks/commands/../../api/v4/... would
        # otherwise post to another route with the bot's token.
        if not _valid(RESPONSE_PATH, path):
            raise MattermostFailure(f"not a command response URL: {response_url}", status=400)
        # The hook answers plain text ("ok"), so the raw request is used rather than a JSON helper.
        await _call(lambda: self._bot.client.make_request("post", path, options=payload), "reply to the command")

    async def execute_command(self, token: str, *, channel_id: str, command: str) -> dict[str, Any]:
        """Run a slash command as the person whose token this is, as if they typed it."""
        _checked(ID, channel_id, f"channel {channel_id!r}")
        if not _valid(TOKEN, token):
            raise MattermostFailure("Mattermost does not accept this token", status=401)
        driver = self._driver(token)
        return await _call(
            lambda: driver.commands.execute_command(channel_id=channel_id, command=command), f"run {command}"
        )

    # ------------------------------------------------------------------ dialogs

    async def open_dialog(self, *, trigger_id: str, url: str, dialog: dict[str, Any]) -> None:
        await _call(
            lambda: self._bot.integration_actions.open_interactive_dialog(
                trigger_id=trigger_id, url=url, dialog=dialog
            ),
            "open a dialog",
        )
