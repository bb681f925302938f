//go:build tools

// Package tools pins promtool for this project: `make promtool` builds
// github.com/prometheus/prometheus/cmd/promtool into .tools/promtool (a wrapper module, like helm),
// which checks and unit-tests the chart's alert rules and parses the dashboard's PromQL.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
