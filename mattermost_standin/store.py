"""The stand-in's whole world as plain JSON records, and how it survives restarts.

Records are the JSON objects Mattermost itself returns (plus a few private fields,
such as a post's integration context), kept in dicts keyed by id. Keeping them as
plain JSON makes persistence a ``json.dump`` and lets inspection helpers hand out
exactly what the API would answer.

Only what the real server keeps in its database is persisted. Ephemeral posts and
opened dialogs live only in websocket events on the real server, so they stay in
memory here too, as does the request log.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mattermost_standin import permissions

Record = dict[str, Any]

# Mattermost's NewId: 128 random bits written in this base32 alphabet, 26 characters.
_ID_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"


def new_id() -> str:
    """A 26-character lowercase alphanumeric id, like every Mattermost id and token."""
    value = int.from_bytes(secrets.token_bytes(16), "big")
    chars = []
    for _ in range(26):
        chars.append(_ID_ALPHABET[value & 31])
        value >>= 5
    return "".join(chars)


def new_record(now_ms: int) -> Record:
    """The fields a new user, team or channel starts with, in Mattermost's order: a fresh id,
    created and updated at ``now_ms``, not deleted."""
    return {"id": new_id(), "create_at": now_ms, "update_at": now_ms, "delete_at": 0}


_PERSISTED = (
    "users",
    "tokens",
    "teams",
    "team_members",
    "channels",
    "channel_members",
    "posts",
    "bots",
    "commands",
    "roles",
    "command_webhooks",
    "oauth_apps",
    "oauth_sessions",
)


@dataclass
class State:
    """Every table of the world. ``team_members`` and ``channel_members`` are keyed
    by team/channel id, then by user id."""

    users: dict[str, Record] = field(default_factory=dict)
    tokens: dict[str, Record] = field(default_factory=dict)
    teams: dict[str, Record] = field(default_factory=dict)
    team_members: dict[str, dict[str, Record]] = field(default_factory=dict)
    channels: dict[str, Record] = field(default_factory=dict)
    channel_members: dict[str, dict[str, Record]] = field(default_factory=dict)
    posts: dict[str, Record] = field(default_factory=dict)
    bots: dict[str, Record] = field(default_factory=dict)
    commands: dict[str, Record] = field(default_factory=dict)
    roles: dict[str, Record] = field(default_factory=dict)
    command_webhooks: dict[str, Record] = field(default_factory=dict)
    # OAuth 2.0 apps and the access tokens they were given (sessions on the real server).
    oauth_apps: dict[str, Record] = field(default_factory=dict)
    oauth_sessions: dict[str, Record] = field(default_factory=dict)
    # Signs trigger ids; persisted so trigger ids survive a restart like on the real server.
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    # In memory only (websocket-only on the real server, or stand-in bookkeeping).
    ephemeral_posts: list[Record] = field(default_factory=list)
    dialogs: list[Record] = field(default_factory=list)
    requests: list[Record] = field(default_factory=list)
    trigger_contexts: dict[str, Record] = field(default_factory=dict)
    # Authorization codes live ten minutes and are used once: not worth persisting.
    oauth_codes: dict[str, Record] = field(default_factory=dict)

    def to_json(self) -> Record:
        data: Record = {"version": 1, "secret": self.secret}
        for name in _PERSISTED:
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_json(cls, data: Record) -> State:
        known = {f.name for f in fields(cls)}
        values = {name: data[name] for name in (*_PERSISTED, "secret") if name in data and name in known}
        return cls(**values)


class Store:
    """Owns the state, the clock that timestamps it, and the data file behind it."""

    def __init__(self, clock: Callable[[], float], data_file: Path | None) -> None:
        self.clock = clock
        self.data_file = data_file
        self.state = self._load()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _load(self) -> State:
        if self.data_file is not None and self.data_file.exists():
            state = State.from_json(json.loads(self.data_file.read_text(encoding="utf-8")))
        else:
            state = State()
        # Roles a data file predates are added; roles it carries keep their edits.
        for name, role in permissions.default_roles(self.now_ms(), new_id).items():
            state.roles.setdefault(name, role)
        return state

    def save(self) -> None:
        """Write the data file atomically: a reader never sees half a file."""
        if self.data_file is None:
            return
        self.data_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.data_file.name, suffix=".tmp", dir=self.data_file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.state.to_json(), handle, ensure_ascii=False)
            os.replace(tmp, self.data_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
