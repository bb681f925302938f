"""Server reflection in both versions clients ask for: `grpc.reflection.v1` (newer grpcurl,
`buf curl` and Postman try it first) and `grpc.reflection.v1alpha`.

grpcio-reflection ships only v1alpha. v1 is the same protocol renamed (same messages, same field
numbers), so one servicer answers both, and v1's schema is v1alpha's under the v1 names.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"
_REQUEST_TYPE: str = reflection_pb2.ServerReflectionRequest.DESCRIPTOR.full_name
_CORRUPT = object()  # stands in for a request whose bytes do not parse


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names` and both versions."""
    _add_v1_schema(descriptor_pool.Default())
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    servicer = reflection.aio.ReflectionServicer(names)

    async def info(
        requests: AsyncIterable[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        async for response in servicer.ServerReflectionInfo(_parsed(requests, context), context):
            yield response

    method = grpc.stream_stream_rpc_method_handler(
        info,
        request_deserializer=_tolerant_request,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        tuple(
            grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method})
            for name in (V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME)
        )
    )


def _tolerant_request(data: bytes) -> Any:
    try:
        return reflection_pb2.ServerReflectionRequest.FromString(data)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError, or anything its parser raises
        return _CORRUPT


async def _parsed(
    requests: AsyncIterable[Any], context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[Any]:
    """The requests, ending the call with INVALID_ARGUMENT at the first that does not parse
    (grpc would answer UNKNOWN naming protobuf's exception)."""
    async for request in requests:
        if request is _CORRUPT:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request: not a valid {_REQUEST_TYPE} (corrupt wire format)",
            )
        yield request


def _add_v1_schema(pool: descriptor_pool.DescriptorPool) -> None:
    """Register grpc/reflection/v1/reflection.proto, so `describe` works on the v1 service too."""
    try:
        pool.FindFileByName(V1_FILE_NAME)
        return  # already there (a second server in this process, or a library that ships it)
    except KeyError:
        pass
    v1alpha = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(v1alpha)
    old_prefix, new_prefix = f".{v1alpha.package}.", f".{V1_PACKAGE}."
    v1 = descriptor_pb2.FileDescriptorProto()
    v1.CopyFrom(v1alpha)
    v1.name, v1.package = V1_FILE_NAME, V1_PACKAGE
    v1.ClearField("options")
    for message in v1.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old_prefix, new_prefix)
    for service in v1.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old_prefix, new_prefix)
            method.output_type = method.output_type.replace(old_prefix, new_prefix)
    pool.Add(v1)
