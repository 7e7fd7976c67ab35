"""What the stand-in did, for tests (``StandIn`` methods) and developers (``/_standin/``).

Unlike API views these are complete: stored posts keep their actions' integration
context, so a test can check what a button will send.
"""

from __future__ import annotations

import copy

from mattermost_standin.domain import posts
from mattermost_standin.faults import Faults
from mattermost_standin.store import Record, State


def channel_posts(state: State, channel_id: str) -> list[Record]:
    """A channel's posts, oldest first, with their props as stored."""
    return copy.deepcopy(posts.channel_posts(state, channel_id))


def ephemeral_posts(state: State, user_id: str | None = None, channel_id: str | None = None) -> list[Record]:
    """Ephemeral posts as ``{"user_id": recipient, "post": post}``, oldest first."""
    return copy.deepcopy(
        [
            e
            for e in state.ephemeral_posts
            if (user_id is None or e["user_id"] == user_id)
            and (channel_id is None or e["post"]["channel_id"] == channel_id)
        ]
    )


def dialogs(state: State, user_id: str | None = None) -> list[Record]:
    """Dialogs opened for users, oldest first, with whether they were submitted."""
    return copy.deepcopy([d for d in state.dialogs if user_id is None or d["user_id"] == user_id])


def _channel_home(state: State, channel: Record) -> str:
    """The team's name; ``direct`` for a direct message channel (of no team; no team can hold a
    channel named like one, ``<user id>__<user id>``)."""
    return "direct" if channel["type"] == "D" else str(state.teams[channel["team_id"]]["name"])


def summary(state: State, faults: Faults) -> Record:
    return {
        "users": {u["username"]: u["id"] for u in state.users.values()},
        "teams": {t["name"]: t["id"] for t in state.teams.values()},
        "channels": {f"{_channel_home(state, c)}/{c['name']}": c["id"] for c in state.channels.values()},
        "commands": {f"/{c['trigger']}": c["url"] for c in state.commands.values()},
        "posts": len(state.posts),
        "ephemeral_posts": len(state.ephemeral_posts),
        "dialogs": len(state.dialogs),
        "requests": len(state.requests),
        "faults": faults.listed(),
    }
