"""MattermostFacts about people and channels, read from Mattermost for the access rules.

The rules themselves live in `permissions`; this module only answers questions such as
"is this user in that team?" Team membership, roles and token identities are cached
for `AUTH_CACHE_SECONDS`, so a revoked token or a removed member stops working within
that time. Channel membership is cached for the same time when it is a "member" (a "not a
member" is read again each time), with the moment it was read, so the incident can tell an
earlier "not a member" from its own later invitation (see `permissions.is_incident_member`);
this process forgets it at once for people a command invites.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import permissions
from mattermost_client.gateway import ChannelMembership, Mattermost, MattermostFailure
from models.common import Actor, ChannelFact, UserFact
from models.due_dates import mattermost_time_zone
from service.errors import ServiceError, unauthorized
from service.ttl_cache import TTLCache


class MattermostFacts:
    def __init__(self, mattermost: Mattermost, *, ttl: float) -> None:
        self.mattermost = mattermost
        self._tokens: TTLCache[str, dict[str, Any]] = TTLCache(ttl)
        self._users: TTLCache[str, dict[str, Any]] = TTLCache(ttl)
        self._team_members: TTLCache[tuple[str, str], dict[str, Any] | bool] = TTLCache(ttl)
        self._role_permissions: TTLCache[tuple[str, ...], set[str]] = TTLCache(ttl)
        self._channel_members: TTLCache[tuple[str, str], tuple[ChannelMembership, datetime]] = TTLCache(ttl)
        self._teams: TTLCache[str, dict[str, Any]] = TTLCache(ttl)
        self._channels: TTLCache[str, dict[str, Any]] = TTLCache(ttl)

    # ------------------------------------------------------------------ who is calling

    async def caller_for_token(self, token: str) -> Actor:
        key = hashlib.sha256(token.encode()).hexdigest()
        user = self._tokens.get(key)
        if user is None:
            try:
                user = await self.mattermost.user_for_token(token)
            except MattermostFailure as failure:
                if failure.status in (401, 403):
                    raise unauthorized(
                        "Mattermost does not accept this token. Use a valid personal access token: "
                        "Authorization: Bearer <token>."
                    ) from None
                raise
            self._tokens.put(key, user)
            self._users.put(user["id"], user)
        return _actor(user)

    def forget_token(self, token: str) -> None:
        """A token that was just ended (sign-out) must not be trusted from the cache."""
        self._tokens.discard(hashlib.sha256(token.encode()).hexdigest())

    async def caller_for_user_id(self, user_id: str) -> Actor:
        """The caller of a slash command or dialog: Mattermost vouches for the user id."""
        user = await self.user_by_id(user_id)
        if user is None:
            raise ServiceError(400, "bad_request", f"Mattermost knows no user {user_id}.")
        return _actor(user)

    async def user(self, user_id: str) -> dict[str, Any]:
        return await self._users.get_or_load(user_id, lambda: self.mattermost.get_user(user_id))

    # ------------------------------------------------------------------ teams

    async def _team_member(self, team_id: str, user_id: str) -> dict[str, Any] | None:
        async def load() -> dict[str, Any] | bool:
            member = await self.mattermost.team_member(team_id, user_id)
            return member if member is not None else False

        member = await self._team_members.get_or_load((team_id, user_id), load)
        return member if isinstance(member, dict) else None

    async def is_team_member(self, team_id: str, user_id: str) -> bool:
        return await self._team_member(team_id, user_id) is not None

    async def team_permissions(self, team_id: str, actor: Actor) -> set[str]:
        """The user's effective permissions in the team (team roles plus system roles)."""
        member = await self._team_member(team_id, actor.user_id)
        if member is None:
            return set()
        user = await self.user(actor.user_id)
        return await self._granted([*str(member.get("roles", "")).split(), *str(user.get("roles", "")).split()])

    async def channel_permissions(self, team_id: str, actor: Actor, channel_roles: Iterable[str]) -> set[str]:
        """The user's effective permissions in a channel of the team: their system roles, team
        roles (when in the team) and channel roles, as Mattermost resolves them."""
        member, user = await asyncio.gather(self._team_member(team_id, actor.user_id), self.user(actor.user_id))
        team_roles = str(member.get("roles", "")).split() if member is not None else []
        return await self._granted([*str(user.get("roles", "")).split(), *team_roles, *channel_roles])

    async def _granted(self, role_names: Iterable[str]) -> set[str]:
        roles = tuple(sorted(set(role_names)))
        return await self._role_permissions.get_or_load(roles, lambda: self.mattermost.role_permissions(roles))

    async def team(self, team_id: str) -> dict[str, Any]:
        return await self._teams.get_or_load(team_id, lambda: self.mattermost.get_team(team_id))

    # ------------------------------------------------------------------ channels

    async def channel_membership(
        self, channel_id: str | None, user_id: str
    ) -> tuple[ChannelMembership, datetime | None]:
        """Whether the user is in the channel (None: Mattermost cannot tell) with their roles
        there, and when that was read."""
        if not channel_id:
            return ChannelMembership(is_member=None), None

        async def load() -> tuple[ChannelMembership, datetime]:
            # Stamped when asked, not when answered: Mattermost's answer is from some moment in
            # between, and a "no" read while the incident was adding the person must stay older
            # than the join the incident records (`permissions.is_incident_member`), however long
            # the answer took to come back on a loaded API process.
            asked = datetime.now(UTC)
            return await self.mattermost.channel_membership(channel_id, user_id), asked

        # Only a "member" is kept: a "not a member" may change any moment (the bot is adding
        # the incident's people to its new channel), and a stale one would take away what a
        # member may do there (their channel mentions) until it expired.
        return await self._channel_members.get_or_load((channel_id, user_id), load, keep=lambda m: bool(m[0].is_member))

    async def recheck_channel_membership(self, channel_id: str | None, user_id: str) -> bool | None:
        """Mattermost's answer now, bypassing (and refreshing) the cache."""
        self.forget_channel_members(channel_id, [user_id])
        return (await self.channel_membership(channel_id, user_id))[0].is_member

    def forget_channel_members(self, channel_id: str | None, user_ids: list[str]) -> None:
        for user_id in user_ids:
            self._channel_members.discard((str(channel_id), user_id))

    async def for_incident(self, actor: Actor, *, team_id: str, channel_id: str | None) -> Actor:
        """The actor with the facts an incident's rules need: team and channel membership, and
        which of their mentions the bot may keep in the incident channel."""
        in_team, (membership, observed_at) = await asyncio.gather(
            self.is_team_member(team_id, actor.user_id), self.channel_membership(channel_id, actor.user_id)
        )
        granted = await self.channel_permissions(team_id, actor, membership.roles)
        return actor.model_copy(
            update={
                "is_team_member": in_team,
                "is_channel_member": membership.is_member,
                "observed_at": observed_at,
                "can_mention_channel": permissions.USE_CHANNEL_MENTIONS in granted,
                "can_mention_groups": permissions.USE_GROUP_MENTIONS in granted,
            }
        )

    async def user_fact(self, user: dict[str, Any], *, team_id: str, channel_id: str | None) -> UserFact:
        in_team, (membership, _) = await asyncio.gather(
            self.is_team_member(team_id, user["id"]), self.channel_membership(channel_id, user["id"])
        )
        return UserFact(
            user_id=user["id"],
            username=user["username"],
            is_team_member=in_team,
            is_channel_member=bool(membership.is_member),
            is_bot=bool(user.get("is_bot")),
        )

    async def user_by_username(self, username: str) -> dict[str, Any] | None:
        try:
            return await self.mattermost.get_user_by_username(username.lstrip("@").lower())
        except MattermostFailure as failure:
            if failure.not_found or failure.status == 400:
                return None
            raise

    async def user_by_id(self, user_id: str) -> dict[str, Any] | None:
        try:
            return await self.user(user_id)
        except MattermostFailure as failure:
            if failure.not_found or failure.status == 400:
                return None
            raise

    async def channel_fact(self, actor: Actor, channel: dict[str, Any]) -> ChannelFact:
        """A channel and whether the actor may post there (to announce or broadcast)."""
        is_member = await self.mattermost.is_channel_member(channel["id"], actor.user_id)
        team_id = str(channel.get("team_id", ""))
        return ChannelFact(
            channel_id=channel["id"],
            name=channel["name"],
            display_name=channel.get("display_name", ""),
            team_id=team_id,
            actor_can_post=permissions.can_post_to_channel(
                actor,
                is_channel_member=is_member,
                is_public=channel.get("type") == "O",
                is_team_member=bool(team_id) and await self.is_team_member(team_id, actor.user_id),
            ),
        )

    async def channel(self, channel_id: str) -> dict[str, Any]:
        """The channel as the bot sees it (its name, type, team and when it was made)."""
        return await self._channels.get_or_load(channel_id, lambda: self.mattermost.get_channel(channel_id))

    async def post(self, post_id: str) -> dict[str, Any] | None:
        """A post the bot can read, or None (never cached: it is checked once per click)."""
        try:
            return await self.mattermost.get_post(post_id)
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            return None

    async def visible_channel(self, actor: Actor, channel_id: str) -> dict[str, Any] | None:
        """The channel when it exists and the actor could see it in Mattermost, else None."""
        try:
            channel = await self.mattermost.get_channel(channel_id)
        except MattermostFailure as failure:
            if failure.not_found or failure.status in (400, 403):
                return None
            raise
        if channel.get("type") == "O" and await self.is_team_member(channel.get("team_id", ""), actor.user_id):
            return channel
        if actor.is_system_admin or await self.mattermost.is_channel_member(channel_id, actor.user_id):
            return channel
        return None


def _actor(user: dict[str, Any]) -> Actor:
    return Actor(
        user_id=user["id"],
        username=user.get("username", ""),
        is_system_admin=permissions.is_system_admin(str(user.get("roles", ""))),
        time_zone=mattermost_time_zone(user),
    )
