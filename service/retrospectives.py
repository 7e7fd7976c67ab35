"""An incident's retrospective as people read it (REST, the backstage), and its markdown as HTML.

Reading goes through `incidents.load` like every read: whoever may not see the incident is
told it does not exist. Saving, publishing and declining are commands of the command table
(`save_retrospective`, ...), decided by the incident's rules.

The backstage's preview renders the markdown with markdown-it-py (CommonMark, the reference
Python port, maintained; tables on) with raw HTML off: whatever people type is shown as text,
never as markup, and links with unsafe schemes (`javascript:`) are not made.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

import permissions
from models.common import Actor
from models.incident import IncidentState
from models.retrospective import NO_RETROSPECTIVE, RetrospectiveStatus, RetrospectiveVersion, RetrospectiveView
from service import incident_access as incidents
from service.container import Services
from service.errors import ServiceError

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def to_html(text: str) -> str:
    """The retrospective's markdown as HTML, people's HTML shown as text."""
    return str(_markdown.render(text))


def view_of(state: IncidentState, actor: Actor) -> RetrospectiveView:
    retrospective = state.retrospective
    if retrospective is None:
        raise ServiceError(404, "not_found", NO_RETROSPECTIVE)
    member = permissions.is_member_of(actor, state)
    draft = retrospective.status == RetrospectiveStatus.DRAFT

    def name(user_id: str | None) -> str | None:
        return None if user_id is None else state.usernames.get(user_id, user_id)

    return RetrospectiveView(
        incident_id=state.id,
        incident_name=state.name,
        status=retrospective.status,
        text=retrospective.text,
        version=retrospective.version,
        opened_at=retrospective.opened_at,
        due_at=retrospective.due_at,
        next_reminder_at=retrospective.next_reminder_at,
        reminders_sent=retrospective.reminders_sent,
        history=[
            RetrospectiveVersion(version=h.version, author=name(h.author_id) or "", at=h.at, text=h.text)
            for h in retrospective.history
        ],
        concluded_at=retrospective.concluded_at,
        concluded_by=name(retrospective.concluded_by),
        reason=retrospective.reason,
        may_edit=draft and permissions.can_change_incident(actor, is_member=member),
        may_conclude=draft
        and permissions.can_conclude_retrospective(
            actor,
            is_member=member,
            commander_id=state.commander_id,
            playbook_member_ids=state.playbook.member_ids if state.playbook else [],
        ),
    )


async def retrospective(svc: Services, actor: Actor, incident_id: str) -> RetrospectiveView:
    """The retrospective of an incident the actor may see (404 otherwise, and when it has none)."""
    access = await incidents.load(svc, actor, incident_id)
    return view_of(access.state, access.actor)
