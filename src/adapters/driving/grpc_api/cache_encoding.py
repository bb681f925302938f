"""Domain TicketCache -> proto TicketCache for one CacheView. Entries are encoded once and
remembered as wire bytes, whole responses per cache object; a memo key holds everything the
encoding depends on, so a hit is exactly what encoding would give. Why: bench/RESULTS.md,
"Design notes"."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import orjson

from adapters.common.bounded_lru import BoundedLru
from adapters.common.exact_json import exact_json
from adapters.driving.grpc_api.struct_payload import set_struct
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import CachedPass, TicketCache

DEFAULT_MEMO_BYTES = 32 * 1024 * 1024

# protobuf refuses to decode messages nested more than 100 deep; each JSON level in a Struct
# costs three (Struct, map entry, Value) below GetTicketCacheResponse > TicketCache > CachedPass.
# Deeper payloads go out as payload_json even in the FULL view (documented in the proto).
MAX_STRUCT_JSON_DEPTH = 30

# Wire tags of TicketCache.passes (field 4) and .passes4 (field 5), both length-delimited.
_PASSES_TAG = bytes([(4 << 3) | 2])
_PASSES4_TAG = bytes([(5 << 3) | 2])
# Rough per-entry bookkeeping (key tuple, strings, OrderedDict node) counted against the budget.
_ENTRY_OVERHEAD_BYTES = 300


class EncodedEntryMemo(BoundedLru[tuple[Hashable, ...], bytes]):
    """LRU of encoded entries, bounded by the bytes it holds (0 disables it). Keys are
    tuples whose last item is the payload's JSON text, the bulk of a key's size."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, _cost)


def _cost(key: tuple[Hashable, ...], encoded: bytes) -> int:
    json_text = key[-1]
    return len(encoded) + (len(json_text) if isinstance(json_text, bytes) else 0) + _ENTRY_OVERHEAD_BYTES


class ResponseMemo:
    """LRU of whole GetTicketCache responses per (cache object, view), with their serialized
    bytes, bounded by those bytes (counted twice: message and bytes) and by count (0 bytes
    disables it)."""

    def __init__(self, max_bytes: int, max_entries: int = 256) -> None:
        self.max_bytes = max_bytes
        #: (id(cache), view) -> (cache, response, cost)
        self._lru: BoundedLru[tuple[int, int], tuple[TicketCache, pb.GetTicketCacheResponse, int]] = (
            BoundedLru(
                max_bytes, lambda key, entry: entry[2], max_entries=max_entries, on_remove=self._forget
            )
        )
        self.entries = self._lru.entries
        #: id(response) -> (response, its serialized bytes), for the entries above.
        self.wire: dict[int, tuple[pb.GetTicketCacheResponse, bytes]] = {}

    @property
    def size(self) -> int:
        return self._lru.size

    def get(self, cache: TicketCache, view: int) -> pb.GetTicketCacheResponse | None:
        key = (id(cache), view)
        hit = self.entries.get(key)
        if hit is None or hit[0] is not cache:
            return None
        self.entries.move_to_end(key)
        return hit[1]

    def serialized(self, response: pb.GetTicketCacheResponse) -> bytes | None:
        """The bytes of `response` if it is remembered here (the object itself, not an equal one)."""
        hit = self.wire.get(id(response))
        return hit[1] if hit is not None and hit[0] is response else None

    def put(self, cache: TicketCache, view: int, response: pb.GetTicketCacheResponse) -> None:
        if not self.max_bytes:
            return
        if 2 * response.ByteSize() > self.max_bytes:
            return
        wire = response.SerializeToString()
        if self._lru.put((id(cache), view), (cache, response, 2 * len(wire))):
            self.wire[id(response)] = (response, wire)

    def _forget(
        self, key: tuple[int, int], entry: tuple[TicketCache, pb.GetTicketCacheResponse, int]
    ) -> None:
        self.wire.pop(id(entry[1]), None)

    def __len__(self) -> int:
        return len(self.entries)


