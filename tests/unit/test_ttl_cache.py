"""The facts cache: expiry, eviction, and values not worth keeping."""

from __future__ import annotations

from service.ttl_cache import TTLCache


async def test_a_loaded_value_is_kept_until_it_expires() -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=60)
    loads: list[str] = []

    async def load() -> int:
        loads.append("x")
        return len(loads)

    assert await cache.get_or_load("k", load) == 1
    assert await cache.get_or_load("k", load) == 1
    expired: TTLCache[str, int] = TTLCache(ttl=-1)
    assert await expired.get_or_load("k", load) == 2
    assert await expired.get_or_load("k", load) == 3


async def test_a_value_not_worth_keeping_is_loaded_again_each_time() -> None:
    """A "not a member" is read again each time: the bot may be adding that person right now."""
    cache: TTLCache[str, bool] = TTLCache(ttl=60)
    answers = iter([False, True, False])

    async def membership() -> bool:
        return next(answers)

    assert await cache.get_or_load("alice", membership, keep=bool) is False
    assert await cache.get_or_load("alice", membership, keep=bool) is True
    assert await cache.get_or_load("alice", membership, keep=bool) is True  # kept


def test_the_least_recently_used_goes_first_when_full() -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=60, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
