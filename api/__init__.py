"""The HTTP API: parse, authorize, call Temporal, render. No business rules live here."""
