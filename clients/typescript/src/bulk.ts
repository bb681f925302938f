// Bulk streams asked with `maxBatch`, read one rider at a time. A batched event carries several
// riders in `batch`, in the order they finished, and the run's totals after the last of them;
// `perRider` turns it back into the events the server sends with maxBatch 0: one per rider, with
// done, failed and the skip counts as they stood after that rider. So a caller asks for fewer,
// larger messages (less server CPU per rider) and still reads per rider.
import { create } from "@bufbuild/protobuf";
import {
  BuildCacheIfEmptyResponseSchema,
  RefreshStaleCachesResponseSchema,
  SkipReason,
  type BuildCacheIfEmptyResponse,
  type RefreshStaleCachesResponse,
} from "./gen/bytemark/ticketcache/v1/ticket_cache_pb.js";

export type BulkEvent = BuildCacheIfEmptyResponse | RefreshStaleCachesResponse;

/** Every event of `events`, with each batched one spread into its riders' events. */
export async function* perRider<E extends BulkEvent>(events: AsyncIterable<E>): AsyncGenerator<E> {
  for await (const event of events) {
    if (event.batch.length === 0) {
      yield event;
    } else {
      yield* unbatched(event);
    }
  }
}

/** The per-rider events of one batched event (`stopped` is never batched: it comes on its own). */
export function unbatched<E extends BulkEvent>(event: E): E[] {
  const schema =
    event.$typeName === RefreshStaleCachesResponseSchema.typeName
      ? RefreshStaleCachesResponseSchema
      : BuildCacheIfEmptyResponseSchema;
  let failed = event.failed;
  let authRequired = event.skippedAuthRequired;
  let backoff = event.skippedBackoff;
  const singles: E[] = [];
  // totals worked back from the last rider's, which the batch carries
  for (let behind = 0; behind < event.batch.length; behind++) {
    const user = event.batch[event.batch.length - 1 - behind];
    const single = create(schema, {
      userId: user.userId,
      event: user.event,
      status: user.status,
      done: event.done - BigInt(behind),
      total: event.total,
      failed,
      skipped: user.skipped,
      skippedAuthRequired: authRequired,
      skippedBackoff: backoff,
    });
    singles.push(single as E);
    if (user.status !== undefined || user.event.case === "error") failed -= 1n;
    if (user.skipped === SkipReason.AUTH_REQUIRED) authRequired -= 1n;
    else if (user.skipped === SkipReason.BACKOFF) backoff -= 1n;
  }
  return singles.reverse();
}
