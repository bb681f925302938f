// A typed client of TicketCacheService over gRPC (HTTP/2) with Connect's Node transport:
// a deadline on every call, bearer auth, TLS and HTTP/2 keepalive pings.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
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

export function createTicketCacheClient(options: TicketCacheClientOptions): TicketCacheClient {
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    interceptors: options.token ? [bearerAuth(options.token)] : [],
    defaultTimeoutMs: options.timeoutMs ?? 30_000,
    pingIntervalMs: options.pingIntervalMs ?? 60_000,
    nodeOptions: options.tls ? { ...options.tls } : undefined,
  });
  return createClient(TicketCacheService, transport);
}
