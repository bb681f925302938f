export * from "./client.js";
export * from "./bulk.js";
export * from "./errors.js";
export * from "./gen/bytemark/ticketcache/v1/ticket_cache_pb.js";
export { Code, ConnectError } from "@connectrpc/connect";
