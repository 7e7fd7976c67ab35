"""How the benchmarks summarise what they timed."""

from __future__ import annotations

import statistics


def summary(samples: list[float]) -> dict[str, float]:
    """Count, median, 95th percentile (nearest rank) and maximum, in milliseconds."""
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }
