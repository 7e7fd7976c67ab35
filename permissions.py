"""Every access rule, in one place, as pure functions over data.

The REST API, the slash commands and the workflow validators all call these; none of
them re-implements a rule. Callers gather the facts (team membership, channel
membership, roles) from Mattermost; nothing here does I/O, so workflows can import it.

Rules:
- A system admin may do everything.
- Only members of a team see anything of that team.
- Only a playbook's members see, use (start incidents from), edit, export or delete it.
- An incident in a public channel is visible to its team; one in a private channel only
  to the members of that channel.
- Only members of the incident's channel change the incident or invite others.
- An incident's retrospective is edited by the members of its channel, and published or
  declined by its commander or a member of its playbook (in the channel).
- What a person types is posted by the bot with `@channel`, `@here`, `@all` and group
  mentions neutralised, except in the incident channel for someone Mattermost lets use
  them there (`USE_CHANNEL_MENTIONS`, `USE_GROUP_MENTIONS`; see `incident_messages.relayed`).
- Whatever a caller may not see is reported as not found, exactly as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from models.common import Actor
from models.incident import IncidentState, IncidentStatus

SYSTEM_ADMIN_ROLE = "system_admin"
# Mattermost's permissions to notify a whole channel, and a group, with a mention.
USE_CHANNEL_MENTIONS = "use_channel_mentions"
USE_GROUP_MENTIONS = "use_group_mentions"
# Mattermost's permission of team admins: they manage the team's integrations, webhooks,
# on-call schedules and settings (its severity levels).
MANAGE_TEAM = "manage_team"


def is_system_admin(roles: str) -> bool:
    """Mattermost lists roles as a space-separated string, e.g. "system_admin system_user"."""
    return SYSTEM_ADMIN_ROLE in roles.split()


def can_see_team(actor: Actor, *, is_team_member: bool) -> bool:
    return actor.is_system_admin or is_team_member


def can_manage_team(actor: Actor, *, is_team_member: bool, team_permissions: Collection[str]) -> bool:
    """Change what a team's admins decide: its integrations, webhooks, schedules and settings."""
    return actor.is_system_admin or (is_team_member and MANAGE_TEAM in team_permissions)


def can_use_playbook(actor: Actor, *, is_team_member: bool, member_ids: Collection[str]) -> bool:
    """See, start incidents from, edit, export, archive."""
    return actor.is_system_admin or (is_team_member and actor.user_id in member_ids)


def is_incident_member(actor: Actor, *, member_ids: Collection[str], joined_at: Mapping[str, datetime]) -> bool:
    """Whether the actor is in the incident's channel, from Mattermost's word and the incident's own.

    Mattermost's answer (`actor.is_channel_member`, cached for AUTH_CACHE_SECONDS) wins, so
    someone removed from the channel outside this tool loses access within that time, with
    three exceptions where the incident knows better: it is still bringing the person in
    (a member without a join time: the reporter and commander right after the start), it
    brought them in after that answer was read (a stale cached "no"), or Mattermost could
    not say (None: the bot lost access to the channel, or the channel is still being
    created), when the incident's member list decides.
    """
    if actor.is_channel_member is None:
        return actor.user_id in member_ids
    if actor.is_channel_member:
        return True
    if actor.user_id not in member_ids:
        return False
    joined = joined_at.get(actor.user_id)
    return joined is None or (actor.observed_at is not None and joined > actor.observed_at)


def can_see_incident(actor: Actor, *, is_member: bool, is_public: bool) -> bool:
    """`is_member` comes from `is_incident_member`; `actor.is_team_member` is for the incident's team."""
    if actor.is_system_admin or is_member:
        return True
    return is_public and actor.is_team_member


def is_member_of(actor: Actor, incident: IncidentState) -> bool:
    return is_incident_member(actor, member_ids=incident.member_ids, joined_at=incident.members_joined_at)


def may_see_incident(actor: Actor, incident: IncidentState, *, typed_in: str | None = None) -> bool:
    """Whether the incident exists for the actor: it was opened (not refused, its channel not
    failed), a command typed in a channel was typed in the incident's own, and the actor may
    see it (`can_see_incident`). The workflow's commands and the service's reads both ask
    this; lists ask it of visibility with `incident_query_filter`."""
    if incident.status in (IncidentStatus.FAILED, IncidentStatus.REFUSED):
        return False
    if typed_in is not None and typed_in != incident.channel_id:
        return False
    return can_see_incident(actor, is_member=is_member_of(actor, incident), is_public=incident.is_public)


def can_change_incident(actor: Actor, *, is_member: bool) -> bool:
    """Change state, edit the checklist, invite others: channel members only."""
    return actor.is_system_admin or is_member


def can_conclude_retrospective(
    actor: Actor, *, is_member: bool, commander_id: str, playbook_member_ids: Collection[str]
) -> bool:
    """Publish or decline an incident's retrospective: its commander, or a member of its playbook
    (who own how such incidents are run and learned from), in the incident's channel."""
    if actor.is_system_admin:
        return True
    return is_member and (actor.user_id == commander_id or actor.user_id in playbook_member_ids)


def can_create_channel(actor: Actor, *, public: bool, permissions: Collection[str]) -> bool:
    """Whether the starter may create the incident's channel type in the team.

    `permissions` are the starter's effective Mattermost permissions in the team.
    """
    if actor.is_system_admin:
        return True
    return ("create_public_channel" if public else "create_private_channel") in permissions


def can_post_to_channel(actor: Actor, *, is_channel_member: bool, is_public: bool, is_team_member: bool) -> bool:
    """Announce or broadcast: members of the channel, or team members for a public one."""
    return actor.is_system_admin or is_channel_member or (is_public and is_team_member)


def incident_query_filter(actor: Actor) -> str:
    """The visibility clause limiting incident lists to what `can_see_incident` allows.

    Lists read the incident's recorded member list (a search attribute), so someone
    removed from a private channel outside this tool may still see it listed until the
    incident records a change; opening it checks live membership.
    """
    if actor.is_system_admin:
        return ""
    return f"(IncidentPublic = true OR IncidentMemberIds = '{actor.user_id}')"


def may_answer_page(actor: Actor, paged_user_ids: Collection[str]) -> bool:
    """Acknowledge or decline a page: only the person paged, whether or not they may see the
    incident yet (a page usually reaches someone outside its channel; acknowledging brings them in)."""
    return actor.user_id in paged_user_ids
