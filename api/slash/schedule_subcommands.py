"""`/incident oncall [schedule]`: who is on call now, and the next handoff."""

from __future__ import annotations

from datetime import UTC, datetime

from api.slash.slash_protocol import SlashReply, ephemeral
from api.slash.slash_registry import Context, Registry
from models.schedules import Handoff, Schedule, local_label, next_handoffs, oncall_at
from service import oncall_schedules as schedules

NO_SCHEDULES = (
    "This team has no on-call schedules yet. A team admin creates one in the backstage (Schedules) "
    "or with the API (POST /api/v1/schedules)."
)


def _people(ids: list[str], names: dict[str, str]) -> str:
    return ", ".join(f"@{names[i]}" if i in names else i for i in ids) or "nobody"


def _handoff(schedule: Schedule, handoff: Handoff | None, names: dict[str, str]) -> str:
    if handoff is None:
        return "no handoff ahead"
    return (
        f"{local_label(handoff.at, schedule.time_zone)}: {_people(handoff.incoming, names)} takes over "
        f"from {_people(handoff.outgoing, names)}"
    )


def register(registry: Registry) -> None:
    @registry.command(
        "oncall",
        usage="oncall [<schedule>]",
        summary="Who is on call now in a schedule, and the next handoff; without a name, every schedule of the team",
        example="oncall payments-primary",
    )
    async def oncall(ctx: Context) -> SlashReply:
        now = datetime.now(UTC)
        name = ctx.leading(0)[1]
        if name:
            found = await schedules.find_by_name(ctx.svc, ctx.actor, ctx.request.team_id, name)
            if found is None:
                listed = await schedules.list_schedules(ctx.svc, ctx.actor, ctx.request.team_id)
                known = ", ".join(f"`{s.name}`" for s in listed)
                return ephemeral(
                    f"This team has no schedule named '{name}'. "
                    + (f"Its schedules: {known}." if known else NO_SCHEDULES)
                )
            chosen = [found]
        else:
            chosen = await schedules.list_schedules(ctx.svc, ctx.actor, ctx.request.team_id)
            if not chosen:
                return ephemeral(NO_SCHEDULES)
        rows = []
        for schedule in chosen:
            people = oncall_at(schedule, now)
            upcoming = next_handoffs(schedule, now, 1)
            following = upcoming[0] if upcoming else None
            ids = people + (following.incoming + following.outgoing if following else [])
            names = await schedules.usernames(ctx.svc, ids)
            rows.append((schedule, _people(people, names), _handoff(schedule, following, names)))
        if name:
            schedule, people_now, following_text = rows[0]
            return ephemeral(
                f"On call now in **{schedule.name}**: {people_now}.\n"
                f"Next handoff ({schedule.time_zone}): {following_text}."
            )
        lines = ["#### On call now", "", "| Schedule | On call | Next handoff |", "|---|---|---|"]
        lines += [f"| {s.name} | {people_now} | {following_text} |" for s, people_now, following_text in rows]
        return ephemeral("\n".join(lines))
