"""*My open items*: the open items assigned to the signed-in person in every ongoing incident they
can see, as `/incident todo` and `GET /api/v1/me/todo` list them (`service.open_items`)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Response

from api.backstage.backstage_common import Visitor, render, visitor
from service import open_items

router = APIRouter(prefix="/backstage", include_in_schema=False)


@router.get("/todo")
async def my_open_items(who: Visitor = Depends(visitor)) -> Response:
    found = await open_items.open_items(who.svc, who.actor)
    return await render(
        who,
        "todo.html",
        section="todo",
        items=found.items,
        incomplete=found.incomplete,
        now=datetime.now(UTC),
        mattermost_url=who.svc.settings.mattermost_browser_url,
    )
