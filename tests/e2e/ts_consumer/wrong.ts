// Must not type-check: user ids are int64 (bigint), and there is no such method.
import { createTicketCacheClient } from "@bytemark/ticket-cache-client";

const client = createTicketCacheClient({ baseUrl: "http://127.0.0.1:50051" });
await client.getTicketCache({ userId: "1001" });
await client.getTicketCaches({ userId: 1001n });
