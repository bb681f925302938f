// Runs against a real Python server with TLS, mutual TLS and a bearer token, started by
// tests/e2e/test_client_tls.py, which passes its address, a seeded rider and the PEM files.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { CacheView, Code, ConnectError, Outcome, createTicketCacheClient } from "../dist/index.js";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set (run through tests/e2e/test_client_tls.py)`);
  return value;
};
const pem = (name) => readFileSync(env(name));
const baseUrl = env("TICKET_CACHE_TLS_URL");
const userId = BigInt(env("TICKET_CACHE_USER"));
const clientPair = { cert: pem("TICKET_CACHE_CLIENT_CERT"), key: pem("TICKET_CACHE_CLIENT_KEY") };

test("with the CA, a client certificate and the token, unary calls succeed", async () => {
  const client = createTicketCacheClient({
    baseUrl,
    token: env("TICKET_CACHE_TOKEN"),
    timeoutMs: 20_000,
    tls: { ca: pem("TICKET_CACHE_CA"), ...clientPair },
  });
  const { result } = await client.checkTicketCache({ userId });
  assert.ok([Outcome.BUILT, Outcome.UNCHANGED].includes(result?.outcome));
  const { cache } = await client.getTicketCache({ userId, view: CacheView.SUMMARY });
  assert.equal(cache?.userId, userId);
  assert.equal(cache?.passes.length, 3);
});

test("with the wrong CA, the call fails naming the certificate it could not verify", async () => {
  const client = createTicketCacheClient({
    baseUrl,
    token: env("TICKET_CACHE_TOKEN"),
    timeoutMs: 10_000,
    tls: { ca: pem("TICKET_CACHE_WRONG_CA"), ...clientPair },
  });
  await assert.rejects(client.getTicketCache({ userId }), (error) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.Unavailable); // as gRPC reports a failed handshake, not INTERNAL
    assert.match(error.rawMessage, /^TLS: .*unable to verify the first certificate/);
    assert.equal(error.cause?.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    return true;
  });
});
