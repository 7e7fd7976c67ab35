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
from typing import Any, Literal, TypedDict, Unpack

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mattermost_standin.routing import compile_template


class FaultOptions(TypedDict, total=False):
    """What a fault does, and to which requests, besides its method and path (see above); each
    is None when not given. ``StandIn.add_fault`` and ``POST /_standin/faults`` take them."""

    status: int | None
    retry_after: int | None
    delay: float | None
    times: int | None
    body: str | None
    channel_id: str | None
    team_id: str | None


class Fault:
    """A method (``*`` for any) and path template, and what to do with the requests they match."""

    def __init__(self, method: str, path: str, **options: Unpack[FaultOptions]) -> None:
        if not isinstance(method, str) or not isinstance(path, str):
            raise TypeError("method and path must be strings")
        unknown = options.keys() - FaultOptions.__optional_keys__
        if unknown:
            raise TypeError(f"unknown fault options: {', '.join(sorted(unknown))}")
        for name in ("status", "retry_after", "times"):
            value = options.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{name} must be an integer")
        status, delay, times = options.get("status"), options.get("delay"), options.get("times")
        if delay is not None and (not isinstance(delay, int | float) or delay < 0):
            raise TypeError("delay must be a non-negative number of seconds")
        for name in ("body", "channel_id", "team_id"):
            if options.get(name) is not None and not isinstance(options.get(name), str):
                raise TypeError(f"{name} must be a string")
        if status is None and delay is None:
            raise ValueError("a fault needs a status, a delay, or both")
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"a fault status must be an HTTP error (400-599), not {status}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (None means forever)")
        self.method = method.upper()
        self.path = path
        self.options = options
        self._pattern = compile_template(path, any_segment=True)

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.method not in ("*", method) or self._pattern.fullmatch(path) is None:
            return False
        return self._about("channel_id", path, body) and self._about("team_id", path, body)

    def _about(self, key: Literal["channel_id", "team_id"], path: str, body: bytes) -> bool:
        """Whether the request concerns the option `key`'s value (in its path, or as its JSON body's `key`)."""
        wanted = self.options.get(key)
        if wanted is None or wanted in path.split("/"):
            return True
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return False
        return isinstance(data, dict) and data.get(key) == wanted

    def as_dict(self) -> dict[str, Any]:
        options = {name: self.options.get(name) for name in FaultOptions.__annotations__}
        return {"method": self.method, "path": self.path, **options}

    def response(self, request_id: str) -> Response | None:
        """The error this fault answers, or None when it only delays."""
        status = self.options.get("status")
        if status is None:
            return None
        retry_after, body = self.options.get("retry_after"), self.options.get("body")
        headers = {"X-Request-Id": request_id}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if body is not None:
            try:
                json.loads(body)
            except ValueError:
                return PlainTextResponse(body, status_code=status, headers=headers)
            return Response(body, status_code=status, headers=headers, media_type="application/json")
        if status == 429:
            # http.Error(w, "limit exceeded", 429) in the server's throttling middleware.
            headers.setdefault("Retry-After", "1")
            return PlainTextResponse("limit exceeded\n", status_code=429, headers=headers)
        error = {
            "id": "standin.fault.injected.app_error",
            "message": f"Injected fault: {status} for {self.method} {self.path}.",
            "detailed_error": "",
            "request_id": request_id,
            "status_code": status,
        }
        return JSONResponse(error, status_code=status, headers=headers)


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
        return any(fault.options.get(key) is not None for fault in self._faults for key in ("channel_id", "team_id"))

    def take(self, method: str, path: str, body: bytes = b"") -> Fault | None:
        """The first fault matching this request, counting one use of it."""
        for fault in self._faults:
            if fault.matches(method, path, body):
                self.taken.append({"method": method, "path": path})
                times = fault.options.get("times")
                if times is not None:
                    fault.options["times"] = times - 1
                    if times == 1:
                        self._faults.remove(fault)
                return fault
        return None
