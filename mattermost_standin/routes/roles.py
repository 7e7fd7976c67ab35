"""``/api/v4/roles``: reading roles, and changing what a role grants (admins only)."""

from __future__ import annotations

import copy
import re

from fastapi.responses import Response

from mattermost_standin import permissions
from mattermost_standin.errors import AppError, invalid_body_param, invalid_param, permission_denied
from mattermost_standin.routing import Call, Router, json_response

router = Router()

_ROLE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


@router.get("/api/v4/roles/name/{role_name}")
async def get_role_by_name(call: Call) -> Response:
    role = call.state.roles.get(call.params["role_name"])
    if role is None:
        raise AppError(404, "app.role.get_by_name.app_error", "Unable to get role.", f"name={call.params['role_name']}")
    return json_response(copy.deepcopy(role))


@router.post("/api/v4/roles/names")
async def get_roles_by_names(call: Call) -> Response:
    names = await call.body_strings("rolenames")
    if not names:
        raise invalid_param("rolenames")
    if not all(_ROLE_NAME.fullmatch(n) for n in names):
        raise invalid_param("rolename")
    found = [copy.deepcopy(call.state.roles[n]) for n in sorted(set(names)) if n in call.state.roles]
    return json_response(found)


@router.put("/api/v4/roles/{role_id}/patch")
async def patch_role(call: Call) -> Response:
    body = await call.body_object("role")
    new_permissions = body.get("permissions")
    if new_permissions is not None and (
        not isinstance(new_permissions, list) or not all(isinstance(p, str) for p in new_permissions)
    ):
        raise invalid_body_param("role", "permissions must be an array of strings")
    role = next((r for r in call.state.roles.values() if r["id"] == call.params["role_id"]), None)
    if role is None:
        raise AppError(404, "app.role.get.app_error", "Unable to get role.", f"id={call.params['role_id']}")
    if not permissions.has_system_permission(call.state, call.user, "manage_system"):
        raise permission_denied(call.user["id"], "manage_system")
    if new_permissions is not None:
        role["permissions"] = sorted(set(new_permissions))
        role["update_at"] = call.store.now_ms()
    return json_response(copy.deepcopy(role))
