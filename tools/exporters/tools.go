//go:build tools

// Package tools pins the Prometheus exporters the local stack runs (built by
// coffee_rt.local.components.exporters from this module's go.mod/go.sum, read-only).
package tools

import (
	_ "github.com/oliver006/redis_exporter"
	_ "github.com/prometheus-community/postgres_exporter/cmd/postgres_exporter"
)
