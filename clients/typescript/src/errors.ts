// The service's error details (AIP-193: ErrorInfo, BadRequest, RetryInfo in a google.rpc.Status),
// from a failed call through Connect's findDetails, or from a failed rider of a bulk stream.
// The reasons: docs/errors.md.
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { anyUnpack, durationMs } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import type { Status } from "./gen/google/rpc/status_pb.js";

export { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
export { StatusSchema, type Status } from "./gen/google/rpc/status_pb.js";

export interface ErrorDetails {
  /** ErrorInfo.reason, e.g. "CACHE_NOT_FOUND"; "" when the server sent none (e.g. no connection). */
  reason: string;
  /** "ticketcache.bytemark" for the service's own errors. */
  domain: string;
  /** What the error is about (`user_id`, `field`, ...) and the call's `request_id`. */
  metadata: Record<string, string>;
  /** BadRequest: every bad field path and what is wrong with it (INVALID_ARGUMENT). */
  fieldViolations: { field: string; description: string }[];
  /** RetryInfo: wait at least this long before retrying; undefined when unknown. */
  retryDelayMs?: number;
}

type Find = <Desc extends DescMessage>(schema: Desc) => MessageShape<Desc>[];

function detailsFrom(find: Find): ErrorDetails {
  const [info] = find(ErrorInfoSchema);
  const [retry] = find(RetryInfoSchema);
  return {
    reason: info?.reason ?? "",
    domain: info?.domain ?? "",
    metadata: { ...(info?.metadata ?? {}) },
    fieldViolations: find(BadRequestSchema).flatMap((bad) =>
      bad.fieldViolations.map(({ field, description }) => ({ field, description })),
    ),
    retryDelayMs: retry?.retryDelay ? durationMs(retry.retryDelay) : undefined,
  };
}

/** The details of a failed call (any error: it goes through ConnectError.from). */
export function errorDetails(error: unknown): ErrorDetails {
  const failure = ConnectError.from(error);
  return detailsFrom((schema) => failure.findDetails(schema));
}

/** The details of a failed rider in a bulk stream event (or a batch entry); undefined when the
 * rider did not fail. */
export function riderError(event: { status?: Status }): ErrorDetails | undefined {
  const status = event.status;
  if (status === undefined) return undefined;
  return detailsFrom((schema) =>
    status.details.flatMap((detail) => {
      const message = anyUnpack(detail, schema);
      return message === undefined ? [] : [message];
    }),
  );
}
