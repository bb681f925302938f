// Runs against a real Python server started by tests/e2e/test_typescript_client.py, which passes
// its addresses and seeded riders in the environment.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CacheView,
  Code,
  ConnectError,
  ErrorInfoSchema,
  Outcome,
  createTicketCacheClient,
  errorDetails,
  perRider,
} from "../dist/index.js";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set (run through tests/e2e/test_typescript_client.py)`);
  return value;
};
const [first, second] = env("TICKET_CACHE_USERS").split(",").map(BigInt);
const client = createTicketCacheClient({ baseUrl: env("TICKET_CACHE_URL"), timeoutMs: 20_000 });

test("a unary call builds the rider's cache and a read returns it", async () => {
  const { result } = await client.checkTicketCache({ userId: first });
  assert.equal(result?.outcome, Outcome.BUILT);
  const { cache } = await client.getTicketCache({ userId: first, view: CacheView.SUMMARY });
  assert.equal(cache?.userId, first);
  assert.equal(cache?.passes.length, result?.counts?.passes);
});

test("a server stream reports every rider with running totals", async () => {
  const events = [];
  for await (const event of client.refreshStaleCaches({ userIds: [first, second], maxAgeSeconds: 60n })) {
    events.push(event);
  }
  assert.equal(events.length, 2);
  assert.deepEqual(new Set(events.map((e) => e.userId)), new Set([first, second]));
  assert.equal(events.at(-1).done, 2n);
  assert.equal(events.at(-1).total, 2n);
  assert.ok(events.every((e) => e.event.case === "result"));
});

test("a batched stream read through perRider gives one event per rider with running totals", async () => {
  const batched = [];
  const stream = client.refreshStaleCaches({ userIds: [first, second], maxAgeSeconds: 0n, maxBatch: 64 });
  const events = [];
  for await (const event of perRider(
    (async function* () {
      for await (const message of stream) {
        batched.push(message);
        yield message;
      }
    })(),
  )) {
    events.push(event);
  }
  assert.equal(batched.reduce((riders, m) => riders + m.batch.length, 0), 2); // sent in batches
  assert.deepEqual(
    events.map((e) => [e.done, e.total, e.failed]),
    [
      [1n, 2n, 0n],
      [2n, 2n, 0n],
    ],
  );
  assert.deepEqual(new Set(events.map((e) => e.userId)), new Set([first, second]));
  assert.ok(events.every((e) => e.event.case === "result" && e.batch.length === 0));
});

test("a bad argument fails INVALID_ARGUMENT naming the field", async () => {
  await assert.rejects(client.getTicketCache({ userId: 0n }), (error) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.InvalidArgument);
    assert.match(error.rawMessage, /user_id/);
    return true;
  });
});

test("a server with GRPC_AUTH_TOKEN refuses calls without the token and accepts it", async () => {
  const baseUrl = env("TICKET_CACHE_AUTH_URL");
  const anonymous = createTicketCacheClient({ baseUrl });
  await assert.rejects(anonymous.checkTicketCache({ userId: second }), (error) => {
    assert.equal(ConnectError.from(error).code, Code.Unauthenticated);
    return true;
  });
  const authorised = createTicketCacheClient({ baseUrl, token: env("TICKET_CACHE_TOKEN") });
  const { result } = await authorised.checkTicketCache({ userId: second });
  assert.ok([Outcome.BUILT, Outcome.UPDATED, Outcome.UNCHANGED].includes(result?.outcome));
});

test("errors carry the service's reason and the bad field, read with Connect's findDetails", async () => {
  const missing = await client.getTicketCache({ userId: 999_999_999n }).then(
    () => assert.fail("a rider without a cache is NOT_FOUND"),
    (error) => ConnectError.from(error),
  );
  assert.equal(missing.code, Code.NotFound);
  const [info] = missing.findDetails(ErrorInfoSchema);
  assert.equal(info?.reason, "CACHE_NOT_FOUND");
  assert.equal(info?.domain, "ticketcache.bytemark");
  assert.equal(info?.metadata.user_id, "999999999");
  assert.ok(info?.metadata.request_id);

  const invalid = await (async () => {
    try {
      for await (const _ of client.refreshStaleCaches({ userIds: [first, 0n] })) {
        // the request is refused before any rider runs
      }
    } catch (error) {
      return errorDetails(error);
    }
    return assert.fail("a zero user id is INVALID_ARGUMENT");
  })();
  assert.equal(invalid.reason, "INVALID_FIELD");
  assert.deepEqual(invalid.fieldViolations, [
    { field: "user_ids[1]", description: "must be a positive user id, got 0" },
  ]);
  assert.equal(invalid.retryDelayMs, undefined);
});
