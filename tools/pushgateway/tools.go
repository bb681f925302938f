//go:build tools

// Package tools pins the Prometheus Pushgateway for this project's tests: `make pushgateway`
// builds github.com/prometheus/pushgateway into .tools/pushgateway (a wrapper module, like helm).
package tools

import _ "github.com/prometheus/pushgateway"
