#!/usr/bin/env bash
# Fails when clients/typescript/src/gen is not what buf (with the local protoc-gen-es) generates
# from protos/ (and the google.rpc protos in third_party/googleapis) now; `make generate` regenerates it.
set -euo pipefail
cd "$(dirname "$0")/../clients/typescript"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
npx --no-install buf generate ../.. --template buf.gen.yaml -o "$fresh"
if ! diff -r src/gen "$fresh/src/gen" >/dev/null; then
    echo "Generated TypeScript is stale; run \`make generate\`:" >&2
    diff -r --brief src/gen "$fresh/src/gen" >&2 || true
    exit 1
fi
echo "Generated TypeScript code is up to date."
