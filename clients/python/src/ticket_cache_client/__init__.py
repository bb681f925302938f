"""Typed async client for the Bytemark ticket cache service (generated stubs live in `bytemark`)."""

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from ticket_cache_client.bulk import per_rider, unbatched
from ticket_cache_client.channel import RetryPolicy, TlsFiles, open_channel, service_config
from ticket_cache_client.client import TicketCacheClient
from ticket_cache_client.connection import ServerUnreachable
from ticket_cache_client.errors import ErrorDetails, FieldViolation, TicketCacheError, rider_error

__all__ = [
    "ErrorDetails",
    "FieldViolation",
    "RetryPolicy",
    "ServerUnreachable",
    "TicketCacheClient",
    "TicketCacheError",
    "TlsFiles",
    "open_channel",
    "per_rider",
    "rider_error",
    "pb",
    "service_config",
    "unbatched",
]
