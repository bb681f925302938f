"""The HTTP port (HTTP_LISTEN): the same TicketCacheService as Connect (JSON or binary), gRPC-Web and
gRPC over HTTP, for callers without a gRPC stack (curl, browsers, PHP)."""
