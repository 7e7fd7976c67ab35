"""What a person picks from on an incident's controls: the team's people, and their channels.

Reads only: what is chosen is sent as a command and checked by the incident's rules like
any other (an invitation to someone outside the team, an announcement in a channel the
person cannot post to, is refused there). The team's people are kept a short while per
team, as the suggestions they are; a person's channels are read as they are now.
"""

from __future__ import annotations

from typing import Any

from service.container import Services
from service.ttl_cache import TTLCache

# Mattermost's largest page: the suggestions are the team's first 200 people by username;
# anyone else is typed (@username) and resolved when the command is sent.
PEOPLE_LISTED = 200
# Channel types people announce in: public and private (not direct or group messages).
ANNOUNCEABLE = frozenset({"O", "P"})

_team_people: TTLCache[str, list[dict[str, str]]] = TTLCache(ttl=30, max_entries=1_000)


async def team_people(svc: Services, team_id: str) -> list[dict[str, str]]:
    """The team's active people (no bots), by username: `{"id", "username"}`."""

    async def load() -> list[dict[str, str]]:
        found = await svc.mattermost.users_in_team(team_id, per_page=PEOPLE_LISTED)
        return [
            {"id": str(u["id"]), "username": str(u["username"])}
            for u in found
            if not u.get("is_bot") and not u.get("delete_at")
        ]

    return await _team_people.get_or_load(team_id, load)


async def channels_to_announce_in(svc: Services, token: str, team_id: str) -> list[dict[str, Any]]:
    """The team's public and private channels the person is in, by display name."""
    found = await svc.mattermost.channels_for_token(token, team_id)
    channels = [c for c in found if c.get("type") in ANNOUNCEABLE and not c.get("delete_at")]
    return sorted(channels, key=lambda c: str(c.get("display_name") or c.get("name", "")).casefold())
