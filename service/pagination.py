"""One paging shape for every list: `{items, total_count, page, per_page, has_more}`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
MAX_PER_PAGE = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    total_count: int
    page: int
    per_page: int
    has_more: bool


class PageParams(BaseModel):
    page: int
    per_page: int
    direction: Literal["asc", "desc"] | None


def paginate(
    items: Sequence[T],
    key: Callable[[T], Any],
    params: PageParams,
    *,
    default: Literal["asc", "desc"] = "asc",
) -> Page[T]:
    """Sort (stable, by `key`), then cut out the requested page."""
    ordered = sorted(items, key=key, reverse=(params.direction or default) == "desc")
    start = params.page * params.per_page
    chunk = ordered[start : start + params.per_page]
    return Page[T](
        items=list(chunk),
        total_count=len(ordered),
        page=params.page,
        per_page=params.per_page,
        has_more=start + len(chunk) < len(ordered),
    )
