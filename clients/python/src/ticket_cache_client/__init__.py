"""Typed async client for the Bytemark ticket cache service (generated stubs live in `bytemark`)."""

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from ticket_cache_client.bulk import per_rider, unbatched
from ticket_cache_client.channel import RetryPolicy, TlsFiles, open_channel, service_config
from ticket_cache_client.client import TicketCacheClient
from ticket_cache_client.connection import ServerUnreachable

__all__ = [
    "RetryPolicy",
    "ServerUnreachable",
    "TicketCacheClient",
    "TlsFiles",
    "open_channel",
    "per_rider",
    "pb",
    "service_config",
    "unbatched",
]
