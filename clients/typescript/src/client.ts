// A typed client of TicketCacheService over gRPC (HTTP/2) with Connect's Node transport:
// a deadline on every call, bearer auth, TLS and HTTP/2 keepalive pings.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TicketCacheService } from "./gen/bytemark/ticketcache/v1/ticket_cache_pb.js";

export type TicketCacheClient = Client<typeof TicketCacheService>;

export interface TicketCacheClientOptions {
  /** "http://host:50051" (plaintext) or "https://host:50051" (TLS). */
  baseUrl: string;
  /** Sent as `authorization: Bearer <token>` on every call (the server's GRPC_AUTH_TOKEN). */
  token?: string;
  /** Deadline of every call without its own `timeoutMs`, in ms (default 30 s). */
  timeoutMs?: number;
  /** PEM: `ca` verifies the server; `cert` and `key` are for mutual TLS. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  /** HTTP/2 keepalive ping interval, ms (default 60 s; the server accepts one every 20 s). */
  pingIntervalMs?: number;
}

/** Adds the bearer token to every request; the token never appears in errors or logs. */
export function bearerAuth(token: string): Interceptor {
  return (next) => async (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return await next(request);
  };
}

// Node's certificate and handshake failures (the `code` of the TLS socket's error).
const TLS_FAILURE = /CERT|UNABLE_TO_|^ERR_TLS_|^ERR_SSL_/;

/** A TLS handshake that fails is a server the client could not reach, as gRPC reports it:
 * UNAVAILABLE with "TLS: <reason>", not Connect's INTERNAL. The original error stays the cause. */
export function tlsFailuresAsUnavailable(): Interceptor {
  return (next) => async (request) => {
    try {
      return await next(request);
    } catch (error) {
      const failure = ConnectError.from(error);
      const code = (failure.cause as { code?: unknown } | undefined)?.code;
      if (failure.code === Code.Internal && typeof code === "string" && TLS_FAILURE.test(code)) {
        throw new ConnectError(`TLS: ${failure.rawMessage}`, Code.Unavailable, undefined, undefined, failure.cause);
      }
      throw error;
    }
  };
}

export function createTicketCacheClient(options: TicketCacheClientOptions): TicketCacheClient {
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    interceptors: [tlsFailuresAsUnavailable(), ...(options.token ? [bearerAuth(options.token)] : [])],
    defaultTimeoutMs: options.timeoutMs ?? 30_000,
    pingIntervalMs: options.pingIntervalMs ?? 60_000,
    nodeOptions: options.tls ? { ...options.tls } : undefined,
  });
  return createClient(TicketCacheService, transport);
}
