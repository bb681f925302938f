"""Responses for injected faults and random failures, per endpoint flavour."""

from __future__ import annotations

import asyncio

from aiohttp import web

from devtools.sandbox.context import SandboxContext, json_response
from devtools.sandbox.faults import FaultRule

#: A "timeout" hangs far longer than any client timeout; the handler is cancelled when the
#: client gives up (handler_cancellation) or the sandbox stops.
HANG_SECONDS = 3600.0
#: Truncated JSON, as a proxy cutting a body short would deliver it.
MALFORMED_BODY = b'{"data": {"passes": [{"uuid": "'
PARTIAL_BODY = b'{"data": {"passes": [{"uuid": "5b0f6f7e-4c1a-4f0e-9a57-'


def customer_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"data": None, "errors": [{"code": code, "message": message}]}, status, headers)


def oauth_error(status: int, error: str, description: str) -> web.Response:
    return json_response({"error": error, "error_description": description}, status)


def too_many_requests(is_token: bool, retry_after: float) -> web.Response:
    headers = {"Retry-After": f"{retry_after:g}"}
    if is_token:
        return json_response({"error": "rate_limited"}, 429, headers)
    return customer_error(429, "TOO_MANY_REQUESTS", "rate limit exceeded", headers)


def unavailable(is_token: bool) -> web.Response:
    if is_token:
        return oauth_error(503, "temporarily_unavailable", "injected 503")
    return customer_error(503, "SERVICE_UNAVAILABLE", "injected 503")


async def inject(request: web.Request, ctx: SandboxContext, rule: FaultRule) -> web.StreamResponse:
    """Answer `request` the way `rule` says; records the outcome in the stats."""
    is_token = rule.endpoint == "token"
    if rule.kind == "timeout":
        ctx.stats.record_outcome(rule.endpoint, "timeout")
        await asyncio.sleep(HANG_SECONDS)
        return customer_error(504, "TIMEOUT", "hung request finally answered")
    if rule.kind == "reset":
        ctx.stats.record_outcome(rule.endpoint, "reset")
        return await _reset_mid_body(request)
    response = _fault_response(rule, is_token)
    ctx.stats.record_outcome(rule.endpoint, response.status)
    return response


def _fault_response(rule: FaultRule, is_token: bool) -> web.Response:
    match rule.kind:
        case "500":
            if is_token:
                return oauth_error(500, "server_error", "injected 500")
            return customer_error(500, "INTERNAL_ERROR", "injected 500")
        case "malformed_json":
            return web.Response(body=MALFORMED_BODY, content_type="application/json")
        case "wrong_shape":
            body = {"token": "not-what-you-expect"} if is_token else {"data": {"items": []}, "errors": []}
            return json_response(body)
        case "429":
            return too_many_requests(is_token, 1 if rule.retry_after is None else rule.retry_after)
        case "401":
            if is_token:  # Bytemark: a 401 invalid_grant, like a 400 one, means the grant is dead
                return oauth_error(401, "invalid_grant", "injected 401")
            return customer_error(401, "UNAUTHORIZED", "injected 401")
        case "invalid_grant":
            return oauth_error(400, "invalid_grant", "injected invalid_grant")
    raise ValueError(f"unknown fault kind {rule.kind!r}")


async def _reset_mid_body(request: web.Request) -> web.StreamResponse:
    """Send headers and part of a chunked body, then drop the connection: the client sees a
    200 whose body never completes."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(PARTIAL_BODY)
    if request.transport is not None:
        request.transport.close()
    return response
