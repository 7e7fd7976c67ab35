"""``StandIn``: a Mattermost server for development and tests, served in the caller's event loop.

Three kinds of access, all on the same state:

* the REST API v4 over HTTP (what the project's code talks to through mattermostautodriver),
* direct setup helpers that act as an administrator and return the JSON the API would,
* inspection and fault controls, in Python and under ``/_standin/``.

Tests wait with ``wait_for`` instead of sleeping: every state change (each handled
request, each helper call) wakes the waiters, which re-evaluate their predicate.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Unpack

from mattermost_standin import inspection, seed, views
from mattermost_standin.app import StandInApp
from mattermost_standin.domain import channels, commands, oauth, teams, users
from mattermost_standin.faults import Fault, FaultOptions, Faults
from mattermost_standin.integrations import Outgoing
from mattermost_standin.routing import Context
from mattermost_standin.serve import BackgroundServer
from mattermost_standin.store import Record, Store

_SAVE_DELAY = 0.05


class StandIn:
    """A faithful Mattermost stand-in with an in-memory (optionally persisted) world.

    ``site_url`` is what the server calls its SiteURL (it builds ``response_url`` from
    it); by default the address it listens on. With ``data_file`` the world is loaded
    from it when present and saved to it (atomically, shortly after each change, and
    on ``stop``). ``integration_timeout`` is ``OutgoingIntegrationRequestsTimeout``:
    how long slash commands, buttons and dialog submissions may take, and how long a
    trigger id stays valid. ``clock`` (seconds since the epoch) stamps every record and
    decides expiries; tests pass a fake one to expire trigger ids and response URLs.
    """

    def __init__(
        self,
        site_url: str | None = None,
        data_file: Path | None = None,
        *,
        integration_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._site_url = site_url.rstrip("/") if site_url else None
        self._store = Store(clock, data_file)
        self._faults = Faults()
        self._outgoing = Outgoing(integration_timeout)
        self._context = Context(self._store, self._outgoing, self._faults, integration_timeout, lambda: self.url)
        self.app = StandInApp(self._context, self._on_request)
        self._server = BackgroundServer(self.app)
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._change = asyncio.Event()
        self._save_handle: asyncio.TimerHandle | None = None

    # ---- serving -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve in the current event loop until ``stop``; returns once accepting connections.

        ``port=0`` picks a free port the first time and reuses it on later starts, so a
        restarted stand-in keeps its URL.
        """
        if port == 0 and self._port is not None:
            port = self._port
        self._port = await self._server.start(host, port)
        self._host = host

    async def stop(self) -> None:
        """Stop listening (new connections are refused, like a server that is down) and save.

        State is kept: ``start`` serves it again.
        """
        await self._server.stop()
        await self._outgoing.aclose()
        self._flush()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the stand-in has not been started")
        return self._port

    @property
    def url(self) -> str:
        if self._site_url is not None:
            return self._site_url
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    # ---- change notification and persistence ---------------------------------------------

    def _wake_waiters(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def _changed(self, *, persist: bool = True) -> None:
        self._wake_waiters()
        if persist and self._store.data_file is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._store.save()
                return
            if self._save_handle is None:
                self._save_handle = loop.call_later(_SAVE_DELAY, self._flush)

    def _flush(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        self._store.save()
        self._wake_waiters()  # a test may be waiting for the data file

    def _on_request(self, method: str, path: str, status: int, user_id: str | None) -> None:
        self._store.state.requests.append({"method": method, "path": path, "status": status, "user_id": user_id})
        self._changed(persist=method != "GET")

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Return once ``predicate()`` is true; it is re-evaluated after every state change.

        ``timeout`` is a parameter (not ``asyncio.timeout``) because the test harness calls it
        so; on expiry a ``TimeoutError`` names the predicate and the last requests.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"still false after {timeout:g}s: {_describe(predicate)}; "
                    f"last requests: {self._store.state.requests[-5:]}"
                )
            change = self._change
            try:
                await asyncio.wait_for(change.wait(), remaining)
            except TimeoutError:
                continue

    # ---- setup helpers (act as an administrator; return what the API returns) ------------

    def _done(self, record: Record) -> Record:
        self._changed()
        return copy.deepcopy(record)

    def create_user(
        self, username: str, *, email: str | None = None, roles: str = "system_user", **profile: Unpack[users.Profile]
    ) -> Record:
        """A user (``<username>@example.com`` unless ``email`` is given), as an administrator creates one."""
        user = users.create_user(
            self._store,
            username=username,
            email=email if email is not None else f"{username.strip().lower()}@example.com",
            roles=roles,
            **profile,
        )
        self._changed()
        return views.user_for(self._store.state, user, user)

    def create_team(self, name: str, display_name: str, *, type: str = "O") -> Record:
        """A team with its default channels ``town-square`` and ``off-topic``, like the server."""
        return self._done(teams.create_team(self._store, name=name, display_name=display_name, type=type))

    def add_team_member(self, team_id: str, user_id: str, *, roles: str = "team_user") -> Record:
        """Join the team (and its default channels); ``roles="team_user team_admin"`` makes a team admin."""
        if not set(roles.split()) <= {"team_user", "team_admin"} or "team_user" not in roles.split():
            raise ValueError(f"team member roles must be 'team_user' or 'team_user team_admin', not {roles!r}")
        admin = "team_admin" in roles.split()
        return self._done(teams.add_team_member(self._store, team_id, user_id, admin=admin))

    def create_channel(
        self,
        team_id: str,
        name: str,
        display_name: str,
        *,
        type: str = "O",
        creator_id: str | None = None,
        purpose: str = "",
        header: str = "",
    ) -> Record:
        channel = channels.create_channel(
            self._store,
            team_id=team_id,
            name=name,
            display_name=display_name,
            type=type,
            creator_id=creator_id or "",
            purpose=purpose,
            header=header,
        )
        return self._done(channel)

    def add_channel_member(self, channel_id: str, user_id: str) -> Record:
        channel = channels.get_channel(self._store.state, channel_id)
        return self._done(channels.add_channel_member(self._store, channel, user_id))

    def remove_channel_member(self, channel_id: str, user_id: str) -> None:
        """What a channel admin does with "Remove from channel" (e.g. removing the bot)."""
        channel = channels.get_channel(self._store.state, channel_id)
        channels.remove_channel_member(self._store, channel, user_id)
        self._changed()

    def deactivate_user(self, user_id: str) -> None:
        """What a system admin does with "Deactivate": the account stays (read by id, with its
        ``delete_at``), but it can no longer sign in or use its tokens."""
        users.get_user(self._store.state, user_id)["delete_at"] = self._store.now_ms()
        self._changed()

    def set_time_zone(self, user_id: str, zone: str) -> None:
        """What a user does in *Settings > Display > Timezone* with the automatic zone turned off."""
        user = users.get_user(self._store.state, user_id)
        user["timezone"] = {"automaticTimezone": "", "manualTimezone": zone, "useAutomaticTimezone": "false"}
        self._changed()

    def create_access_token(self, user_id: str, description: str = "") -> str:
        """A personal access token (bots included); returns the token to send as ``Bearer``."""
        token = users.create_access_token(self._store, user_id, description)
        self._changed()
        return str(token["token"])

    def create_bot(
        self, username: str, *, display_name: str = "", owner_id: str, roles: str = "system_user"
    ) -> tuple[Record, str]:
        """A bot and an access token for it; returns ``(bot user, token)``.

        Like on the real server a bot is a ``system_user``: it must be a channel member to post
        and cannot send ephemeral posts (``create_post_ephemeral`` is an admin permission)
        unless given ``roles="system_admin system_user"``, as an administrator can.
        """
        bot = users.create_bot(
            self._store, username=username, display_name=display_name, description="", owner_id=owner_id, roles=roles
        )
        token = users.create_access_token(self._store, bot["user_id"], "bot token")
        user = self._store.state.users[bot["user_id"]]
        self._changed()
        return views.user_for(self._store.state, user, user), str(token["token"])

    def register_command(
        self,
        team_id: str,
        *,
        trigger: str,
        url: str,
        creator_id: str,
        auto_complete: bool = True,
        auto_complete_hint: str = "",
        auto_complete_desc: str = "",
        display_name: str = "",
        description: str = "",
    ) -> Record:
        """A custom slash command (POST); the result includes its generated ``token``."""
        fields: dict[str, Any] = {
            "trigger": trigger,
            "url": url,
            "method": "P",
            "auto_complete": auto_complete,
            "auto_complete_hint": auto_complete_hint,
            "auto_complete_desc": auto_complete_desc,
            "display_name": display_name,
            "description": description,
        }
        return self._done(commands.register_command(self._store, team_id=team_id, creator_id=creator_id, fields=fields))

    def update_command(self, command_id: str, **fields: Any) -> Record:
        """Change a command's ``url``, ``trigger``, autocomplete fields, ... (its token stays)."""
        return self._done(commands.update_command(self._store, command_id, fields))

    def register_oauth_app(self, name: str, *, callback_urls: list[str], creator_id: str) -> Record:
        """An OAuth 2.0 app (Integrations > OAuth 2.0 Applications): its ``id`` is the client id,
        ``client_secret`` the secret."""
        return self._done(
            oauth.register_app(self._store, name=name, callback_urls=callback_urls, creator_id=creator_id)
        )

    def set_role_permissions(self, role_name: str, permissions: list[str]) -> None:
        """Replace what a role grants, e.g. drop ``create_private_channel`` from ``team_user``."""
        role = self._store.state.roles.get(role_name)
        if role is None:
            raise KeyError(f"no role named {role_name!r}")
        role["permissions"] = sorted(set(permissions))
        role["update_at"] = self._store.now_ms()
        self._changed()

    def seed_demo(self, *, command_url: str, oauth_callback_url: str | None = None) -> Record:
        """The demo world (see ``mattermost_standin.seed``); idempotent."""
        world = seed.seed_demo(self._store, command_url, oauth_callback_url)
        self._changed()
        return world

    # ---- inspection ----------------------------------------------------------------------

    def posts(self, channel_id: str) -> list[Record]:
        """The channel's posts, oldest first, with props as stored (integration context included)."""
        return inspection.channel_posts(self._store.state, channel_id)

    def ephemeral_posts(self, user_id: str | None = None, channel_id: str | None = None) -> list[Record]:
        """Ephemeral posts as ``{"user_id": recipient, "post": {...}}``, oldest first."""
        return inspection.ephemeral_posts(self._store.state, user_id, channel_id)

    def channel_members(self, channel_id: str) -> list[str]:
        return list(self._store.state.channel_members.get(channel_id, {}))

    def get_channel(self, channel_id: str) -> Record | None:
        channel = self._store.state.channels.get(channel_id)
        return None if channel is None else copy.deepcopy(channel)

    def find_channel(self, team_id: str, name: str) -> Record | None:
        channel = channels.find_channel_by_name(self._store.state, team_id, name)
        return None if channel is None else copy.deepcopy(channel)

    def direct_channel(self, user_id: str, other_user_id: str) -> Record | None:
        """The two users' direct message channel (in either order), if one was opened."""
        channel = channels.find_direct_channel(self._store.state, user_id, other_user_id)
        return None if channel is None else copy.deepcopy(channel)

    def channels(self, team_id: str) -> list[Record]:
        return copy.deepcopy([c for c in self._store.state.channels.values() if c["team_id"] == team_id])

    def oauth_sessions(self, user_id: str) -> list[Record]:
        """The user's OAuth access tokens that still authenticate (signed-in apps)."""
        return copy.deepcopy([s for s in self._store.state.oauth_sessions.values() if s["user_id"] == user_id])

    def dialogs(self, user_id: str | None = None) -> list[Record]:
        """Opened dialogs, oldest first: ``{trigger_id, url, dialog, user_id, channel_id, team_id,
        opened_at, submitted}``."""
        return inspection.dialogs(self._store.state, user_id)

    @property
    def requests(self) -> list[Record]:
        """Every Mattermost request handled, oldest first: ``{method, path, status, user_id}``
        (``user_id``: whom the request's token authenticated, None for none or an invalid one)."""
        return copy.deepcopy(self._store.state.requests)

    # ---- faults --------------------------------------------------------------------------

    def add_fault(self, method: str, path: str, **options: Unpack[FaultOptions]) -> None:
        """Make matching requests fail or slow down (see ``mattermost_standin.faults``)."""
        self._faults.add(Fault(method, path, **options))

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def in_flight(self) -> int:
        """Mattermost requests received and not answered yet (a delayed one may land later)."""
        return self.app.in_flight

    @property
    def faults_taken(self) -> list[dict[str, str]]:
        """Requests a fault hit, as they arrived (before a delay): ``{method, path}``, oldest first."""
        return list(self._faults.taken)


def _describe(predicate: Callable[[], bool]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)
