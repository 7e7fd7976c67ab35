"""Pydantic models shared by the API, the workflows and the activities.

Everything that crosses a process boundary (HTTP bodies, workflow and activity
inputs, query results) is defined here once, so both sides agree on the shape.
Nothing in this package does I/O: workflows import it inside their sandbox.
"""
