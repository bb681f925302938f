"""Change-feed batches as WatchChangesResponse messages."""

from __future__ import annotations

from application.change_feed import ChangeBatch, encode_cursor
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.changes import ChangeKind
from domain.model import PassList

_LIST = {PassList.PASSES: pb.PASS_LIST_PASSES, PassList.PASSES4: pb.PASS_LIST_PASSES4}
_KIND = {
    ChangeKind.ADDED: pb.CHANGE_KIND_ADDED,
    ChangeKind.CHANGED: pb.CHANGE_KIND_CHANGED,
    ChangeKind.REMOVED: pb.CHANGE_KIND_REMOVED,
}


def change_batch_response(batch: ChangeBatch) -> pb.WatchChangesResponse:
    response = pb.WatchChangesResponse(cursor=batch.cursor)
    for event in batch.events:
        change = event.change
        message = response.events.add(
            cursor=encode_cursor(event.position),
            user_id=change.user_id,
            pass_uuid=change.pass_uuid,
            list=_LIST[change.list],
            kind=_KIND[change.kind],
            free_ticket=change.free_ticket,
            payload_hash=change.payload_hash,
        )
        message.changed_at.FromSeconds(change.changed_at)
    return response
