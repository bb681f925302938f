#!/usr/bin/env node
// Regenerate the payload_hash vectors from Node itself (the reference implementation):
//
//   node tests/unit/domain/hash_vectors/generate_hash_vectors.js
//
// For every JSON text below it records Node's JSON.stringify(JSON.parse(text)) and the
// md5 hex of that string's UTF-8 bytes, which is what the legacy Node service stored as
// payload_hash. Output: hash_vectors.json next to this script (commit it).
// Cases are String.raw literals so JSON escapes reach JSON.parse untouched.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const CASES = [
  // Numbers: JS Number.prototype.toString, not Python repr.
  { name: "integral float prints without fraction", text: String.raw`{"n":1.0}` },
  { name: "negative zero float prints as zero", text: String.raw`{"n":-0.0}` },
  { name: "negative zero integer prints as zero", text: String.raw`{"n":-0}` },
  { name: "1e21 switches to exponent form", text: String.raw`{"n":1e21}` },
  { name: "1e20 stays in fixed form", text: String.raw`{"n":1e20}` },
  { name: "small exponent keeps exponent form", text: String.raw`{"n":1.5e-7}` },
  { name: "1e-6 stays in fixed form", text: String.raw`{"n":0.000001}` },
  { name: "1e-7 switches to exponent form", text: String.raw`{"n":1e-7}` },
  { name: "exponent is normalised", text: String.raw`{"n":123e-20}` },
  { name: "smallest subnormal", text: String.raw`{"n":5e-324}` },
  { name: "largest double", text: String.raw`{"n":1.7976931348623157e308}` },
  { name: "overflowing literal becomes null", text: String.raw`{"n":1e400,"m":-1e400}` },
  { name: "one tenth", text: String.raw`{"n":0.1}` },
  { name: "too many digits round to a double", text: String.raw`{"n":123456789.123456789}` },
  { name: "uppercase exponent and explicit plus", text: String.raw`{"n":2.5E+3,"m":-7E-2}` },
  { name: "integral floats across the fixed range", text: String.raw`[2.0,100.0,-3.0,1e15,1e16,1e17,123456789012345680000.0,4.5e15]` },
  { name: "fractions near the python exponent threshold", text: String.raw`[0.0001,0.00009,0.00001234,1234567.125,-0.5,0.3333333333333333]` },
  { name: "max safe integer and neighbours", text: String.raw`[9007199254740991,9007199254740992,9007199254740993,-9007199254740993]` },
  { name: "integers past 2^53 round like doubles", text: String.raw`{"n":12345678901234567890,"m":-12345678901234567891}` },
  { name: "integers past 2^64 round like doubles", text: String.raw`{"n":123456789012345678901234567890,"m":18446744073709551617}` },
  { name: "integer too large for a double becomes null", text: "[" + "9".repeat(320) + "]" },
  { name: "plain small integers", text: String.raw`[0,1,-1,42,1000000,-2147483648,4294967296]` },

  // Key order: array-index keys ascending first, then insertion order.
  { name: "index-like keys come first in numeric order", text: String.raw`{"b":1,"2":1,"1":1,"01":1,"a":1,"4294967295":1,"4294967294":1}` },
  { name: "non-canonical numeric keys stay in insertion order", text: String.raw`{"z":0,"-1":1,"1.0":2,"1e3":3," 1":4,"10":5,"9":6,"0":7}` },
  { name: "index keys in a nested object", text: String.raw`{"outer":{"10":"x","y":1,"3":"z"},"1":true}` },
  { name: "duplicate key keeps first position and last value", text: String.raw`{"a":1,"b":2,"a":3}` },
  { name: "duplicate index key", text: String.raw`{"x":0,"5":1,"5":2}` },
  { name: "proto key is an own property", text: String.raw`{"__proto__":{"a":1},"b":2}` },

  // Strings.
  { name: "non-ascii text stays raw", text: String.raw`{"name":"Caf\u00e9 Zürich 東京 😀 \ud83d\ude00 ñ"}` },
  { name: "control characters are escaped", text: String.raw`{"s":"\u0000\u0001\b\t\n\u000b\f\r\u001f end"}` },
  { name: "quotes and backslashes are escaped", text: String.raw`{"s":"say \"hi\" \\ path\\to"}` },
  { name: "line and paragraph separators stay raw", text: String.raw`{"s":"a\u2028b\u2029c"}` },
  { name: "delete and other non-control ascii stay raw", text: String.raw`{"s":"\u007f~<>&'"}` },
  { name: "escaped slash is unescaped", text: String.raw`{"url":"https:\/\/example.com\/a"}` },
  { name: "lone high surrogate", text: String.raw`"\ud800"` },
  { name: "lone low surrogate followed by text", text: String.raw`"\udc00x"` },
  { name: "reversed surrogate pair stays two lone surrogates", text: String.raw`["\udc00\ud800","\ud800\ud800\udc00"]` },
  { name: "lone surrogate in a key", text: String.raw`{"\udbff":1,"ok":"\uDFFF"}` },
  { name: "key needing escapes", text: String.raw`{"a\"b\\c\nd":1}` },

  // Structure.
  { name: "empty object", text: String.raw`{}` },
  { name: "empty array", text: String.raw`[]` },
  { name: "empty containers nested", text: String.raw`{"a":{},"b":[],"c":[{}, []]}` },
  { name: "nested arrays and objects", text: String.raw`{"a":[1,[2,[3,{"b":[null,true,false]}]]],"c":{"d":{"e":{}}}}` },
  { name: "scalars at top level", text: String.raw`[true,false,null,"x",0]` },
  { name: "top-level string", text: String.raw`"just a string"` },
  { name: "top-level number", text: String.raw`3.0` },
  { name: "whitespace in the text is dropped", text: " {\n \"a\" : [ 1 , 2 ] ,\t\"b\" : { } \r\n} " },

  // Realistic passes (copied from /work/shared/reference/sample-passes.json).
  {
    name: "sample usable pass",
    text: `{
  "uuid": "5b0f6f7e-4c1a-4f0e-9a57-2f1d3c9e8a11",
  "product_uuid": "8c2d1e44-77b0-4d4e-a3f1-0c5e9b6a2d10",
  "order_uuid": "e1a7c3d2-9b84-4f61-8d2e-7a3b5c6d4e21",
  "status": "USABLE",
  "time_created": "2026-11-20T14:05:32.000Z",
  "time_activated": null,
  "time_expiration": "2027-11-20T14:05:32.000Z",
  "activation_count": 0,
  "max_activations": 1,
  "rider_type": "ADULT",
  "product": {"name": "METRO Local 1-Ride", "fare": 1.25, "currency": "USD", "fare_medium": "MOBILE"}
}`,
  },
  {
    name: "sample free active pass",
    text: `{
  "uuid": "9d3e2a61-0b5c-4e8f-b7a2-6c1d0e9f8a32",
  "product_uuid": "2417edb7-856c-43ee-b3df-c508b8be259b",
  "order_uuid": "f2b8d4e3-0c95-4a72-9e3f-8b4c6d7e5f32",
  "status": "ACTIVE",
  "time_created": "2026-11-27T08:00:01.000Z",
  "time_activated": "2026-11-28T07:42:10.000Z",
  "time_expiration": "2026-11-28T10:42:10.000Z",
  "activation_count": 1,
  "max_activations": 1,
  "rider_type": "ADULT",
  "product": {"name": "METRO Free Ride (loyalty)", "fare": 0, "currency": "USD", "fare_medium": "MOBILE"}
}`,
  },
  {
    name: "sample expired pass",
    text: `{
  "uuid": "1c4b7e90-3d2f-4a6b-8e5c-9f0a1b2c3d43",
  "product_uuid": "8c2d1e44-77b0-4d4e-a3f1-0c5e9b6a2d10",
  "order_uuid": "a3c9e5f4-1d06-4b83-af40-9c5d7e8f6a43",
  "status": "EXPIRED",
  "time_created": "2026-10-02T17:11:09.000Z",
  "time_activated": "2026-10-03T12:00:00.000Z",
  "time_expiration": "2026-10-03T15:00:00.000Z",
  "activation_count": 1,
  "max_activations": 1,
  "rider_type": "SENIOR",
  "product": {"name": "METRO Local 1-Ride", "fare": 0.6, "currency": "USD", "fare_medium": "MOBILE"}
}`,
  },
  {
    name: "pass as a java backend might print it",
    text: String.raw`{"uuid":"0a1b2c3d-0000-4000-8000-000000000001","product_uuid":"654b9f9d-5972-445b-8c6b-5c29a35c7751","status":"USABLE","time_created":"2026-12-01T00:00:00Z","time_activated":null,"activation_count":0,"max_activations":10,"rider_type":"YOUTH","product":{"name":"Tarjeta Jóvenes — 10 viajes ✓","fare":20.0,"discount":-0.0,"currency":"EUR","zones":{"2":"B","1":"A"}},"order_id":9007199254740993,"tags":[]}`,
  },
];

function md5Hex(text) {
  return crypto.createHash("md5").update(text, "utf8").digest("hex");
}

const vectors = CASES.map(({ name, text }) => {
  const stringified = JSON.stringify(JSON.parse(text));
  return { name, input: text, stringified, md5: md5Hex(stringified) };
});

const names = new Set(vectors.map((v) => v.name));
if (names.size !== vectors.length) throw new Error("case names must be unique");

const document = {
  generator: "tests/unit/domain/hash_vectors/generate_hash_vectors.js",
  node_version: process.version,
  vectors,
};
const outPath = path.join(__dirname, "hash_vectors.json");
fs.writeFileSync(outPath, JSON.stringify(document, null, 2) + "\n", "utf8");
console.log(`wrote ${vectors.length} vectors to ${outPath}`);
