"""What the HTTP port does around every call, as the gRPC port's ServiceInterceptor does: request id,
the same access check (asked before the request body is read), metrics, and no internals in errors.

It is a leading metadata interceptor: connectrpc runs it before it reads or parses the request."""

from __future__ import annotations

import time
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext

from adapters.common.logs import request_id_var
from adapters.driving.grpc_api.errors import failure_for
from adapters.driving.grpc_api.interceptors import REQUEST_ID_HEADER, ServiceInterceptor, request_id_from
from adapters.driving.http_api.call_context import connect_error
from adapters.driving.http_api.metrics import HTTP_RPC_HANDLED, HTTP_RPC_HANDLING_SECONDS

_Token = tuple[float, str, str]  # started, method path, protocol


class CallEdge:
    """`access` is the gRPC port's interceptor: its `refusal` is the one access check of both ports."""

    def __init__(self, access: ServiceInterceptor) -> None:
        self._access = access

    async def on_start(self, ctx: RequestContext[Any, Any]) -> _Token:
        started = time.perf_counter()
        method = f"/{ctx.method.service_name}/{ctx.method.name}"
        protocol = protocol_of(ctx.request_headers.get("content-type", ""))
        metadata = tuple(ctx.request_headers.allitems())  # header names arrive lower-cased
        request_id = request_id_from(metadata)
        request_id_var.set(request_id)  # for logs and INTERNAL messages of this call
        ctx.response_headers[REQUEST_ID_HEADER] = request_id
        refusal = self._access.refusal(method, metadata)
        if refusal is not None:
            _record((started, method, protocol), refusal.code.name)  # on_end does not run for a refused start
            raise connect_error(refusal)
        return started, method, protocol

    async def on_end(self, token: _Token, ctx: RequestContext[Any, Any], error: Exception | None) -> None:
        if error is None:
            _record(token, "OK")
        elif isinstance(error, ConnectError):
            _record(token, "CANCELLED" if error.code is Code.CANCELED else error.code.name)
        else:  # a bug: logged under the call's request id by failure_for, never echoed to the caller
            failure = failure_for(error)
            _record(token, failure.code.name)
            raise connect_error(failure) from None  # replaces the reported error


def protocol_of(content_type: str) -> str:
    if content_type.startswith("application/grpc-web"):
        return "grpc_web"
    if content_type.startswith("application/grpc"):
        return "grpc"
    return "connect"


def _record(token: _Token, code_name: str) -> None:
    started, method, protocol = token
    HTTP_RPC_HANDLED.labels(method, code_name, protocol).inc()
    HTTP_RPC_HANDLING_SECONDS.labels(method, protocol).observe(time.perf_counter() - started)
