"""Workflows: deterministic orchestration. No I/O here; activities do it."""
