//go:build tools

// Package tools pins Jaeger (its v2 backend, on the OpenTelemetry Collector) for the tracing E2E
// test: `make jaeger` builds github.com/jaegertracing/jaeger/cmd/jaeger from this module into
// .tools/jaeger (a wrapper module with a `tool` directive, so go builds it like FerretDB).
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