class CacheEncoder:
    """Writes domain caches into proto messages; one instance per server (it owns the memos)."""

    def __init__(self, memo_bytes: int = DEFAULT_MEMO_BYTES) -> None:
        self._memo = EncodedEntryMemo(memo_bytes)
        # Whole responses take a quarter of the budget: a message in memory is a few times its
        # serialized size, and only the most read caches need to be there.
        self._responses = ResponseMemo(memo_bytes // 4)

    def response_for(self, cache: TicketCache, view: pb.CacheView.ValueType) -> pb.GetTicketCacheResponse:
        """The GetTicketCache response for `cache` in `view` (resolved). The message may be
        shared with other calls: callers must not modify it."""
        response = self._responses.get(cache, view)
        if response is None:
            response = pb.GetTicketCacheResponse()
            self.write_cache(response.cache, cache, view)
            self._responses.put(cache, view, response)
        return response

    def serialize_response(self, response: pb.GetTicketCacheResponse) -> bytes:
        """GetTicketCache's response serializer: a remembered response's bytes were made when it
        was remembered (the message is never modified after), others are serialized now."""
        wire = self._responses.serialized(response)
        return wire if wire is not None else response.SerializeToString()

    def write_cache(self, target: pb.TicketCache, cache: TicketCache, view: pb.CacheView.ValueType) -> None:
        """Fill `target` (an empty message, e.g. `response.cache`) with `cache` in `view`
        (already resolved: SUMMARY, FULL or RAW)."""
        passes = self._encoded_list(_PASSES_TAG, cache.passes, view)
        passes4 = self._encoded_list(_PASSES4_TAG, cache.passes4, view)
        # One C parse of all entries instead of ~10 Python-level field sets per entry.
        target.MergeFromString(passes + passes4)
        target.user_id = cache.user_id
        target.version = cache.version
        if cache.timestamp:
            target.timestamp.seconds = cache.timestamp

    def _encoded_list(self, tag: bytes, entries: Iterable[CachedPass], view: pb.CacheView.ValueType) -> bytes:
        """The entries as repeated-field wire bytes (tag, length, message per entry).

        The hot path of every read: kept to one memo lookup per entry, with no helper
        calls on a hit (each Python call costs about as much as the lookup itself)."""
        memo = self._memo.entries
        lookup, touch = memo.get, memo.move_to_end
        with_payload = view != pb.CACHE_VIEW_SUMMARY
        parts: list[bytes] = []
        for entry in entries:
            if with_payload:
                try:
                    json_text = orjson.dumps(entry.payload)
                except TypeError:  # beyond orjson (huge ints, lone surrogates)
                    json_text = exact_json(entry.payload)
            else:
                json_text = b""
            status = entry.status if type(entry.status) is str else status_text(entry.status)
            key = (
                tag,
                view,
                entry.pass_uuid,
                entry.timestamp,
                status,
                entry.free_ticket_status,
                entry.payload_hash,
                json_text,
            )
            field = lookup(key)
            if field is None:
                body = _encode_entry(entry, status, view, json_text)
                field = tag + _varint(len(body)) + body
                self._memo.put(key, field)
            else:
                touch(key)  # most recently used
            parts.append(field)
        return b"".join(parts)


def _encode_entry(entry: CachedPass, status: str, view: pb.CacheView.ValueType, json_text: bytes) -> bytes:
    message = pb.CachedPass(
        pass_uuid=entry.pass_uuid,
        status=status,
        free_ticket_status=entry.free_ticket_status,
        payload_hash=entry.payload_hash,
    )
    if entry.timestamp:
        message.timestamp.seconds = entry.timestamp
    if view == pb.CACHE_VIEW_FULL and not _deeper_than(entry.payload, MAX_STRUCT_JSON_DEPTH):
        set_struct(message.payload, entry.payload)
    elif view != pb.CACHE_VIEW_SUMMARY:
        message.payload_json = json_text.decode("utf-8")
    return message.SerializeToString()


def _deeper_than(value: object, limit: int) -> bool:
    """Whether JSON `value` nests objects/arrays more than `limit` levels (stops early)."""
    if limit < 0:
        return True
    if isinstance(value, dict):
        return any(_deeper_than(v, limit - 1) for v in value.values())
    if isinstance(value, list):
        return any(_deeper_than(v, limit - 1) for v in value)
    return False


def status_text(status: object) -> str:
    """The pass status as a string: Bytemark sends one, but the payload is opaque JSON, so a
    missing status reads as "" and any other value as its JSON text."""
    if isinstance(status, str):
        return status
    if status is None:
        return ""
    return exact_json(status).decode("utf-8")


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
