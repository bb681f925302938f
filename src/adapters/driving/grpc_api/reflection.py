"""Server reflection in both versions clients ask for: `grpc.reflection.v1` (newer grpcurl,
`buf curl` and Postman try it first) and `grpc.reflection.v1alpha`.

grpcio-reflection ships only v1alpha. v1 is the same protocol renamed (same messages, same field
numbers), so one servicer answers both, and v1's schema is v1alpha's under the v1 names.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names` and both versions."""
    _add_v1_schema(descriptor_pool.Default())
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    servicer = reflection.aio.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)  # v1alpha
    v1_method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": v1_method}),)
    )


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
