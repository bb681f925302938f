"""The fake Bytemark: customer API (pass lists) and account API (OAuth refresh)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from devtools.sandbox.context import CONTEXT, SandboxContext, json_response
from devtools.sandbox.injection import (
    customer_error,
    inject,
    oauth_error,
    too_many_requests,
    unavailable,
)
from devtools.sandbox.state import SandboxUser

#: When tokens never expire, `expires_in` still has to say something plausible.
NOMINAL_EXPIRES_IN = 3600


async def list_passes_v1(request: web.Request) -> web.StreamResponse:
    """The user's passes that are not EXPIRED."""
    return await _list_passes(request, "v1", status=None)


async def list_passes_v4(request: web.Request) -> web.StreamResponse:
    """`?status=EXPIRED` as the service asks; without `status`, every pass of the user."""
    status = request.query.get("status")
    return await _list_passes(request, "v4", status=status.upper() if status else None)


async def _list_passes(request: web.Request, endpoint: str, status: str | None) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    token = _bearer_token(request)
    user = ctx.state.user_for_access_token(token) if token else None
    ctx.stats.record_request(endpoint, user.user_id if user else None)
    await _latency(ctx)
    try:
        page = _positive_int(request.query.get("page"), default=1)
        limit = _positive_int(request.query.get("limit"), default=ctx.config.page_size)
    except ValueError as exc:
        return _finish(ctx, endpoint, customer_error(400, "BAD_REQUEST", str(exc)))
    disrupted = await _disrupt(request, ctx, endpoint, page, user)
    if disrupted is not None:
        return disrupted
    if user is None or not ctx.state.access_token_valid(user, ctx.config.token_ttl_seconds):
        return _finish(
            ctx, endpoint, customer_error(401, "UNAUTHORIZED", "access token is invalid or expired")
        )
    body = user.page_body(endpoint, status, page, min(limit, ctx.config.page_size))
    return _finish(ctx, endpoint, web.Response(body=body, content_type="application/json"))


async def refresh_token(request: web.Request) -> web.StreamResponse:
    """POST /oauth/token with grant_type=refresh_token: rotates both tokens."""
    ctx = request.app[CONTEXT]
    form = await request.post()
    presented = form.get("refresh_token")
    user = ctx.state.user_for_refresh_token(presented) if isinstance(presented, str) else None
    ctx.stats.record_request("token", user.user_id if user else None)
    await _latency(ctx)
    disrupted = await _disrupt(request, ctx, "token", None, user)
    if disrupted is not None:
        return disrupted
    if form.get("grant_type") != "refresh_token":
        response = oauth_error(400, "unsupported_grant_type", "only grant_type=refresh_token is supported")
    elif (
        form.get("client_id") != ctx.config.client_id or form.get("client_secret") != ctx.config.client_secret
    ):
        response = oauth_error(401, "invalid_client", "client authentication failed")
    elif not presented:
        response = oauth_error(400, "invalid_request", "refresh_token is required")
    elif user is None or user.revoked:
        response = oauth_error(400, "invalid_grant", "refresh token is invalid, expired or revoked")
    else:
        response = _rotate(ctx, user)
    return _finish(ctx, "token", response)


def _rotate(ctx: SandboxContext, user: SandboxUser) -> web.Response:
    ctx.state.rotate_tokens(user)
    ttl = ctx.config.token_ttl_seconds
    return json_response(
        {
            "access_token": user.access_token,
            "refresh_token": user.refresh_token,
            "expires_in": int(ttl) if ttl > 0 else NOMINAL_EXPIRES_IN,
            "token_type": "Bearer",
        }
    )


async def _latency(ctx: SandboxContext) -> None:
    if ctx.config.latency_ms > 0:
        await asyncio.sleep(ctx.config.latency_ms / 1000)


async def _disrupt(
    request: web.Request, ctx: SandboxContext, endpoint: str, page: int | None, user: SandboxUser | None
) -> web.StreamResponse | None:
    """A scripted fault, else a random 503/429 by the error_rate / rate_429 knobs, else None."""
    rule = ctx.faults.take(endpoint, page, user.user_id if user else None)
    if rule is not None:
        return await inject(request, ctx, rule)
    config = ctx.config
    if config.error_rate <= 0 and config.rate_429 <= 0:
        return None
    draw = ctx.rng.random()
    is_token = endpoint == "token"
    if draw < config.error_rate:
        return _finish(ctx, endpoint, unavailable(is_token))
    if draw < config.error_rate + config.rate_429:
        return _finish(ctx, endpoint, too_many_requests(is_token, 1))
    return None


def _finish(ctx: SandboxContext, endpoint: str, response: web.Response) -> web.Response:
    ctx.stats.record_outcome(endpoint, response.status)
    return response


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _positive_int(text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value
