"""Mattermost's error answers, with the ids the real server uses.

Clients (mattermostautodriver among them) branch on the ``id`` of an error, not on
its message, so every refusal the stand-in makes carries the id the real server
would send for the same situation. Messages are the server's English texts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class AppError(Exception):
    """A refused request, answered as ``{id, message, detailed_error, request_id, status_code}``.

    Raised by the domain code and by route handlers alike; the HTTP layer turns it
    into the JSON body, and the direct Python helpers of ``StandIn`` let it propagate
    so a test sees the same id the API would have answered.
    """

    def __init__(self, status: int, error_id: str, message: str, detailed_error: str = "") -> None:
        super().__init__(f"{status} {error_id}: {message}" + (f" ({detailed_error})" if detailed_error else ""))
        self.status = status
        self.error_id = error_id
        self.message = message
        self.detailed_error = detailed_error

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "id": self.error_id,
            "message": self.message,
            "detailed_error": self.detailed_error,
            "request_id": request_id,
            "status_code": self.status,
        }


def invalid_body_param(name: str, detail: str = "") -> AppError:
    return AppError(
        400, "api.context.invalid_body_param.app_error", f"Invalid or missing {name} in request body.", detail
    )


def payload_parse_error(detail: str = "") -> AppError:
    """A body ``model.SortedArrayFromJSON``/``NonSortedArrayFromJSON`` cannot read as a list of strings."""
    return AppError(400, "api.payload.parse.error", "An error occurred while parsing the payload.", detail)


def invalid_url_param(name: str) -> AppError:
    return AppError(
        400, "api.context.invalid_url_param.app_error", f"Invalid or missing {name} parameter in request URL."
    )


def invalid_param(name: str) -> AppError:
    return AppError(400, "api.context.invalid_param.app_error", f"Invalid {name} parameter.")


def permission_denied(user_id: str, *permissions: str) -> AppError:
    return AppError(
        403,
        "api.context.permissions.app_error",
        "You do not have the appropriate permissions.",
        f"userId={user_id}, " + ", ".join(f"permission={p}" for p in permissions),
    )


def session_expired(token: str = "") -> AppError:
    return AppError(
        401,
        "api.context.session_expired.app_error",
        "Invalid or expired session, please login again.",
        f"token={token}" if token else "",
    )


def route_not_found() -> AppError:
    return AppError(404, "api.context.404.app_error", "Sorry, we could not find the page.")


def not_found(error_id: str, message: str, **looked_for: str) -> AppError:
    """A 404 for what does not exist (or may not be seen): its detailed error names what was
    looked for as the server writes it, ``key=value`` pairs joined by ``, ``."""
    return AppError(404, error_id, message, ", ".join(f"{key}={value}" for key, value in looked_for.items()))


def require(found: T | None, missing: Callable[[], AppError]) -> T:
    """What a lookup ``found``; when it found nothing, the refusal ``missing`` makes is raised."""
    if found is None:
        raise missing()
    return found


def user_not_found(detail: str = "") -> AppError:
    return AppError(404, "app.user.missing_account.const", "Unable to find the user.", detail)


def channel_not_found(channel_id: str) -> AppError:
    return not_found("app.channel.get.existing.app_error", "Unable to find the existing channel.", id=channel_id)


def team_not_found(team_id: str) -> AppError:
    return not_found("app.team.get.find.app_error", "Unable to find the existing team.", id=team_id)


def team_member_not_found(team_id: str, user_id: str) -> AppError:
    return not_found(
        "app.team.get_member.missing.app_error",
        "No team member found for that user ID and team ID.",
        team_id=team_id,
        user_id=user_id,
    )


def post_not_found(post_id: str) -> AppError:
    return not_found("app.post.get.app_error", "Unable to get the post.", id=post_id)
