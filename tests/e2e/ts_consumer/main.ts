// A consumer's service: one call on the gRPC port with the package's client, and one on the HTTP
// port with the package's generated service and a Connect transport. Prints what it saw as JSON.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  CacheView,
  Code,
  ConnectError,
  Outcome,
  TicketCacheService,
  createTicketCacheClient,
  type TicketCacheClient,
} from "@bytemark/ticket-cache-client";

const userId: bigint = BigInt(process.env.TICKET_CACHE_USER ?? "0");
const grpc: TicketCacheClient = createTicketCacheClient({ baseUrl: process.env.TICKET_CACHE_URL ?? "" });
const http = createClient(
  TicketCacheService,
  createConnectTransport({ baseUrl: process.env.TICKET_CACHE_HTTP_URL ?? "", httpVersion: "1.1" }),
);

const checked = await grpc.checkTicketCache({ userId });
const read = await http.getTicketCache({ userId, view: CacheView.SUMMARY });
let missing = "";
try {
  await http.getTicketCache({ userId: 987654321n });
} catch (error) {
  missing = ConnectError.from(error).code === Code.NotFound ? "NotFound" : String(error);
}
const outcome: string = Outcome[checked.result?.outcome ?? Outcome.UNSPECIFIED];
console.log(JSON.stringify({ outcome, passes: read.cache?.passes.length ?? -1, missing }));
