"""The REST API v4 endpoints the project uses, one module per resource, plus the
stand-in's own ``/_standin/`` controls (``routes.control``), kept apart from them."""
