"""The `/_sandbox/` control API: faults, stats, knobs, users and passes, for tests and demos."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from devtools.sandbox.context import CONTEXT, json_response
from devtools.sandbox.faults import FaultRule

PREFIX = "/_sandbox"


def add_control_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get(f"{PREFIX}/faults", list_faults),
            web.post(f"{PREFIX}/faults", add_faults),
            web.delete(f"{PREFIX}/faults", clear_faults),
            web.get(f"{PREFIX}/stats", get_stats),
            web.post(f"{PREFIX}/stats/reset", reset_stats),
            web.get(f"{PREFIX}/config", get_config),
            web.patch(f"{PREFIX}/config", update_config),
            web.post(f"{PREFIX}/users", create_user),
            web.get(f"{PREFIX}/users/{{user_id}}", get_user),
            web.post(f"{PREFIX}/users/{{user_id}}/passes", add_pass),
            web.patch(f"{PREFIX}/users/{{user_id}}/passes/{{uuid}}", update_pass),
            web.delete(f"{PREFIX}/users/{{user_id}}/passes/{{uuid}}", remove_pass),
            web.post(f"{PREFIX}/users/{{user_id}}/expire-token", expire_token),
            web.post(f"{PREFIX}/users/{{user_id}}/revoke", revoke),
            web.post(f"{PREFIX}/users/{{user_id}}/login", login),
        ]
    )


def _error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=orjson.dumps({"error": message}).decode(), content_type="application/json")


def _bad_request(message: str) -> web.HTTPException:
    return _error(web.HTTPBadRequest, message)


async def _json_body(request: web.Request, default: Any = None) -> Any:
    raw = await request.read()
    if not raw.strip():
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad_request(f"body is not JSON: {exc}") from None


def _user_id(request: web.Request) -> int:
    try:
        user_id = int(request.match_info["user_id"])
    except ValueError:
        raise _bad_request("user_id must be an integer") from None
    if user_id not in request.app[CONTEXT].state.users:
        raise _error(web.HTTPNotFound, f"no user {user_id}")
    return user_id


async def list_faults(request: web.Request) -> web.Response:
    return json_response({"rules": [rule.as_dict() for rule in request.app[CONTEXT].faults.rules]})


async def add_faults(request: web.Request) -> web.Response:
    """Body: one rule object or a list of them."""
    body = await _json_body(request)
    items = body if isinstance(body, list) else [body]
    try:
        rules = [FaultRule.from_json(item) for item in items]
    except ValueError as exc:
        raise _bad_request(str(exc)) from None
    request.app[CONTEXT].faults.add(rules)
    return json_response({"added": [rule.as_dict() for rule in rules]}, status=201)


async def clear_faults(request: web.Request) -> web.Response:
    return json_response({"cleared": request.app[CONTEXT].faults.clear()})


async def get_stats(request: web.Request) -> web.Response:
    return json_response(request.app[CONTEXT].stats.snapshot())


async def reset_stats(request: web.Request) -> web.Response:
    request.app[CONTEXT].stats.reset()
    return json_response({"reset": True})


async def get_config(request: web.Request) -> web.Response:
    return json_response(request.app[CONTEXT].config.as_dict())


async def update_config(request: web.Request) -> web.Response:
    """Body: the knobs to change, e.g. {"latency_ms": 50, "error_rate": 0.1}."""
    body = await _json_body(request, default={})
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object of knobs")
    ctx = request.app[CONTEXT]
    try:
        ctx.config.update(body)
    except ValueError as exc:
        raise _bad_request(str(exc)) from None
    if "seed" in body:
        ctx.reseed()
    return json_response(ctx.config.as_dict())


async def create_user(request: web.Request) -> web.Response:
    """Body (all optional): {"user_id": 7, "passes": 3, "expired": 1}; answers the tokens."""
    body = await _json_body(request, default={})
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object")
    user_id, passes, expired = body.get("user_id"), body.get("passes", 0), body.get("expired", 0)
    for name, value in (("passes", passes), ("expired", expired)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad_request(f"{name} must be a non-negative integer")
    if user_id is not None and (not isinstance(user_id, int) or isinstance(user_id, bool) or user_id < 1):
        raise _bad_request("user_id must be a positive integer")
    ctx = request.app[CONTEXT]
    try:
        user = ctx.state.add_user(user_id, passes=passes, expired=expired)
    except KeyError:
        raise _error(web.HTTPConflict, f"user {user_id} exists") from None
    return json_response(_credentials_json(request, user.user_id), status=201)


async def get_user(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    user = request.app[CONTEXT].state.users[user_id]
    return json_response(
        {
            **_credentials_json(request, user_id),
            "revoked": user.revoked,
            "access_expired": user.access_expired,
            "passes": list(user.passes.values()),
        }
    )


async def add_pass(request: web.Request) -> web.Response:
    """Body: a pass object stored as given, or {"free": true} for a generated free-ticket pass."""
    user_id = _user_id(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise _bad_request('body must be a pass object or {"free": true}')
    state = request.app[CONTEXT].state
    try:
        new_pass = state.add_pass(user_id, None if body == {"free": True} else body)
    except ValueError as exc:
        raise _error(web.HTTPConflict, str(exc)) from None
    return json_response(new_pass, status=201)


async def update_pass(request: web.Request) -> web.Response:
    """Body: fields to overwrite, e.g. {"status": "EXPIRED"}."""
    user_id = _user_id(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object of fields")
    try:
        updated = request.app[CONTEXT].state.update_pass(user_id, request.match_info["uuid"], body)
    except KeyError:
        raise _error(web.HTTPNotFound, "no such pass") from None
    return json_response(updated)


async def remove_pass(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    try:
        request.app[CONTEXT].state.remove_pass(user_id, request.match_info["uuid"])
    except KeyError:
        raise _error(web.HTTPNotFound, "no such pass") from None
    return json_response({"removed": request.match_info["uuid"]})


async def expire_token(request: web.Request) -> web.Response:
    """The current access token answers 401 from now on; refreshing still works."""
    user_id = _user_id(request)
    request.app[CONTEXT].state.expire_access_token(user_id)
    return json_response({"user_id": user_id, "access_expired": True})


async def revoke(request: web.Request) -> web.Response:
    """The grant is revoked: the access token answers 401 and refreshing gives invalid_grant."""
    user_id = _user_id(request)
    request.app[CONTEXT].state.revoke(user_id)
    return json_response({"user_id": user_id, "revoked": True})


async def login(request: web.Request) -> web.Response:
    """The rider logs in again: a new grant (new access and refresh token), as the app would store."""
    user_id = _user_id(request)
    state = request.app[CONTEXT].state
    state.rotate_tokens(state.users[user_id])
    return json_response(_credentials_json(request, user_id))


def _credentials_json(request: web.Request, user_id: int) -> dict[str, Any]:
    ctx = request.app[CONTEXT]
    user_id, access, refresh, expires_at = ctx.state.user_credentials(user_id, ctx.config.token_ttl_seconds)
    return {
        "user_id": user_id,
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
