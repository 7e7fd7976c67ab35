"""`/incident playbooks`."""

from __future__ import annotations

from api.slash.slash_protocol import SlashReply, ephemeral
from api.slash.slash_registry import Context, Registry
from service import playbooks
from service.pagination import MAX_PER_PAGE, PageParams


def register(registry: Registry) -> None:
    @registry.command("playbooks", usage="playbooks", summary="List the playbooks you can start incidents from")
    async def list_playbooks(ctx: Context) -> SlashReply:
        page = await playbooks.list_playbooks(
            ctx.svc,
            ctx.actor,
            ctx.request.team_id,
            sort="title",
            params=PageParams(page=0, per_page=MAX_PER_PAGE, direction="asc"),
        )
        if not page.items:
            return ephemeral(
                "You are not a member of any playbook in this team. Create one with the API "
                "(POST /api/v1/playbooks) or ask a playbook member to add you."
            )
        lines = ["#### Playbooks you can use", "", "| Playbook | Stages | Steps | Id |", "|---|---|---|---|"]
        lines += [f"| {p.title} | {p.stage_count} | {p.step_count} | `{p.id}` |" for p in page.items]
        if page.has_more:
            lines.append(f"\n…and {page.total_count - len(page.items)} more.")
        lines.append('\nStart one with `/incident start "<playbook>" <incident name>`.')
        return ephemeral("\n".join(lines))
