"""REST routes under /api/v1: parse, call the service, render."""
