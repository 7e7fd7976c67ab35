"""Injected faults: the failures a real deployment produces, on demand and per endpoint.

A fault matches a method and a path template (``{param}`` matches any segment) and
may delay the request, answer an error instead of handling it, or both. A 429
answers like Mattermost's rate limiter (plain text ``limit exceeded`` with
``Retry-After``); any other status answers a Mattermost JSON error unless a raw
body is given. ``times`` limits how many requests it hits; then it clears. A delayed
request without a status is carried out after the delay even if its client gave up,
like a slow request to Mattermost that lands after the client timed out. With
``channel_id``, a fault hits only requests about that channel (in the path, or as the
JSON body's ``channel_id``, as in ``POST /posts``): one channel can fail while others work.
With ``team_id``, likewise for one team (``POST /channels`` names it in its body), so a
test's fault never hits another test's incidents on a shared server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mattermost_standin.routing import compile_template


@dataclass
class Fault:
    method: str
    path: str
    status: int | None = None
    retry_after: int | None = None
    delay: float | None = None
    times: int | None = None
    body: str | None = None
    channel_id: str | None = None
    team_id: str | None = None
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not isinstance(self.path, str):
            raise TypeError("method and path must be strings")
        for name in ("status", "retry_after", "times"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{name} must be an integer")
        if self.delay is not None and (not isinstance(self.delay, int | float) or self.delay < 0):
            raise TypeError("delay must be a non-negative number of seconds")
        if self.body is not None and not isinstance(self.body, str):
            raise TypeError("body must be a string")
        for name in ("channel_id", "team_id"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string")
        if self.status is None and self.delay is None:
            raise ValueError("a fault needs a status, a delay, or both")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"a fault status must be an HTTP error (400-599), not {self.status}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (None means forever)")
        self.method = self.method.upper()
        self._pattern = compile_template(self.path, any_segment=True)

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.method not in ("*", method) or self._pattern.fullmatch(path) is None:
            return False
        return self._about("channel_id", self.channel_id, path, body) and self._about(
            "team_id", self.team_id, path, body
        )

    @staticmethod
    def _about(key: str, wanted: str | None, path: str, body: bytes) -> bool:
        """Whether the request concerns `wanted` (in its path, or as its JSON body's `key`)."""
        if wanted is None or wanted in path.split("/"):
            return True
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return False
        return isinstance(data, dict) and data.get(key) == wanted

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "times": self.times,
            "body": self.body,
            "channel_id": self.channel_id,
            "team_id": self.team_id,
        }

    def response(self, request_id: str) -> Response | None:
        """The error this fault answers, or None when it only delays."""
        if self.status is None:
            return None
        headers = {"X-Request-Id": request_id}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.body is not None:
            try:
                json.loads(self.body)
            except ValueError:
                return PlainTextResponse(self.body, status_code=self.status, headers=headers)
            return Response(self.body, status_code=self.status, headers=headers, media_type="application/json")
        if self.status == 429:
            # http.Error(w, "limit exceeded", 429) in the server's throttling middleware.
            headers.setdefault("Retry-After", "1")
            return PlainTextResponse("limit exceeded\n", status_code=429, headers=headers)
        body = {
            "id": "standin.fault.injected.app_error",
            "message": f"Injected fault: {self.status} for {self.method} {self.path}.",
            "detailed_error": "",
            "request_id": request_id,
            "status_code": self.status,
        }
        return JSONResponse(body, status_code=self.status, headers=headers)


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        # Every request a fault hit, when it arrived (``{method, path}``), oldest first: the
        # request log only has a request once it is answered, which a delay postpones.
        self.taken: list[dict[str, str]] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def listed(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self._faults]

    @property
    def need_body(self) -> bool:
        """Whether matching needs the request body (a fault is limited to a channel)."""
        return any(fault.channel_id is not None or fault.team_id is not None for fault in self._faults)

    def take(self, method: str, path: str, body: bytes = b"") -> Fault | None:
        """The first fault matching this request, counting one use of it."""
        for fault in self._faults:
            if fault.matches(method, path, body):
                self.taken.append({"method": method, "path": path})
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
        return None
