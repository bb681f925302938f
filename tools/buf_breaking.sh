#!/usr/bin/env bash
# Fail when the protos break wire or generated-code compatibility (buf "FILE" rules)
# against the last released API: branch main, or the last commit when there is no main.
# Override the baseline with BUF_AGAINST (any buf input, e.g. '.git#tag=v1.2.0,subdir=.').
# A baseline without buf.yaml or protos (the first version) has nothing to break: skip.
set -euo pipefail
cd "$(dirname "$0")/.."

against="${BUF_AGAINST:-}"
if [[ -z "$against" ]]; then
  if git rev-parse --verify --quiet main >/dev/null; then
    ref=main
    against=".git#branch=main,subdir=."
  elif git rev-parse --verify --quiet HEAD >/dev/null; then
    ref=HEAD
    against=".git#ref=HEAD,subdir=."
  else
    echo "buf breaking: no commit to compare against yet; skipped"
    exit 0
  fi
  if ! git cat-file -e "$ref:buf.yaml" 2>/dev/null \
    || ! git ls-tree -r --name-only "$ref" -- protos | grep -q '\.proto$'; then
    echo "buf breaking: $ref has no buf.yaml or protos yet (first API version); skipped"
    exit 0
  fi
fi

# A baseline from before third_party/googleapis (one buf module) is compared module to module:
# buf compares images one to one, and that baseline's protos/ imports nothing from third_party.
if [[ -z "${BUF_AGAINST:-}" ]] && ! git cat-file -e "$ref:third_party/googleapis" 2>/dev/null; then
  against="${against/subdir=./subdir=protos}"
  echo "buf breaking protos --against '$against'"
  exec npx --no-install buf breaking protos --against "$against"
fi
echo "buf breaking --against '$against'"
exec npx --no-install buf breaking --against "$against"
