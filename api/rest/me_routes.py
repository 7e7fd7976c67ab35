"""`/api/v1/me`: what concerns the caller across incidents."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.dependencies import current_user, page_params, services
from api.http_errors import error_responses
from models.common import Actor
from models.incident_views import OpenItem, todo_order
from service import open_items
from service.container import Services
from service.pagination import Page, PageParams, paginate

router = APIRouter(prefix="/api/v1/me", tags=["incidents"], responses=error_responses(401, 503))


@router.get("/todo", response_model=Page[OpenItem], responses=error_responses(422))
async def my_open_items(
    paging: PageParams = Depends(page_params),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Page[OpenItem]:
    """The open items assigned to you in every ongoing incident you can see, as `/incident todo`
    lists them: overdue first, then those with a due time (soonest first), then the rest.
    Positions are 0-based; `direction=desc` reverses the order."""
    found = await open_items.open_items(svc, actor)
    return paginate(found.items, todo_order, paging)
